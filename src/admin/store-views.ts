/**
 * The admin page's views of the store: reconciliation items and the hash-chained audit log. What
 * staff need to act on an item leaves the store here — the patient's name and insurance as the
 * answers gave them (the page is authenticated and on the box), the validity before and after and
 * who marked it handled; the audit log's personal fields are never decrypted for the page.
 */
import type { AuditInput, GatewayStore, LineEventRow, ReconciliationEntry } from '../cache/index.js';
import type { AdminBackend, AuditEntry, LineEvent, ReconciliationItem } from './backend.js';
import type { EventHub } from '../protocol/events.js';
import { listRecheckItems } from '../checks/rechecks.js';
import { listEvents } from './pages/event-log.js';

type StoreViews = Pick<
  AdminBackend,
  | 'listReconciliation'
  | 'markHandled'
  | 'listAudit'
  | 'recordAudit'
  | 'listBatches'
  | 'listRechecks'
  | 'listHistory'
  | 'listUsage'
  | 'listLineEvents'
  | 'listEvents'
>;

interface FiledBefore {
  kind?: string;
  clientId?: string;
  inquiryId?: string;
  checkedAt?: string;
  told?: Told;
}
interface Told {
  source?: string;
  validityLabel?: string;
  refusedCode?: string;
  name?: string;
  nameKana?: string;
  birthdate?: string;
  insurances?: { insurerNumber?: string; symbol?: string; number?: string }[];
}

/** Who the check was about, as the answers named the patient: the page is authenticated, the box keeps it. */
function patientOf(...answers: (Told | undefined)[]): ReconciliationItem['patient'] {
  const named = answers.find((a) => a?.name);
  if (!named) return undefined;
  const ins = answers.flatMap((a) => a?.insurances ?? []).find((i) => i.insurerNumber);
  return {
    name: named.name!,
    ...(named.nameKana ? { nameKana: named.nameKana } : {}),
    ...(named.birthdate ? { birthdate: named.birthdate } : {}),
    ...(ins?.insurerNumber ? { insurerNumber: ins.insurerNumber } : {}),
    ...(ins?.symbol || ins?.number ? { symbolNumber: [ins.symbol, ins.number].filter(Boolean).join('・') } : {}),
  };
}

const label = (o: Told | undefined): string =>
  o?.validityLabel ?? o?.refusedCode ?? (o?.source === 'none' ? '不明（回答なし）' : '—');

export function reconciliationItem(e: ReconciliationEntry): ReconciliationItem {
  const b = (e.before ?? {}) as FiledBefore;
  const patient = patientOf(e.after as Told, b.told);
  return {
    ...(patient ? { patient } : {}),
    id: String(e.id),
    checkedAt: b.checkedAt ?? e.createdAt.toISOString(),
    reverifiedAt: e.createdAt.toISOString(),
    kind: b.kind === 'card' ? 'card' : 'numbers',
    client: b.clientId ?? '—',
    ...(b.inquiryId ? { patientRef: b.inquiryId } : {}),
    before: label(b.told),
    after: label(e.after as Told),
    ...(e.handledAt ? { handledAt: e.handledAt.toISOString() } : {}),
  };
}

/** `line.state.down`, `line.tunnel.up`… (daemon/check-parts.ts, daemon/line.ts) as a LineEvent. */
export function lineEvent(r: LineEventRow): LineEvent[] {
  const m = /^line\.(state|tunnel)\.(up|degraded|down)$/.exec(r.action);
  if (!m) return [];
  return [
    {
      at: r.at,
      kind: m[1] as LineEvent['kind'],
      state: m[2] as LineEvent['state'],
      ...(r.target ? { reason: r.target } : {}),
    },
  ];
}

const ADMIN_OUTCOMES = new Set(['ok', 'refused', 'failed']);

/** A check's outcome is a validity or an error code; the page shows ok/refused/failed beside it. */
function pageOutcome(o: string | undefined): AuditEntry['outcome'] {
  if (o === undefined || o === 'ok' || o.startsWith('validity:') || o.startsWith('status:')) return 'ok';
  return o === 'refused' ? 'refused' : 'failed';
}

/**
 * Who marked each item handled: the store keeps when, the audit chain keeps who (the admin page's
 * `reconciliation.handled`, the API's `reconciliation.handle`). The newest 2,000 such entries are read.
 */
function handlersFromAudit(store: GatewayStore): Map<string, string> {
  const by = new Map<string, string>();
  const rows = store.audit.query({ actionPrefixes: ['reconciliation.handle'], outcome: 'ok', limit: 2000 });
  for (const r of rows) {
    if (r.action !== 'reconciliation.handled' && r.action !== 'reconciliation.handle') continue;
    if (!r.target || by.has(r.target)) continue;
    by.set(r.target, r.actor);
  }
  return by;
}

/** Token changes are their own kind in the chain, so `onshi audit` can list them apart. */
const kindOf = (action: string): AuditInput['kind'] => (action.startsWith('client.') ? 'token' : 'admin');

export function storeAdminViews(store: GatewayStore, events: EventHub): StoreViews {
  return {
    listReconciliation: async ({ includeHandled }) => {
      const items = store.reconciliation.list({ includeHandled, limit: 500 }).map(reconciliationItem);
      if (items.some((i) => i.handledAt)) {
        const by = handlersFromAudit(store);
        for (const i of items) if (i.handledAt && by.has(i.id)) i.handledBy = by.get(i.id)!;
      }
      return items;
    },
    markHandled: async (id, by) => {
      const n = Number(id);
      await store.reconciliation.markHandled(n);
      events.publish('reconciliation', 'reconciliation.handled', { itemId: n, by: `admin:${by}` });
    },
    listBatches: async () => store.batches.list({ limit: 200 }),
    listHistory: async (since) => store.history.list(since),
    listLineEvents: async (since) => store.history.lineEvents(since).flatMap(lineEvent),
    listUsage: async (month) => ({ months: store.usage.months(), days: store.usage.days(month) }),
    listRechecks: async () => listRecheckItems(store, { limit: 200 }),
    listEvents: async (q) => listEvents(store, q),
    listAudit: async (q) => {
      // Filtered and paged in SQL (the cursor is a seq); personal fields never decrypted here.
      const before = q.before !== undefined ? Number(q.before) : undefined;
      const rows = store.audit.query({
        limit: q.limit,
        ...(before !== undefined && Number.isSafeInteger(before) ? { before } : {}),
        ...(q.kind ? { kinds: [q.kind] } : {}),
        ...(q.outcome ? { outcome: q.outcome } : {}),
        ...(q.q ? { search: q.q } : {}),
        ...(q.actors?.length ? { actors: q.actors } : {}),
        ...(q.actions?.length ? { actions: q.actions } : {}),
        ...(q.from !== undefined ? { from: q.from } : {}),
        ...(q.to !== undefined ? { to: q.to } : {}),
      });
      return rows.map((r) => {
        // the line's entries are events, not actions: their state is in the action itself
        const event = r.action.startsWith('line.');
        const detail = event
          ? []
          : [r.mode, r.source, r.outcome && !ADMIN_OUTCOMES.has(r.outcome) ? r.outcome : undefined].filter(
              (d): d is string => Boolean(d),
            );
        return {
          cursor: String(r.seq),
          at: r.at.toISOString(),
          actor: r.actor,
          action: r.action,
          ...(detail.length ? { detail } : {}),
          outcome: event ? 'ok' : pageOutcome(r.outcome),
          ...(r.target ? { target: r.target } : {}),
          ...(r.remote ? { remote: r.remote } : {}),
        };
      });
    },
    recordAudit: async (e) => {
      await store.audit.append({
        kind: kindOf(e.action),
        actor: e.actor,
        action: e.action.replace(/[^A-Za-z0-9_.:-]+/g, '_').slice(0, 64),
        outcome: e.outcome,
        ...(e.target ? { target: e.target.slice(0, 128) } : {}),
        ...(e.remote ? { remote: e.remote.slice(0, 64) } : {}),
      });
    },
  };
}
