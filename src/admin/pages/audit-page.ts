/**
 * The audit log page (/audit) and its CSV (/audit.csv): a filter (kind, outcome), a search (action,
 * who — receipt computers by name —, target), a date range, paging; the CSV holds what the filter
 * selects. The store filters (in SQL); this page only says each entry in words.
 */
import type { AuditEntry, AuditQuery } from '../backend.js';
import { t } from '../i18n.js';
import { auditActionText, auditDetailText, auditTargetText, jaOr, lineReasonText, OUTCOME_JA } from '../messages-ja.js';
import { fmtTime, type Html, html, layout, type PageContext } from '../views.js';
import { eventKindOf } from './event-log.js';
import { eventText } from './events-page.js';
import { choice, type DateRange, dateFields, dateRange, filterQuery, pager } from './filters.js';
import { type WordKey, w } from './words.js';

export const AUDIT_PAGE_SIZE = 100;
export const AUDIT_CSV_MAX = 50_000;
export const AUDIT_FILTER_KEYS = ['kind', 'outcome', 'q', 'from', 'to'] as const;

const KINDS = ['check', 'admin', 'token'] as const;
const OUTCOMES = ['ok', 'refused', 'failed'] as const;

/** The filter in the query string (unknown values are ignored, not refused). */
export function auditQuery(
  q: URLSearchParams,
): Omit<AuditQuery, 'limit' | 'actors' | 'actions'> & { range: DateRange } {
  const kind = KINDS.find((k) => k === q.get('kind'));
  const outcome = OUTCOMES.find((o) => o === q.get('outcome'));
  const text = (q.get('q') ?? '').trim().slice(0, 100);
  const before = q.get('before');
  const range = dateRange(q);
  return {
    range,
    ...(kind ? { kind } : {}),
    ...(outcome ? { outcome } : {}),
    ...(text ? { q: text } : {}),
    ...(before && /^[\w:.-]{1,40}$/.test(before) ? { before } : {}),
    ...(range.from !== undefined ? { from: range.from } : {}),
    ...(range.to !== undefined ? { to: range.to } : {}),
  };
}

const plain = (d: Html | string): string => (typeof d === 'string' ? d : d.text.replace(/<[^>]*>/g, ''));

/** One entry's columns as text: the table and the CSV say the same. */
export function auditColumns(ctx: PageContext, e: AuditEntry): string[] {
  const lang = ctx.lang;
  const event = eventKindOf(e.action);
  const detail = e.detail?.length
    ? ` (${e.detail.map((d) => auditDetailText(lang, d)).join(lang === 'ja' ? '、' : ', ')})`
    : '';
  // the gateway's own events (starts, alerts, certificates) in the event log's words
  const target = !e.target
    ? ''
    : e.action.startsWith('line.')
      ? lineReasonText(lang, e.target)
      : event && event !== 'outage' && event !== 'tunnel'
        ? plain(eventText(lang, { cursor: '', kind: event, at: e.at, action: e.action, target: e.target }).detail)
        : auditTargetText(lang, e.target);
  return [
    fmtTime(e.at),
    e.actor === 'system' ? w(lang, 'au.system') : (ctx.clientName?.(e.actor) ?? e.actor),
    auditActionText(lang, e.action) + detail,
    target,
    jaOr(lang, OUTCOME_JA, e.outcome),
    e.remote ?? '',
  ];
}

function headings(ctx: PageContext): string[] {
  const L = (k: Parameters<typeof t>[1]): string => t(ctx.lang, k);
  return [L('au.at'), L('au.actor'), L('au.action'), L('au.target'), L('au.outcome'), L('au.remote')];
}

export function auditPage(
  ctx: PageContext,
  o: { entries?: AuditEntry[]; query: URLSearchParams; note?: Html },
): string {
  const L = (k: WordKey, p: Record<string, string | number> = {}): string => w(ctx.lang, k, p);
  const f = auditQuery(o.query);
  const head = headings(ctx);
  const list = o.entries ?? [];
  const rows = list.map(
    (e) => html`<tr>${auditColumns(ctx, e).map((c, i) => html`<td data-label="${head[i]!}">${c}</td>`)}</tr>`,
  );
  const filter = filterQuery(o.query, AUDIT_FILTER_KEYS);
  const csv = filter.toString();
  const next = list.length === AUDIT_PAGE_SIZE ? list[list.length - 1]!.cursor : undefined;
  return layout(
    ctx,
    t(ctx.lang, 'au.title'),
    html`${o.note ?? ''}<form method="get" action="/audit" class="filters" id="audit-filter">
${choice(ctx.lang, { name: 'kind', label: L('au.kind'), value: f.kind, options: KINDS.map((k) => [k, L(`au.kind.${k}`)]) })}
${choice(ctx.lang, { name: 'outcome', label: t(ctx.lang, 'au.outcome'), value: f.outcome, options: OUTCOMES.map((k) => [k, jaOr(ctx.lang, OUTCOME_JA, k)]) })}
<div class="field wide"><label for="f-q">${L('au.search')}</label><input type="search" id="f-q" name="q" value="${f.q ?? ''}" maxlength="100"></div>
${dateFields(ctx.lang, f.range)}
<div class="field buttons"><button type="submit" id="filter-apply">${L('f.apply')}</button> <a href="/audit" class="button">${L('f.reset')}</a>
<a href="/audit.csv${csv ? `?${csv}` : ''}" class="button" id="audit-csv" download>${L('au.csv')}</a></div></form>
<p class="hint">${L('au.csvHelp', { n: AUDIT_CSV_MAX })}</p>
${o.entries ? (list.length ? html`<table class="cards audit"><thead><tr>${head.map((h) => html`<th>${h}</th>`)}</tr></thead><tbody>${rows}</tbody></table>` : html`<p>${t(ctx.lang, 'au.none')}</p>`) : ''}
${pager(ctx.lang, '/audit', filter, next, f.before !== undefined)}`,
  );
}

const csvField = (s: string): string => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** UTF-8 with a BOM (Excel reads Japanese right only with it), CRLF lines, RFC 4180 quoting. */
export function auditCsv(ctx: PageContext, entries: AuditEntry[]): Buffer {
  const lines = [headings(ctx), ...entries.map((e) => auditColumns(ctx, e))].map((cols) =>
    // a cell starting with = + - @ is text, not a formula, when the file is opened in a spreadsheet
    cols.map((c) => csvField(/^[=+\-@]/.test(c) ? `'${c}` : c)).join(','),
  );
  return Buffer.from(`\uFEFF${lines.join('\r\n')}\r\n`, 'utf8');
}
