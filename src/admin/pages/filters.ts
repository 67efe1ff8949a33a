/**
 * The filters of the list pages: a date range typed as days (local time, the end day included),
 * the paging links that keep the filter, and the form's pieces.
 */
import { type Html, html } from '../views.js';
import type { Lang } from '../i18n.js';
import { w } from './words.js';

export interface DateRange {
  /** at >= from (ms) */
  from?: number;
  /** at < to (ms): the day after the end day */
  to?: number;
  /** as typed, to show again */
  fromText: string;
  toText: string;
}

const DAY_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A `YYYY-MM-DD` as local midnight (ms), `plusDays` later; undefined when it is no such day. */
export function dayStart(text: string | null, plusDays = 0): number | undefined {
  const m = DAY_RE.exec(text ?? '');
  if (!m) return undefined;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + plusDays);
  return Number.isNaN(d.getTime()) ? undefined : d.getTime();
}

export function dateRange(q: URLSearchParams): DateRange {
  const from = dayStart(q.get('from'));
  const to = dayStart(q.get('to'), 1);
  return {
    ...(from !== undefined ? { from } : {}),
    ...(to !== undefined ? { to } : {}),
    fromText: from !== undefined ? q.get('from')! : '',
    toText: to !== undefined ? q.get('to')! : '',
  };
}

/** A select of `values` (the first option: all), labelled. */
export function choice(
  lang: Lang,
  o: { name: string; label: string; value: string | undefined; options: [string, string][] },
): Html {
  return html`<div class="field"><label for="f-${o.name}">${o.label}</label><select id="f-${o.name}" name="${o.name}"><option value="">${w(lang, 'f.all')}</option>${o.options.map(
    ([v, text]) => html`<option value="${v}"${v === o.value ? html` selected` : ''}>${text}</option>`,
  )}</select></div>`;
}

export function dateFields(lang: Lang, r: DateRange): Html {
  return html`<div class="field"><label for="f-from">${w(lang, 'f.from')}</label><input type="date" id="f-from" name="from" value="${r.fromText}"></div>
<div class="field"><label for="f-to">${w(lang, 'f.to')}</label><input type="date" id="f-to" name="to" value="${r.toText}"></div>`;
}

/** The query of the filter as it is, without the cursor: what the paging and CSV links carry. */
export function filterQuery(q: URLSearchParams, keys: readonly string[]): URLSearchParams {
  return new URLSearchParams([...q].filter(([k, v]) => keys.includes(k) && v !== ''));
}

/** Older entries (from the last row's cursor) and back to the newest, keeping the filter. */
export function pager(
  lang: Lang,
  path: string,
  filter: URLSearchParams,
  next: string | undefined,
  paged: boolean,
): Html {
  const at = (cursor?: string): string => {
    const p = new URLSearchParams(filter);
    if (cursor !== undefined) p.set('before', cursor);
    const s = p.toString();
    return s ? `${path}?${s}` : path;
  };
  return html`<p class="pager">${paged ? html`<a href="${at()}" id="page-newest">${w(lang, 'f.newest')}</a> ` : ''}${
    next !== undefined ? html`<a href="${at(next)}" id="page-older">${w(lang, 'f.older')}</a>` : ''
  }</p>`;
}
