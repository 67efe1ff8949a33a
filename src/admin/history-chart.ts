/**
 * Pictures of the past, drawn on the server as inline SVG (no script, no external asset, so the
 * strict CSP holds and the page stays small): over the last 24 hours or 7 days, the line's state
 * (line-timeline.ts), checks per hour by source and by method, central's answer time (p50/p95 per hour), the
 * outbox depth; and the periods in which checks were answered without central (the outages as the
 * counters lived them).
 */
import type { HistoryRow } from '../cache/index.js';
import { HISTORY_STEP_MS, LATENCY_BOUNDS_MS } from '../cache/index.js';
import type { Lang } from './i18n.js';
import { type LinePicture, lineSection } from './line-timeline.js';
import { type Html, html, layout, type PageContext } from './views.js';

const HOUR = 3_600_000;

export interface HourBucket {
  at: number;
  central: number;
  cache: number;
  none: number;
  outboxMax: number;
  /** checks by method (rows sampled before the method was recorded add nothing) */
  cardPin: number;
  cardVisual: number;
  numbers: number;
}

/** The 5-minute rows summed per hour over the `hours` before `now` (hours without rows are zero). */
export function hourly(rows: HistoryRow[], now: number, hours = 24): HourBucket[] {
  const first = Math.floor(now / HOUR) * HOUR - (hours - 1) * HOUR;
  const out: HourBucket[] = Array.from({ length: hours }, (_, i) => ({
    at: first + i * HOUR,
    central: 0,
    cache: 0,
    none: 0,
    outboxMax: 0,
    cardPin: 0,
    cardVisual: 0,
    numbers: 0,
  }));
  for (const r of rows) {
    const b = out[Math.floor((r.at - first) / HOUR)];
    if (!b) continue;
    b.central += r.central;
    b.cache += r.cache;
    b.none += r.none;
    b.outboxMax = Math.max(b.outboxMax, r.outbox);
    if (r.methods) {
      b.cardPin += r.methods.cardPin;
      b.cardVisual += r.methods.cardVisual;
      b.numbers += r.methods.numbers;
    }
  }
  return out;
}

export interface Outage {
  start: number;
  end: number;
  /** checks answered from the cache in it */
  cache: number;
  /** checks answered with nothing known */
  none: number;
}

/** Runs of intervals in which checks were answered without central and none by central. */
export function outages(rows: HistoryRow[]): Outage[] {
  const out: Outage[] = [];
  let cur: Outage | undefined;
  for (const r of rows) {
    const offline = r.cache + r.none > 0 && r.central === 0;
    if (offline && cur && r.at <= cur.end) {
      cur.end = r.at + HISTORY_STEP_MS;
      cur.cache += r.cache;
      cur.none += r.none;
    } else if (offline) {
      cur = { start: r.at, end: r.at + HISTORY_STEP_MS, cache: r.cache, none: r.none };
      out.push(cur);
    } else if (r.central > 0) cur = undefined;
  }
  return out.reverse();
}

const W = 720;
const H = 160;
const PAD = 24;

const hh = (ms: number): string => String(new Date(ms).getHours()).padStart(2, '0');

/** Under 2 days: the hour every 3 hours; longer: the date at each midnight. */
function timeLabel(at: number, i: number, count: number): string | undefined {
  const d = new Date(at);
  if (count <= 48) return i % 3 === 0 ? hh(at) : undefined;
  return d.getHours() === 0 ? `${d.getMonth() + 1}/${d.getDate()}` : undefined;
}

/** Stacked bars: central (green), cache (amber), none (red). */
export function checksChart(buckets: HourBucket[], lang: Lang): Html {
  const title =
    lang === 'ja' ? '1時間ごとの確認件数（中央・キャッシュ・回答なし）' : 'Checks per hour (central, cache, none)';
  return stackedBars(
    buckets,
    [
      ['central', 'c-central'],
      ['cache', 'c-cache'],
      ['none', 'c-none'],
    ],
    title,
  );
}

/** Stacked bars: card with PIN, card with visual check, numbers. */
export function methodsChart(buckets: HourBucket[], lang: Lang): Html {
  const title =
    lang === 'ja'
      ? '1時間ごとの確認件数（カード・暗証番号、カード・目視確認、番号）'
      : 'Checks per hour (card with PIN, card with visual check, numbers)';
  return stackedBars(
    buckets,
    [
      ['cardPin', 'c-pin'],
      ['cardVisual', 'c-visual'],
      ['numbers', 'c-numbers'],
    ],
    title,
  );
}

type Count = 'central' | 'cache' | 'none' | 'cardPin' | 'cardVisual' | 'numbers';

/**
 * One stacked bar: its parts ([count, class]) from `base` upwards, `scale` px per count, each with
 * `tip` and its count as the tooltip; zero parts drawn not at all. Returns the drawing and its top.
 */
export function barStack(
  x: number,
  width: number,
  base: number,
  scale: number,
  parts: readonly (readonly [number, string])[],
  tip: string,
): { svg: Html; top: number } {
  let top = base;
  const svg = parts.map(([n, cls]) => {
    if (n === 0) return html``;
    top -= n * scale;
    return html`<rect class="${cls}" x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${width.toFixed(1)}" height="${(n * scale).toFixed(1)}"><title>${tip} ${n}</title></rect>`;
  });
  return { svg: html`${svg}`, top };
}

function stackedBars(buckets: HourBucket[], parts: readonly (readonly [Count, string])[], title: string): Html {
  const max = Math.max(1, ...buckets.map((b) => parts.reduce((n, [k]) => n + b[k], 0)));
  const bw = (W - PAD) / buckets.length;
  const gap = bw > 6 ? 2 : 0.5;
  const bars = buckets.map((b, i) => {
    const x = PAD + i * bw;
    const stack = barStack(
      x,
      bw - gap,
      H - PAD,
      (H - PAD) / max,
      parts.map(([k, cls]) => [b[k], cls] as const),
      fmtAt(b.at),
    );
    const text = timeLabel(b.at, i, buckets.length);
    const label = text ? html`<text x="${x.toFixed(1)}" y="${H - 8}">${text}</text>` : '';
    return html`${stack.svg}${label}`;
  });
  return html`<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${title}"><text x="0" y="12">${max}</text><line x1="${PAD}" y1="${H - PAD}" x2="${W}" y2="${H - PAD}"/>${bars}</svg>`;
}

/** The outbox depth (highest per hour) as a line. */
export function outboxChart(buckets: HourBucket[], lang: Lang): Html {
  const max = Math.max(1, ...buckets.map((b) => b.outboxMax));
  const step = (W - PAD) / Math.max(1, buckets.length - 1);
  const points = buckets
    .map((b, i) => `${(PAD + i * step).toFixed(1)},${(H - PAD - ((H - PAD - 8) * b.outboxMax) / max).toFixed(1)}`)
    .join(' ');
  const title = lang === 'ja' ? '未送信の再照会（1時間ごとの最大）' : 'Outbox depth (highest per hour)';
  return html`<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${title}"><text x="0" y="12">${max}</text><line x1="${PAD}" y1="${H - PAD}" x2="${W}" y2="${H - PAD}"/><polyline class="c-line" points="${points}"/>${buckets.map(
    (b, i) => {
      const text = timeLabel(b.at, i, buckets.length);
      return text ? html`<text x="${(PAD + i * step).toFixed(1)}" y="${H - 8}">${text}</text>` : '';
    },
  )}</svg>`;
}

// --- central's answer time ----------------------------------------------------------------------

/**
 * The q-quantile (0…1) of answer times counted per LATENCY_BOUNDS_MS bucket, interpolated within
 * its bucket (as Prometheus' histogram_quantile); the slowest bucket answers its lower bound.
 * Undefined without any count.
 */
export function quantile(counts: readonly number[], q: number): number | undefined {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i] ?? 0;
    if (n > 0 && below + n >= rank) {
      const lower = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1]!;
      const upper = LATENCY_BOUNDS_MS[i];
      if (upper === undefined) return lower;
      return lower + ((upper - lower) * (rank - below)) / n;
    }
    below += n;
  }
  return LATENCY_BOUNDS_MS.at(-1);
}

const sumCounts = (lists: readonly (readonly number[] | undefined)[]): number[] => {
  const out = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
  for (const l of lists) {
    if (!l) continue;
    for (let i = 0; i < l.length && i < out.length; i++) out[i]! += l[i] ?? 0;
  }
  return out;
};

export interface LatencyPoint {
  at: number;
  /** answers in the hour */
  n: number;
  p50?: number;
  p95?: number;
}

/** Central's answer time per hour over the `hours` before `now`: the median and the 95th percentile. */
export function latencyHourly(rows: HistoryRow[], now: number, hours = 24): LatencyPoint[] {
  const first = Math.floor(now / HOUR) * HOUR - (hours - 1) * HOUR;
  const per = Array.from({ length: hours }, () => [] as number[][]);
  for (const r of rows) if (r.latency) per[Math.floor((r.at - first) / HOUR)]?.push(r.latency);
  return per.map((lists, i) => {
    const c = sumCounts(lists);
    const n = c.reduce((a, b) => a + b, 0);
    const p50 = quantile(c, 0.5);
    const p95 = quantile(c, 0.95);
    return { at: first + i * HOUR, n, ...(p50 !== undefined ? { p50 } : {}), ...(p95 !== undefined ? { p95 } : {}) };
  });
}

/** 320ミリ秒, 1.2秒 (and the English). */
export function fmtMs(ms: number, lang: Lang): string {
  const ja = lang === 'ja';
  if (ms < 1000) return ja ? `${Math.round(ms)}ミリ秒` : `${Math.round(ms)} ms`;
  const s = (ms / 1000).toFixed(ms < 10_000 ? 1 : 0);
  return ja ? `${s}秒` : `${s} s`;
}

/** A scale top of 1, 2 or 5 times a power of ten at or above `v`. */
function niceTop(v: number): number {
  const p = 10 ** Math.floor(Math.log10(Math.max(v, 1)));
  return [1, 2, 5, 10].map((m) => m * p).find((t) => t >= v) ?? 10 * p;
}

/** The median (solid) and 95th percentile (dashed) per hour; hours without an answer leave a gap. */
export function latencyChart(points: LatencyPoint[], lang: Lang): Html {
  const top = niceTop(Math.max(100, ...points.map((p) => p.p95 ?? 0)));
  const step = (W - PAD) / Math.max(1, points.length - 1);
  const x = (i: number): number => PAD + i * step;
  const y = (ms: number): number => H - PAD - ((H - PAD - 8) * Math.min(ms, top)) / top;
  const line = (key: 'p50' | 'p95', cls: string): Html[] => {
    const runs: string[][] = [];
    let run: string[] | undefined;
    points.forEach((p, i) => {
      const v = p[key];
      if (v === undefined) {
        run = undefined;
        return;
      }
      if (!run) {
        run = [];
        runs.push(run);
      }
      run.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    });
    return runs.map((r) => html`<polyline class="${cls}" points="${r.join(' ')}"/>`);
  };
  const ja = lang === 'ja';
  const dots = points.map((p, i) =>
    p.p50 === undefined
      ? ''
      : html`<circle class="c-p95" cx="${x(i).toFixed(1)}" cy="${y(p.p95 ?? p.p50).toFixed(1)}" r="2.5"/><circle class="c-p50" cx="${x(i).toFixed(1)}" cy="${y(p.p50).toFixed(1)}" r="2.5"><title>${fmtAt(p.at)} ${ja ? '中央値' : 'median'} ${fmtMs(p.p50, lang)} / 95% ${fmtMs(p.p95 ?? p.p50, lang)} (${p.n})</title></circle>`,
  );
  const labels = points.map((p, i) => {
    const text = timeLabel(p.at, i, points.length);
    return text ? html`<text x="${x(i).toFixed(1)}" y="${H - 8}">${text}</text>` : '';
  });
  const title = ja
    ? '中央の応答時間（1時間ごとの中央値と95パーセンタイル）'
    : "Central's answer time (median and 95th percentile per hour)";
  return html`<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${title}"><text x="0" y="12">${fmtMs(top, lang)}</text><line x1="${PAD}" y1="${H - PAD}" x2="${W}" y2="${H - PAD}"/>${line('p95', 'c-p95')}${line('p50', 'c-p50')}${dots}${labels}</svg>`;
}

const fmtAt = (ms: number): string => {
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getMonth() + 1}/${d.getDate()} ${p(d.getHours())}:${p(d.getMinutes())}`;
};

export type HistoryRange = '24h' | '7d';

export const RANGE_HOURS: Record<HistoryRange, number> = { '24h': 24, '7d': 168 };

export interface HistoryData {
  range: HistoryRange;
  /** the 5-minute rows of the last 30 days (undefined: not available) */
  rows?: HistoryRow[];
  /** the line's picture over the range (undefined: not available) */
  line?: LinePicture;
}

/**
 * The history page: over the last 24 hours or 7 days, the line's state, the checks per hour by
 * source, central's answer time and the outbox depth; the last 30 days' periods answered without
 * central as a list.
 */
export function historyPage(ctx: PageContext, data: HistoryData, now: number, note?: Html, refreshMs = 60_000): string {
  const ja = ctx.lang === 'ja';
  const range = data.range;
  const tab = (r: HistoryRange, text: string): Html =>
    html`<a class="tab" href="/history${r === '24h' ? '' : '?range=7d'}"${r === range ? html` aria-current="page"` : ''}>${text}</a>`;
  // data-history: admin.js fetches /api/history every minute and swaps this part (live, no reload)
  return layout(
    ctx,
    ja ? '過去の記録' : 'History',
    html`${note ?? ''}<p class="tabs">${tab('24h', ja ? '24時間' : '24 hours')}${tab('7d', ja ? '7日間' : '7 days')}</p>
<div data-history="${range}" data-refresh-ms="${refreshMs}">${historyCharts(ctx, data, now)}</div>`,
  );
}

/** The pictures of /history: the line, checks by source and by method, answer times, outbox, periods without central. */
export function historyCharts(ctx: PageContext, data: HistoryData, now: number): Html {
  const ja = ctx.lang === 'ja';
  const { rows, range } = data;
  const hours = RANGE_HOURS[range];
  const buckets = rows ? hourly(rows, now, hours) : [];
  const from = now - hours * HOUR;
  const inRange = rows?.filter((r) => r.at >= from) ?? [];
  const list = rows ? outages(rows) : [];
  const period = ja
    ? range === '24h'
      ? '直近24時間'
      : '直近7日間'
    : range === '24h'
      ? 'last 24 hours'
      : 'last 7 days';
  const legend = ja
    ? html`<p class="legend"><span class="k c-central"></span>中央 <span class="k c-cache"></span>キャッシュ <span class="k c-none"></span>回答なし</p>`
    : html`<p class="legend"><span class="k c-central"></span>central <span class="k c-cache"></span>cache <span class="k c-none"></span>none</p>`;
  const methodLegend = ja
    ? html`<p class="legend"><span class="k c-pin"></span>カード（暗証番号） <span class="k c-visual"></span>カード（目視確認） <span class="k c-numbers"></span>番号（資格確認書・被保険者証）</p>`
    : html`<p class="legend"><span class="k c-pin"></span>card with PIN <span class="k c-visual"></span>card, visual check <span class="k c-numbers"></span>numbers (資格確認書, insurance card)</p>`;
  const min = (ms: number): string => `${Math.round(ms / 60_000)}${ja ? '分' : ' min'}`;
  const head = ja
    ? ['開始', '終了', '長さ', 'キャッシュで回答', '回答なし']
    : ['Start', 'End', 'Duration', 'From cache', 'Unanswered'];
  const outageTable = list.length
    ? html`<table id="no-central" class="cards"><thead><tr>${head.map((h) => html`<th>${h}</th>`)}</tr></thead><tbody>${list.map(
        (o) =>
          html`<tr>${[fmtAt(o.start), fmtAt(o.end), min(o.end - o.start), o.cache, o.none].map((v, i) => html`<td data-label="${head[i]}">${v}</td>`)}</tr>`,
      )}</tbody></table>`
    : html`<p>${ja ? '中央なしで答えた時間帯はありません。' : 'No period answered without central.'}</p>`;
  const all = sumCounts(inRange.map((r) => r.latency));
  const answers = all.reduce((a, b) => a + b, 0);
  const p50 = quantile(all, 0.5);
  const p95 = quantile(all, 0.95);
  const latencySummary =
    answers && p50 !== undefined && p95 !== undefined
      ? html`<p class="hint" id="latency-summary">${
          ja
            ? `${period}全体: 中央値 ${fmtMs(p50, 'ja')}、95パーセンタイル ${fmtMs(p95, 'ja')}（応答${answers}件）`
            : `Over the ${period}: median ${fmtMs(p50, 'en')}, 95th percentile ${fmtMs(p95, 'en')} (${answers} answers)`
        }</p>`
      : html`<p class="hint" id="latency-summary">${ja ? 'この期間、中央からの応答はありません。' : 'No answer from central in this period.'}</p>`;
  return html`${data.line ? html`<h3>${ja ? `回線の状態（${period}）` : `The line (${period})`}</h3>${lineSection(ctx.lang, data.line, { full: true })}` : ''}${
    rows
      ? html`<h3>${ja ? `確認件数（${period}、1時間ごと）` : `Checks (${period}, per hour)`}</h3>${legend}${checksChart(buckets, ctx.lang)}
<h3>${ja ? `確認方法別の件数（${period}、1時間ごと）` : `Checks by method (${period}, per hour)`}</h3>${methodLegend}${methodsChart(buckets, ctx.lang)}
<h3>${ja ? `中央の応答時間（${period}、1時間ごと）` : `Central's answer time (${period}, per hour)`}</h3>
<p class="legend"><span class="k c-p50"></span>${ja ? '中央値' : 'median'} <span class="k c-p95"></span>${ja ? '95パーセンタイル' : '95th percentile'}</p>${latencyChart(latencyHourly(rows, now, hours), ctx.lang)}${latencySummary}
<p class="hint">${ja ? '確認と再照会で中央が答えるまでの時間です（カードの暗証番号入力など、窓口で待つ時間は含みません）。' : 'How long central took to answer checks and re-verifications (not the time spent at the counter, such as entering a PIN).'}</p>
<h3>${ja ? `未送信の再照会（${period}）` : `Outbox depth (${period})`}</h3>${outboxChart(buckets, ctx.lang)}
<h3>${ja ? '中央なしで答えた時間帯（直近30日、5分単位）' : 'Periods answered without central (last 30 days, 5-minute steps)'}</h3>
<p class="hint">${ja ? '中央に届かず、キャッシュで答えた（または答えられなかった）確認があった時間帯です。' : 'Intervals in which checks were answered from the cache (or not at all) and none by central.'}</p>${outageTable}`
      : ''
  }`;
}
