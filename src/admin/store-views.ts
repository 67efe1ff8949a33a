/**
 * The admin page's views of the store: reconciliation items and the hash-chained audit log. Only
 * what staff need to act on an item leaves the store here — the receipt computer's own reference
 * and the validity before and after, never a name or an insurance number.
 */
import type { AuditInput, GatewayStore, ReconciliationEntry } from '../cache/index.js';
import type { AdminBackend, AuditEntry, ReconciliationItem } from './backend.js';
import type { EventHub } from '../protocol/events.js';
import { listRecheckItems } from '../checks/rechecks.js';

type StoreViews = Pick<
  AdminBackend,
  'listReconciliation' | 'markHandled' | 'listAudit' | 'recordAudit' | 'listBatches' | 'listRechecks'
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
}

const label = (o: Told | undefined): string =>
  o?.validityLabel ?? o?.refusedCode ?? (o?.source === 'none' ? '不明（回答なし）' : '—');

export function reconciliationItem(e: ReconciliationEntry): ReconciliationItem {
  const b = (e.before ?? {}) as FiledBefore;
  return {
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

const ADMIN_OUTCOMES = new Set(['ok', 'refused', 'failed']);

/** A check's outcome is a validity or an error code; the page shows ok/refused/failed beside it. */
function pageOutcome(o: string | undefined): AuditEntry['outcome'] {
  if (o === undefined || o === 'ok' || o.startsWith('validity:') || o.startsWith('status:')) return 'ok';
  return o === 'refused' ? 'refused' : 'failed';
}

/** Token changes are their own kind in the chain, so `onshi audit` can list them apart. */
const kindOf = (action: string): AuditInput['kind'] => (action.startsWith('client.') ? 'token' : 'admin');

export function storeAdminViews(store: GatewayStore, events: EventHub): StoreViews {
  return {
    listReconciliation: async ({ includeHandled }) =>
      store.listReconciliation({ includeHandled, limit: 500 }).map(reconciliationItem),
    markHandled: async (id, by) => {
      const n = Number(id);
      await store.markHandled(n);
      events.publish('reconciliation', 'reconciliation.handled', { itemId: n, by: `admin:${by}` });
    },
    listBatches: async () => store.listBatches({ limit: 200 }),
    listRechecks: async () => listRecheckItems(store, { limit: 200 }),
    listAudit: async ({ limit, before }) => {
      // The page pages by time; the store by seq. Newest first, personal fields never decrypted here.
      const cutoff = before ? Date.parse(before) : Infinity;
      const out: AuditEntry[] = [];
      let beforeSeq: number | undefined;
      while (out.length < limit) {
        const rows = store.listAudit({
          newestFirst: true,
          limit: 200,
          personal: false,
          ...(beforeSeq !== undefined ? { before: beforeSeq } : {}),
        });
        if (rows.length === 0) break;
        for (const r of rows) {
          if (r.at.getTime() >= cutoff) continue;
          const detail = [r.mode, r.source, r.outcome && !ADMIN_OUTCOMES.has(r.outcome) ? r.outcome : undefined].filter(
            (d): d is string => Boolean(d),
          );
          out.push({
            at: r.at.toISOString(),
            actor: r.actor,
            action: r.action,
            ...(detail.length ? { detail } : {}),
            outcome: pageOutcome(r.outcome),
            ...(r.target ? { target: r.target } : {}),
            ...(r.remote ? { remote: r.remote } : {}),
          });
          if (out.length >= limit) break;
        }
        beforeSeq = rows[rows.length - 1]!.seq;
      }
      return out;
    },
    recordAudit: async (e) => {
      await store.appendAudit({
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
