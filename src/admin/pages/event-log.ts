/**
 * The event log's facts, read from the store: which audit entries are events (the line's and the
 * tunnel's changes, the gateway's starts and stops, alerts, certificate warnings), each outage's end
 * (the next `line.state.up`), and the outbox entries parked dead. Filtered and paged in SQL; the
 * two sources are merged by time, the cursor is a time.
 */
import type { GatewayStore } from '../../cache/index.js';
import type { EventItem, EventKind, EventQuery } from '../backend.js';

/** The audit actions of each kind (prefixes); `dead` comes from the outbox. */
export const EVENT_ACTIONS: Record<Exclude<EventKind, 'dead'>, readonly string[]> = {
  outage: ['line.state.down', 'line.state.degraded'],
  tunnel: ['line.tunnel.'],
  restart: ['gateway.start', 'gateway.stop', 'gateway.restart'],
  cert: ['cert.warning'],
  store: ['store.alert'],
};

export const EVENT_KINDS: readonly EventKind[] = ['outage', 'tunnel', 'restart', 'cert', 'store', 'dead'];

export function eventKindOf(action: string): EventKind | undefined {
  for (const [kind, prefixes] of Object.entries(EVENT_ACTIONS))
    if (prefixes.some((p) => action.startsWith(p))) return kind as EventKind;
  return undefined;
}

/** When each outage (a down or degraded entry) ended: the first `line.state.up` after it. */
function outageEnds(store: GatewayStore, outages: { at: number }[]): Map<number, number> {
  const ends = new Map<number, number>();
  if (!outages.length) return ends;
  const since = Math.min(...outages.map((o) => o.at));
  const ups = store.history
    .lineEvents(since)
    .filter((e) => e.action === 'line.state.up' && e.at >= since)
    .map((e) => e.at);
  for (const o of outages) {
    const end = ups.find((u) => u >= o.at);
    if (end !== undefined) ends.set(o.at, end);
  }
  return ends;
}

export function listEvents(store: GatewayStore, q: EventQuery): EventItem[] {
  const before = q.before !== undefined ? Number(q.before) : undefined;
  const to = Math.min(q.to ?? Number.MAX_SAFE_INTEGER, Number.isFinite(before) ? before! : Number.MAX_SAFE_INTEGER);
  const range = { ...(q.from !== undefined ? { from: q.from } : {}), to };
  const kinds = q.kind ? [q.kind] : EVENT_KINDS;
  const prefixes = kinds.flatMap((k) => (k === 'dead' ? [] : EVENT_ACTIONS[k]));
  const audit = prefixes.length
    ? store.audit.query({ actionPrefixes: prefixes, limit: q.limit, ...range }).map((e) => ({
        at: e.at.getTime(),
        action: e.action,
        ...(e.target ? { target: e.target } : {}),
      }))
    : [];
  const dead = kinds.includes('dead')
    ? store.outbox
        .deadLetters({ limit: q.limit, ...range })
        .map((d) => ({ at: d.at, action: 'outbox.dead', target: d.error ?? d.kind }))
    : [];
  const rows = [...audit, ...dead].sort((a, b) => b.at - a.at).slice(0, q.limit);
  const ends = outageEnds(
    store,
    rows.filter((r) => eventKindOf(r.action) === 'outage'),
  );
  return rows.map((r) => {
    const end = ends.get(r.at);
    return {
      cursor: String(r.at),
      kind: eventKindOf(r.action) ?? 'dead',
      at: new Date(r.at).toISOString(),
      action: r.action,
      ...(r.target ? { target: r.target } : {}),
      ...(end !== undefined ? { endedAt: new Date(end).toISOString() } : {}),
    };
  });
}
