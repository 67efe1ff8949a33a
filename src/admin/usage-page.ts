/**
 * マイナ保険証 use, month by month (/usage): the box's own count of successful checks by method —
 * card with PIN, card with visual check, numbers (資格確認書・被保険者証) — with the distinct
 * patients and the card share, per month and per day of a chosen month; an SVG chart and a table
 * each, and the same rows as CSV (UTF-8 with a BOM, so Excel opens the Japanese headers). Months
 * and days are JST (store/usage.ts). Not the official rate: the page says so.
 */
import { addMonths, cardShare, jstMonth, type UsageDay, type UsageMonth } from '../cache/index.js';
import { isOnshiError } from '../core/errors.js';
import type { AdminBackend, UsageData } from './backend.js';
import { barStack } from './history-chart.js';
import { download, type Req, send } from './http/request.js';
import { type Lang, t } from './i18n.js';
import { type Html, html, layout, message, type PageContext } from './views.js';

type Row = UsageMonth | UsageDay;

const MONTH_RE = /^\d{4}-(0[1-9]|1[0-2])$/;

/** Months shown in the chart: the chosen one and the 11 before it. */
const CHART_MONTHS = 12;

const total = (r: Row): number => r.cardPin + r.cardVisual + r.numbers;

/** 42.9% (one decimal), or — without any check. */
export function fmtShare(r: Row): string {
  const s = cardShare(r);
  return s === undefined ? '—' : `${(s * 100).toFixed(1)}%`;
}

const monthLabel = (month: string, lang: Lang): string => {
  const [y, m] = month.split('-');
  return lang === 'ja' ? `${y}年${Number(m)}月` : month;
};

const dayLabel = (day: string, lang: Lang): string =>
  lang === 'ja' ? `${Number(day.slice(5, 7))}月${Number(day.slice(8))}日` : day;

interface Column {
  ja: string;
  en: string;
  value(r: Row): string | number;
}

/** The table's and the CSV's columns after the month or day. */
const COLUMNS: readonly Column[] = [
  { ja: 'カード（暗証番号）', en: 'Card with PIN', value: (r) => r.cardPin },
  { ja: 'カード（目視確認）', en: 'Card, visual check', value: (r) => r.cardVisual },
  {
    ja: '番号（資格確認書・被保険者証）',
    en: 'Numbers (eligibility certificate, insurance card)',
    value: (r) => r.numbers,
  },
  { ja: '合計', en: 'Total', value: total },
  { ja: 'カードの割合', en: 'Card share', value: fmtShare },
  { ja: '患者数', en: 'Patients', value: (r) => r.patients },
  { ja: 'うちカードで確認した患者', en: 'of whom checked by card', value: (r) => r.cardPatients },
];

const keyOf = (r: Row): string => ('month' in r ? r.month : r.day);

/** The rows as CSV: a BOM, CRLF lines, the page's language in the header. */
export function usageCsv(rows: readonly Row[], lang: Lang, by: 'month' | 'day'): Buffer {
  const first = by === 'month' ? (lang === 'ja' ? '月' : 'Month') : lang === 'ja' ? '日' : 'Day';
  const cell = (v: string | number): string =>
    /[",\r\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v);
  const lines = [
    [first, ...COLUMNS.map((c) => c[lang])],
    ...rows.map((r) => [keyOf(r), ...COLUMNS.map((c) => (c.value(r) === '—' ? '' : c.value(r)))]),
  ];
  return Buffer.from(`\uFEFF${lines.map((l) => l.map(cell).join(',')).join('\r\n')}\r\n`, 'utf8');
}

const W = 720;
const H = 180;
const PAD = 24;
const TOP = 16;

/** Stacked bars per month or day (card with PIN, card with visual check, numbers); a month's card share above its bar. */
export function usageChart(rows: readonly Row[], lang: Lang, opts: { shares: boolean; title: string }): Html {
  const max = Math.max(1, ...rows.map(total));
  const bw = (W - PAD) / Math.max(1, rows.length);
  const gap = bw > 6 ? 2 : 0.5;
  const bars = rows.map((r, i) => {
    const x = PAD + i * bw;
    const parts = [
      [r.cardPin, 'c-pin'],
      [r.cardVisual, 'c-visual'],
      [r.numbers, 'c-numbers'],
    ] as const;
    const tip = 'month' in r ? monthLabel(r.month, lang) : dayLabel(r.day, lang);
    const { svg: stack, top } = barStack(x, bw - gap, H - PAD, (H - PAD - TOP) / max, parts, tip);
    const key = keyOf(r);
    const text =
      'month' in r ? `${Number(key.slice(5))}${lang === 'ja' ? '月' : ''}` : i % 5 === 0 ? String(i + 1) : '';
    const label = text ? html`<text x="${x.toFixed(1)}" y="${H - 8}">${text}</text>` : '';
    const share =
      opts.shares && total(r) > 0
        ? html`<text class="share" x="${x.toFixed(1)}" y="${Math.max(10, top - 3).toFixed(1)}">${fmtShare(r)}</text>`
        : '';
    return html`${stack}${label}${share}`;
  });
  return html`<svg class="chart usage" viewBox="0 0 ${W} ${H}" role="img" aria-label="${opts.title}"><text x="0" y="12">${max}</text><line x1="${PAD}" y1="${H - PAD}" x2="${W}" y2="${H - PAD}"/>${bars}</svg>`;
}

/** The chart's months: the `count` months up to `last`, those without a check as zeros. */
export function lastMonths(months: readonly UsageMonth[], last: string, count = CHART_MONTHS): UsageMonth[] {
  const by = new Map(months.map((m) => [m.month, m]));
  return Array.from({ length: count }, (_, i) => {
    const month = addMonths(last, i - count + 1);
    return by.get(month) ?? { month, cardPin: 0, cardVisual: 0, numbers: 0, patients: 0, cardPatients: 0 };
  });
}

function table(ctx: PageContext, rows: readonly Row[], id: string): Html {
  const ja = ctx.lang === 'ja';
  const first = 'month' in (rows[0] ?? {}) ? (ja ? '月' : 'Month') : ja ? '日' : 'Day';
  const head = [first, ...COLUMNS.map((c) => c[ctx.lang])];
  return html`<table id="${id}" class="cards"><thead><tr>${head.map((h) => html`<th>${h}</th>`)}</tr></thead><tbody>${rows.map(
    (r) =>
      html`<tr data-key="${keyOf(r)}"><td data-label="${head[0]}">${
        'month' in r
          ? html`<a class="month" href="/usage?month=${r.month}">${monthLabel(r.month, ctx.lang)}</a>`
          : dayLabel(r.day, ctx.lang)
      }</td>${COLUMNS.map((c, i) => html`<td data-label="${head[i + 1]}">${c.value(r)}</td>`)}</tr>`,
  )}</tbody></table>`;
}

/** The page: the note on what is counted, the months, the chosen month's days, the CSV links. */
export function usagePage(ctx: PageContext, data: UsageData | undefined, month: string, note?: Html): string {
  const ja = ctx.lang === 'ja';
  const L = (jaText: string, enText: string): string => (ja ? jaText : enText);
  const legend = html`<p class="legend"><span class="k c-pin"></span>${L('カード（暗証番号）', 'card with PIN')} <span class="k c-visual"></span>${L('カード（目視確認）', 'card, visual check')} <span class="k c-numbers"></span>${L('番号（資格確認書・被保険者証）', 'numbers (eligibility certificate, insurance card)')}</p>`;
  const about = html`<div class="msg" id="usage-note" role="note"><p>${L(
    '公式の「マイナ保険証利用率」は、社会保険診療報酬支払基金がレセプト（診療報酬の請求）から算出するものです。ここに示すのは、この装置が行った資格確認の件数（装置自身の集計）で、公式の利用率とは一致しません。',
    'The official マイナ保険証 usage rate is computed by the Health Insurance Claims Review & Reimbursement Services (社会保険診療報酬支払基金) from claims. This page shows the checks this box made (its own count), which will not match the official rate.',
  )}</p><p>${L(
    '数えるのは、窓口での資格確認のうち中央（オンライン資格確認等システム）またはキャッシュが回答したものだけです。回答が得られなかった確認、エラー、個人単位のエラー、該当資格なしの回答（番号の打ち間違いなど）、一括照会と再照会は数えません。月と日は日本時間です。患者数は、回答に記された保険者番号・記号・番号・枝番・生年月日の鍵付きハッシュで数え、氏名や番号はそのまま保存しません。',
    'Counted: checks at the counter answered by central (the online eligibility system) or by the cache. Not counted: checks without an answer, errors, per-person errors, answers that found no eligibility (該当資格なし, e.g. a mistyped number), batch inquiries and re-verifications. Months and days are Japan time (JST). Patients are counted by a keyed hash of the insurer number, symbol, number, branch and birthdate in the answer; names and numbers are not stored as such.',
  )}</p></div>`;
  if (!data) return layout(ctx, L('マイナ保険証の利用状況', 'マイナ保険証 use'), html`${note ?? ''}${about}`);
  const chartMonths = lastMonths(data.months, month);
  const newestFirst = [...data.months].reverse();
  const counted = data.days.filter((d) => total(d) > 0);
  const prev = addMonths(month, -1);
  const next = addMonths(month, 1);
  const current = jstMonth(Date.now());
  const monthName = monthLabel(month, ctx.lang);
  const sum = data.months.find((m) => m.month === month);
  return layout(
    ctx,
    L('マイナ保険証の利用状況', 'マイナ保険証 use'),
    html`${note ?? ''}${about}
<h3>${L(`月ごと（${monthLabel(chartMonths[0]!.month, 'ja')}〜${monthName}）`, `Per month (${chartMonths[0]!.month} to ${month})`)}</h3>${legend}${usageChart(
      chartMonths,
      ctx.lang,
      { shares: true, title: L('月ごとの確認件数とカードの割合', 'Checks per month and the card share') },
    )}${
      newestFirst.length
        ? table(ctx, newestFirst, 'usage-months')
        : html`<p id="usage-months-empty">${L('まだ数えた確認はありません。', 'No check counted yet.')}</p>`
    }
<p class="actions"><a class="button" id="csv-months" href="/usage.csv" download>${L('月ごとの表をダウンロード（CSV）', 'Download the months (CSV)')}</a></p>
<h3 id="usage-day-title">${L(`${monthName}の日ごと`, `Per day in ${month}`)}</h3>
<p class="tabs"><a href="/usage?month=${prev}" id="usage-prev">${L(`← ${monthLabel(prev, 'ja')}`, `← ${prev}`)}</a>${
      next <= current
        ? html`<a href="/usage?month=${next}" id="usage-next">${L(`${monthLabel(next, 'ja')} →`, `${next} →`)}</a>`
        : ''
    }</p>${
      sum
        ? html`<p id="usage-month-summary">${L(
            `カード ${sum.cardPin + sum.cardVisual}件（暗証番号 ${sum.cardPin}件、目視確認 ${sum.cardVisual}件）、番号 ${sum.numbers}件、カードの割合 ${fmtShare(sum)}、患者 ${sum.patients}人（うちカード ${sum.cardPatients}人）`,
            `Card ${sum.cardPin + sum.cardVisual} (PIN ${sum.cardPin}, visual check ${sum.cardVisual}), numbers ${sum.numbers}, card share ${fmtShare(sum)}, ${sum.patients} patients (${sum.cardPatients} by card)`,
          )}</p>`
        : ''
    }${legend}${usageChart(data.days, ctx.lang, { shares: false, title: L(`${monthName}の日ごとの確認件数`, `Checks per day in ${month}`) })}${
      counted.length
        ? table(ctx, counted, 'usage-days')
        : html`<p id="usage-days-empty">${L('この月に数えた確認はありません。', 'No check counted in this month.')}</p>`
    }
<p class="hint">${L('確認のなかった日は表に出しません（グラフでは0件です）。', 'Days without a check are left out of the table (zero in the chart).')}</p>
<p class="actions"><a class="button" id="csv-days" href="/usage.csv?month=${month}" download>${L(`${monthName}の日ごとの表をダウンロード（CSV）`, `Download the days of ${month} (CSV)`)}</a></p>`,
  );
}

/** GET /usage (?month=YYYY-MM, JST; default this month) and /usage.csv (months, or ?month= its days). */
export async function usageRoute(req: Req, ctx: PageContext, b: Pick<AdminBackend, 'listUsage'>): Promise<void> {
  const asked = req.query.get('month') ?? '';
  const month = MONTH_RE.test(asked) ? asked : jstMonth(Date.now());
  let data: UsageData | undefined;
  let note: Html | undefined;
  try {
    data = await b.listUsage(month);
  } catch (e) {
    if (!isOnshiError(e, 'ADMIN_NOT_AVAILABLE')) throw e;
    note = message(t(req.lang, 'err.not_available'));
  }
  if (req.path === '/usage.csv') {
    if (!data) return send(req, 404, usagePage(ctx, data, month, note));
    const byDay = MONTH_RE.test(asked);
    const csv = byDay ? usageCsv(data.days, req.lang, 'day') : usageCsv(data.months, req.lang, 'month');
    return download(req, `mynahoken-usage-${byDay ? month : 'months'}.csv`, csv, 'text/csv; charset=utf-8');
  }
  return send(req, 200, usagePage(ctx, data, month, note));
}
