/**
 * Pictures of the past, drawn on the server as inline SVG (no script, no external asset, so the
 * strict CSP holds and the page stays small): checks per hour by source, the outbox depth, and the
 * periods in which checks were answered without central (the outages as the counters lived them).
 */
import type { HistoryRow } from '../cache/index.js';
import { HISTORY_STEP_MS } from '../cache/index.js';
import type { Lang } from './i18n.js';
import { type Html, html, layout, type PageContext } from './views.js';

const HOUR = 3_600_000;

export interface HourBucket {
  at: number;
  central: number;
  cache: number;
  none: number;
  outboxMax: number;
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
  }));
  for (const r of rows) {
    const b = out[Math.floor((r.at - first) / HOUR)];
    if (!b) continue;
    b.central += r.central;
    b.cache += r.cache;
    b.none += r.none;
    b.outboxMax = Math.max(b.outboxMax, r.outbox);
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

/** Stacked bars: central (green), cache (amber), none (red); hour labels every 3 hours. */
export function checksChart(buckets: HourBucket[], lang: Lang): Html {
  const max = Math.max(1, ...buckets.map((b) => b.central + b.cache + b.none));
  const bw = (W - PAD) / buckets.length;
  const y = (n: number): number => ((H - PAD) * n) / max;
  const bars = buckets.map((b, i) => {
    const x = PAD + i * bw;
    let top = H - PAD;
    const part = (n: number, cls: string): Html => {
      if (n === 0) return html``;
      top -= y(n);
      return html`<rect class="${cls}" x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${y(n).toFixed(1)}"><title>${hh(b.at)}:00 ${n}</title></rect>`;
    };
    const label = i % 3 === 0 ? html`<text x="${x.toFixed(1)}" y="${H - 8}">${hh(b.at)}</text>` : '';
    return html`${part(b.central, 'c-central')}${part(b.cache, 'c-cache')}${part(b.none, 'c-none')}${label}`;
  });
  const title =
    lang === 'ja' ? '1時間ごとの確認件数（中央・キャッシュ・回答なし）' : 'Checks per hour (central, cache, none)';
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
  return html`<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${title}"><text x="0" y="12">${max}</text><line x1="${PAD}" y1="${H - PAD}" x2="${W}" y2="${H - PAD}"/><polyline class="c-line" points="${points}"/>${buckets.map((b, i) => (i % 3 === 0 ? html`<text x="${(PAD + i * step).toFixed(1)}" y="${H - 8}">${hh(b.at)}</text>` : ''))}</svg>`;
}

const fmt = (ms: number): string => {
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getMonth() + 1}/${d.getDate()} ${p(d.getHours())}:${p(d.getMinutes())}`;
};

/** The history page: the last 24 hours as pictures, the last 30 days' outages as a list. */
export function historyPage(ctx: PageContext, rows: HistoryRow[] | undefined, now: number, note?: Html): string {
  const ja = ctx.lang === 'ja';
  const day = rows ? hourly(rows, now, 24) : [];
  const list = rows ? outages(rows) : [];
  const legend = ja
    ? html`<p class="legend"><span class="k c-central"></span>中央 <span class="k c-cache"></span>キャッシュ <span class="k c-none"></span>回答なし</p>`
    : html`<p class="legend"><span class="k c-central"></span>central <span class="k c-cache"></span>cache <span class="k c-none"></span>none</p>`;
  const min = (ms: number): string => `${Math.round(ms / 60_000)}${ja ? '分' : ' min'}`;
  const outageTable = list.length
    ? html`<table><thead><tr><th>${ja ? '開始' : 'Start'}</th><th>${ja ? '終了' : 'End'}</th><th>${ja ? '長さ' : 'Duration'}</th><th>${ja ? 'キャッシュで回答' : 'From cache'}</th><th>${ja ? '回答なし' : 'Unanswered'}</th></tr></thead><tbody>${list.map(
        (o) =>
          html`<tr><td>${fmt(o.start)}</td><td>${fmt(o.end)}</td><td>${min(o.end - o.start)}</td><td>${o.cache}</td><td>${o.none}</td></tr>`,
      )}</tbody></table>`
    : html`<p>${ja ? '中央なしで答えた時間帯はありません。' : 'No period answered without central.'}</p>`;
  return layout(
    ctx,
    ja ? '過去の記録' : 'History',
    html`${note ?? ''}${
      rows
        ? html`<h3>${ja ? '確認件数（直近24時間、1時間ごと）' : 'Checks (last 24 hours, per hour)'}</h3>${legend}${checksChart(day, ctx.lang)}
<h3>${ja ? '未送信の再照会（直近24時間）' : 'Outbox depth (last 24 hours)'}</h3>${outboxChart(day, ctx.lang)}
<h3>${ja ? '中央なしで答えた時間帯（直近30日、5分単位）' : 'Periods answered without central (last 30 days, 5-minute steps)'}</h3>
<p class="hint">${ja ? '中央に届かず、キャッシュで答えた（または答えられなかった）確認があった時間帯です。' : 'Intervals in which checks were answered from the cache (or not at all) and none by central.'}</p>${outageTable}`
        : ''
    }`,
  );
}
