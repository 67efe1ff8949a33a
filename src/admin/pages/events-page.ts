/**
 * The event log page (/events): what happened to the gateway, newest first — outages with their
 * start, end and length, the tunnel, starts and stops, certificate and database warnings, dead
 * letters — filtered by kind and days, paged. Every kind and code in words on a Japanese page.
 */
import type { EventItem, EventKind } from '../backend.js';
import { storeAlertText } from '../attention.js';
import { CHECK_NAME_JA, centralCodeText, jaOr, lineReasonText } from '../messages-ja.js';
import { fmtDuration, fmtTime, type Html, html, layout, type PageContext } from '../views.js';
import type { Lang } from '../i18n.js';
import { EVENT_KINDS } from './event-log.js';
import { choice, type DateRange, dateFields, pager } from './filters.js';
import { type WordKey, w } from './words.js';

export const EVENTS_PAGE_SIZE = 50;

export function isEventKind(v: string | null): v is EventKind {
  return (EVENT_KINDS as readonly (string | null)[]).includes(v);
}

/** What happened and its detail, in the page's language. */
export function eventText(lang: Lang, e: EventItem): { what: string; detail: Html | string } {
  const target = e.target ?? '';
  switch (e.kind) {
    case 'outage':
      return {
        what: w(lang, e.action === 'line.state.down' ? 'ev.line.down' : 'ev.line.degraded'),
        detail: lineReasonText(lang, target),
      };
    case 'tunnel':
      return {
        what: w(lang, e.action === 'line.tunnel.up' ? 'ev.tunnel.up' : 'ev.tunnel.down'),
        detail: lineReasonText(lang, target),
      };
    case 'restart': {
      const key = `ev.${e.action}` as WordKey;
      return {
        what: w(
          lang,
          ['gateway.start', 'gateway.stop', 'gateway.restart'].includes(e.action) ? key : 'ev.gateway.start',
        ),
        detail: e.action === 'gateway.start' && target ? w(lang, 'ev.version', { v: target }) : '',
      };
    }
    case 'cert': {
      const [name = '', days = '0'] = target.split(':');
      const named = jaOr(lang, CHECK_NAME_JA, name);
      return {
        what: w(lang, 'ev.cert'),
        detail:
          Number(days) < 0
            ? w(lang, 'ev.cert.expired', { name: named })
            : w(lang, 'ev.cert.left', { name: named, days }),
      };
    }
    case 'store':
      return { what: w(lang, 'ev.store'), detail: storeAlertText(target, lang) ?? html`<code>${target}</code>` };
    case 'dead':
      return {
        what: w(lang, 'ev.dead'),
        detail:
          lang === 'ja' && centralCodeText(target)
            ? `${w(lang, 'ev.dead.code')}: ${centralCodeText(target)}`
            : html`${w(lang, 'ev.dead.code')}: <code>${target}</code>`,
      };
  }
}

export function eventsPage(
  ctx: PageContext,
  o: {
    items?: EventItem[];
    kind?: EventKind;
    range: DateRange;
    filter: URLSearchParams;
    paged: boolean;
    now: number;
    note?: Html;
  },
): string {
  const L = (k: WordKey): string => w(ctx.lang, k);
  const items = o.items ?? [];
  const rows = items.map((e) => {
    const { what, detail } = eventText(ctx.lang, e);
    const outage = e.kind === 'outage';
    const end = e.endedAt ? Date.parse(e.endedAt) : o.now;
    return html`<tr data-kind="${e.kind}"><td data-label="${L('ev.at')}">${fmtTime(e.at)}</td><td data-label="${L('ev.kind')}">${L(`ev.kind.${e.kind}`)}</td>
<td data-label="${L('ev.what')}"><strong>${what}</strong>${detail ? html`<div class="hint">${detail}</div>` : ''}</td>
<td data-label="${L('ev.ended')}">${outage ? (e.endedAt ? fmtTime(e.endedAt) : L('ev.ongoing')) : ''}</td>
<td data-label="${L('ev.duration')}" class="duration">${outage ? fmtDuration(end - Date.parse(e.at), ctx.lang) + (e.endedAt ? '' : ` (${L('ev.ongoing')})`) : ''}</td></tr>`;
  });
  const kinds = EVENT_KINDS.map((k): [string, string] => [k, L(`ev.kind.${k}`)]);
  const next = items.length === EVENTS_PAGE_SIZE ? items[items.length - 1]!.cursor : undefined;
  return layout(
    ctx,
    L('ev.title'),
    html`${o.note ?? ''}<p class="hint">${L('ev.help')}</p>
<form method="get" action="/events" class="filters" id="events-filter">${choice(ctx.lang, { name: 'kind', label: L('ev.kind'), value: o.kind, options: kinds })}${dateFields(ctx.lang, o.range)}
<div class="field buttons"><button type="submit" id="filter-apply">${L('f.apply')}</button> <a href="/events" class="button">${L('f.reset')}</a></div></form>
${
  o.items
    ? items.length
      ? html`<table class="cards events"><thead><tr><th>${L('ev.at')}</th><th>${L('ev.kind')}</th><th>${L('ev.what')}</th><th>${L('ev.ended')}</th><th>${L('ev.duration')}</th></tr></thead><tbody>${rows}</tbody></table>`
      : html`<p>${L('ev.none')}</p>`
    : ''
}${pager(ctx.lang, '/events', o.filter, next, o.paged)}`,
  );
}
