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

/** A row's place in the log: newest first, then the audit chain before the outbox, then by id. */
type Place = [at: number, src: number, id: number];
/** Negative when `a` comes first (is newer). */
const order = (a: Place, b: Place): number => b[0] - a[0] || b[1] - a[1] || b[2] - a[2];

/** `at.src.id` (the last row shown) → its place; a bare time is the place after every row of that ms. */
function cursorPlace(c: string | undefined): Place | undefined {
  const m = /^(\d{1,16})(?:\.([01])\.(\d{1,16}))?$/.exec(c ?? '');
  if (!m) return undefined;
  return m[2] === undefined ? [Number(m[1]) - 1, 2, 0] : [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** Rows sharing a millisecond may straddle a page: the page after reads that ms again and skips what was shown. */
const SAME_MS_MARGIN = 50;

export function listEvents(store: GatewayStore, q: EventQuery): EventItem[] {
  const after = cursorPlace(q.before);
  const to = Math.min(q.to ?? Number.MAX_SAFE_INTEGER, after ? after[0] + 1 : Number.MAX_SAFE_INTEGER);
  const range = { ...(q.from !== undefined ? { from: q.from } : {}), to };
  const limit = q.limit + (after ? SAME_MS_MARGIN : 0);
  const kinds = q.kind ? [q.kind] : EVENT_KINDS;
  const prefixes = kinds.flatMap((k) => (k === 'dead' ? [] : EVENT_ACTIONS[k]));
  const audit = prefixes.length
    ? store.audit.query({ actionPrefixes: prefixes, limit, ...range }).map((e) => ({
        place: [e.at.getTime(), 1, e.seq] as Place,
        action: e.action,
        ...(e.target ? { target: e.target } : {}),
      }))
    : [];
  const dead = kinds.includes('dead')
    ? store.outbox
        .deadLetters({ limit, ...range })
        .map((d) => ({ place: [d.at, 0, d.id] as Place, action: 'outbox.dead', target: d.error ?? d.kind }))
    : [];
  const rows = [...audit, ...dead]
    .sort((a, b) => order(a.place, b.place))
    .filter((r) => !after || order(after, r.place) < 0)
    .slice(0, q.limit);
  const ends = outageEnds(
    store,
    rows.filter((r) => eventKindOf(r.action) === 'outage').map((r) => ({ at: r.place[0] })),
  );
  return rows.map((r) => {
    const [at, src, id] = r.place;
    const end = ends.get(at);
    return {
      cursor: `${at}.${src}.${id}`,
      kind: eventKindOf(r.action) ?? 'dead',
      at: new Date(at).toISOString(),
      action: r.action,
      ...(r.target ? { target: r.target } : {}),
      ...(end !== undefined ? { endedAt: new Date(end).toISOString() } : {}),
    };
  });
}
