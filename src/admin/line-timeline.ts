/**
 * The line's past as a timeline: up / degraded / down from the audit chain's `line.state.*` entries
 * (the link monitor's transitions, one at each start), the tunnel's ups and downs
 * (`line.tunnel.*`, ipsec mode) as marks above it, and the periods the gateway was not running
 * (no history row for them) as unknown. The present comes from the live status, so a cut shows
 * before its audit entry is written. Drawn on the server as SVG, like the other pictures.
 */
import type { HistoryRow } from '../cache/index.js';
import { HISTORY_STEP_MS } from '../cache/index.js';
import { isOnshiError } from '../core/errors.js';
import type { GatewayStatus } from '../ops/status.js';
import type { AdminBackend, LineEvent } from './backend.js';
import type { Lang } from './i18n.js';
import { lineReasonText } from './messages-ja.js';
import { type Html, html } from './views.js';

export type LineState = 'up' | 'degraded' | 'down' | 'unknown';

export interface Segment {
  start: number;
  end: number;
  state: LineState;
  /** why it began (the reason of the change that started it) */
  reason?: string;
}

/** The line as the status says it is now. */
export interface LineNow {
  state: LineState;
  /** when it entered that state (ms) */
  since?: number;
  /** when the gateway started (ms): from then on it is running */
  startedAt: number;
  /** the last failure's code (status.line.lastError): why, until the change's own entry is read */
  code?: string;
}

/** Intervals [start, end) merged where they touch or overlap. */
function mergeIntervals(list: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (const [s, e] of [...list].sort((a, b) => a[0] - b[0])) {
    const last = out.at(-1);
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/**
 * The line's state over [from, to): each state change starts a segment; where the gateway was not
 * running (no history row, before its start) the state is unknown. Adjacent equal states merge.
 */
export function lineSegments(
  events: LineEvent[],
  rows: HistoryRow[],
  from: number,
  to: number,
  now: LineNow,
): Segment[] {
  const points: { at: number; state: LineState; reason?: string }[] = events
    .filter((e) => e.kind === 'state')
    .sort((a, b) => a.at - b.at)
    .map((e) => ({ at: e.at, state: e.state, ...(e.reason ? { reason: e.reason } : {}) }));
  // The present as the status says it: its audit entry may still be on its way.
  const last = points.at(-1);
  if (now.state !== 'unknown' && last?.state !== now.state)
    points.push({
      at: Math.min(to, Math.max(now.since ?? to, last?.at ?? -Infinity)),
      state: now.state,
      ...(now.code && now.state !== 'up' ? { reason: now.code } : {}),
    });

  const raw: Segment[] = [];
  let state: LineState = 'unknown';
  let reason: string | undefined;
  let at = from;
  for (const p of points) {
    if (p.at > at) {
      raw.push({ start: at, end: Math.min(p.at, to), state, ...(reason ? { reason } : {}) });
      at = p.at;
    }
    if (p.at >= to) break;
    state = p.state;
    reason = p.reason;
  }
  if (at < to) raw.push({ start: Math.max(at, from), end: to, state, ...(reason ? { reason } : {}) });

  // Running: every 5 minutes with a history row, and everything since this start.
  const known = mergeIntervals([
    ...rows.map((r): [number, number] => [r.at, r.at + HISTORY_STEP_MS]),
    [now.startedAt, to],
  ]);
  const out: Segment[] = [];
  const push = (s: Segment): void => {
    if (s.end <= s.start) return;
    const prev = out.at(-1);
    if (prev && prev.state === s.state && prev.end >= s.start) prev.end = s.end;
    else out.push(s);
  };
  for (const seg of raw) {
    if (seg.end <= from || seg.start >= to) continue;
    let cursor = Math.max(seg.start, from);
    const end = Math.min(seg.end, to);
    for (const [ks, ke] of known) {
      if (ke <= cursor || ks >= end) continue;
      if (ks > cursor) push({ start: cursor, end: ks, state: 'unknown' });
      push({ ...seg, start: Math.max(ks, cursor), end: Math.min(ke, end) });
      cursor = Math.min(ke, end);
    }
    if (cursor < end) push({ start: cursor, end, state: 'unknown' });
  }
  return out;
}

const p2 = (n: number): string => String(n).padStart(2, '0');
const hhmm = (ms: number): string => {
  const d = new Date(ms);
  return `${p2(d.getHours())}:${p2(d.getMinutes())}`;
};
const dayTime = (ms: number): string => {
  const d = new Date(ms);
  return `${d.getMonth() + 1}/${d.getDate()} ${hhmm(ms)}`;
};

/** 45秒, 3分, 2時間5分 (and the English). */
export function fmtSpan(ms: number, lang: Lang): string {
  const ja = lang === 'ja';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return ja ? `${s}秒` : `${s} s`;
  const min = Math.round(s / 60);
  if (min < 120) return ja ? `${min}分` : `${min} min`;
  const h = Math.floor(min / 60);
  const m = min % 60;
  if (ja) return m ? `${h}時間${m}分` : `${h}時間`;
  return m ? `${h} h ${m} min` : `${h} h`;
}

export const STATE_TEXT: Record<Lang, Record<LineState, string>> = {
  ja: { up: '接続', degraded: '不安定', down: '切断', unknown: '記録なし' },
  en: { up: 'up', degraded: 'degraded', down: 'down', unknown: 'no record' },
};

// The same width and left margin as the other charts (history-chart.ts), so their hours line up.
const W = 720;
const PAD = 24;
const H = 58;
const BAR_Y = 16;
const BAR_H = 22;

/** The timeline: one bar coloured by state, the tunnel's ups (▲) and downs (▼) above it, times below. */
export function timelineSvg(segments: Segment[], tunnel: LineEvent[], from: number, to: number, lang: Lang): Html {
  const x = (t: number): number => PAD + ((t - from) / (to - from)) * (W - PAD);
  const span = to - from;
  const bars = segments.map(
    (s) =>
      html`<rect class="s-${s.state}" x="${x(s.start).toFixed(1)}" y="${BAR_Y}" width="${Math.max(1, x(s.end) - x(s.start)).toFixed(1)}" height="${BAR_H}"><title>${STATE_TEXT[lang][s.state]} ${dayTime(s.start)}–${dayTime(s.end)} (${fmtSpan(s.end - s.start, lang)})</title></rect>`,
  );
  const marks = tunnel
    .filter((e) => e.kind === 'tunnel' && e.at >= from && e.at <= to)
    .map((e) => {
      const cx = x(e.at);
      const shape =
        e.state === 'up'
          ? `${(cx - 5).toFixed(1)},12 ${(cx + 5).toFixed(1)},12 ${cx.toFixed(1)},3`
          : `${(cx - 5).toFixed(1)},3 ${(cx + 5).toFixed(1)},3 ${cx.toFixed(1)},12`;
      const what = lang === 'ja' ? (e.state === 'up' ? 'トンネル確立' : 'トンネル切断') : `tunnel ${e.state}`;
      return html`<polygon class="t-${e.state === 'up' ? 'up' : 'down'}" points="${shape}"><title>${what} ${dayTime(e.at)} ${e.reason ? lineReasonText(lang, e.reason) : ''}</title></polygon>`;
    });
  // Labels: every 3 hours over a day, each midnight over longer periods.
  const labels: Html[] = [];
  const days = span > 2 * 86_400_000;
  const first = new Date(from);
  first.setMinutes(0, 0, 0);
  for (let t = first.getTime(); t <= to; t += 3_600_000) {
    const d = new Date(t);
    if (t < from || (days ? d.getHours() !== 0 : d.getHours() % 3 !== 0)) continue;
    const text = days ? `${d.getMonth() + 1}/${d.getDate()}` : `${p2(d.getHours())}:00`;
    labels.push(html`<text x="${Math.min(W - 30, x(t)).toFixed(1)}" y="${H - 4}">${text}</text>`);
  }
  const title = lang === 'ja' ? '回線の状態の推移' : "The line's state over time";
  return html`<svg class="chart timeline" viewBox="0 0 ${W} ${H}" role="img" aria-label="${title}">${bars}${marks}${labels}</svg>`;
}

export interface LinePicture {
  events: LineEvent[];
  rows: HistoryRow[];
  from: number;
  to: number;
  now: LineNow;
}

/** The periods the line was down or degraded, newest first, with their length (ongoing: to the end). */
export function troubles(segments: Segment[]): Segment[] {
  return segments.filter((s) => s.state === 'down' || s.state === 'degraded').reverse();
}

/**
 * The timeline with its legend and the list of the periods the line was down or degraded (start,
 * length, why); `full` adds the tunnel's events (the history page).
 */
export function lineSection(lang: Lang, p: LinePicture, opts: { full?: boolean; limit?: number } = {}): Html {
  const ja = lang === 'ja';
  const segments = lineSegments(p.events, p.rows, p.from, p.to, p.now);
  const tunnel = p.events.filter((e) => e.kind === 'tunnel' && e.at >= p.from);
  const legend = html`<p class="legend">${(['up', 'degraded', 'down', 'unknown'] as const).map(
    (s) => html`<span class="k s-${s}"></span>${STATE_TEXT[lang][s]} `,
  )}${tunnel.length ? (ja ? ' ▲▼ トンネルの確立・切断' : ' ▲▼ tunnel up / down') : ''}</p>`;
  const list = troubles(segments).slice(0, opts.limit ?? 50);
  const ongoing = (s: Segment): boolean => s.end >= p.to && s.state === p.now.state;
  const head = ja ? ['状態', '開始', '終了', '長さ', '理由'] : ['State', 'From', 'To', 'Length', 'Why'];
  const rows = list.map(
    (s) =>
      html`<tr data-state="${s.state}"><td data-label="${head[0]}">${STATE_TEXT[lang][s.state]}</td><td data-label="${head[1]}">${dayTime(s.start)}</td><td data-label="${head[2]}">${
        ongoing(s) ? (ja ? '継続中' : 'ongoing') : dayTime(s.end)
      }</td><td class="span" data-label="${head[3]}">${fmtSpan(s.end - s.start, lang)}</td><td data-label="${head[4]}">${s.reason ? lineReasonText(lang, s.reason) : ''}</td></tr>`,
  );
  const table = list.length
    ? html`<table class="troubles cards"><thead><tr>${head.map((h) => html`<th>${h}</th>`)}</tr></thead><tbody>${rows}</tbody></table>`
    : html`<p class="hint">${ja ? 'この期間、回線は切断も不安定もありませんでした。' : 'The line was neither down nor degraded in this period.'}</p>`;
  const tunnelTable =
    opts.full && tunnel.length
      ? html`<h4>${ja ? 'トンネル（IPsec）の確立と切断' : 'The tunnel (IPsec) going up and down'}</h4><table class="tunnel cards"><thead><tr><th>${ja ? '日時' : 'When'}</th><th>${ja ? 'トンネル' : 'Tunnel'}</th><th>${ja ? '理由' : 'Why'}</th></tr></thead><tbody>${[
          ...tunnel,
        ]
          .reverse()
          .map(
            (e) =>
              html`<tr data-tunnel="${e.state}"><td data-label="${ja ? '日時' : 'When'}">${dayTime(e.at)}</td><td data-label="${ja ? 'トンネル' : 'Tunnel'}">${ja ? (e.state === 'up' ? '確立' : '切断') : e.state}</td><td data-label="${ja ? '理由' : 'Why'}">${e.reason ? lineReasonText(lang, e.reason) : ''}</td></tr>`,
          )}</tbody></table>`
      : '';
  return html`${legend}${timelineSvg(segments, tunnel, p.from, p.to, lang)}${table}${tunnelTable}`;
}

/**
 * The line's picture over [from, to) from the backend: its events, the history rows (given, or
 * read) and the status now. Undefined when the backend keeps no line history.
 */
export async function readLinePicture(
  b: Pick<AdminBackend, 'listLineEvents' | 'listHistory'>,
  status: GatewayStatus,
  from: number,
  to: number,
  rows?: HistoryRow[],
): Promise<LinePicture | undefined> {
  let events: LineEvent[];
  try {
    events = await b.listLineEvents(from);
  } catch (e) {
    if (isOnshiError(e, 'ADMIN_NOT_AVAILABLE')) return undefined;
    throw e;
  }
  const history = rows ?? (await b.listHistory(from).catch(() => [] as HistoryRow[]));
  const since = status.line.since ? Date.parse(status.line.since) : undefined;
  return {
    events,
    rows: history,
    from,
    to,
    now: {
      state: status.line.state,
      ...(since !== undefined && Number.isFinite(since) ? { since } : {}),
      startedAt: Date.parse(status.startedAt),
      ...(status.line.lastError ? { code: status.line.lastError } : {}),
    },
  };
}

/** The dashboard's block: the last 24 hours' timeline and the latest troubles (live: pushed again as it changes). */
export function dashboardLine(lang: Lang, pic: LinePicture): Html {
  const ja = lang === 'ja';
  return html`<h3>${ja ? '回線（直近24時間）' : 'The line (last 24 hours)'}</h3>${lineSection(lang, pic, { limit: 5 })}<p><a href="/history">${ja ? '過去の記録（7日間、確認件数、応答時間）' : 'History (7 days, checks, answer times)'}</a></p>`;
}

/** The dashboard's block over the 24 hours before `now`, or undefined when there is no line history. */
export async function dashboardLineBlock(
  b: Pick<AdminBackend, 'listLineEvents' | 'listHistory'>,
  status: GatewayStatus,
  lang: Lang,
  now = Date.now(),
): Promise<Html | undefined> {
  const pic = await readLinePicture(b, status, now - 86_400_000, now);
  return pic ? dashboardLine(lang, pic) : undefined;
}
