/**
 * Per-client scopes: what a token may ask and which event topics it may receive. A token holds one
 * or more scopes; what it may do is the union. Tokens created before scopes existed have none and
 * are `full`.
 *
 * The mapping is by request-type prefix and by topic name rather than a list of every request, so
 * request types and topics added later get a scope without touching this file — and anything that
 * matches no rule is allowed to `full` only (fail closed). A unit test checks that every type in
 * REQUEST_SCHEMAS and every topic in EVENT_TOPICS is covered by an explicit rule.
 */
export const SCOPES = ['full', 'inquiry', 'batch', 'events:read', 'admin-ops', 'kiosk'] as const;
export type Scope = (typeof SCOPES)[number];

export const SCOPE_DESCRIPTIONS: Record<Scope, string> = {
  full: 'everything (the default)',
  inquiry: 'single checks by numbers or card, with PIN and cancel; line, reader and outbox events',
  batch: 'batch checks (batch.*); line and batches events',
  'events:read': 'status and subscriptions to events without personal data (line, reader): e.g. a waiting-room display',
  'admin-ops': 'reconciliation and recheck lists and handling; line, outbox, reconciliation and rechecks events',
  kiosk:
    "a paired patient kiosk (src/kiosk/): its own page's card check on its one reader; nothing on the WebSocket API, not even status",
};

/**
 * Scopes that the WebSocket API refuses for everything, ALWAYS included: a kiosk token lives on a
 * tablet at the patient's side of the counter, and must not open anything but its own flow.
 */
const API_CLOSED: ReadonlySet<Scope> = new Set(['kiosk']);

/** Requests every authenticated client may send: they reveal nothing personal and change nothing. */
const ALWAYS = new Set(['hello', 'ping', 'subscribe', 'unsubscribe', 'status']);

/** First matching rule wins: an exact type, or a prefix ending in '.'. */
const REQUEST_RULES: readonly (readonly [string, readonly Scope[]])[] = [
  ['inquiry.', ['inquiry']],
  ['pin.', ['inquiry']],
  ['batch.', ['batch']],
  ['reconciliation.', ['admin-ops']],
  ['rechecks.', ['admin-ops']],
];

/**
 * Topic → scopes that may subscribe (besides full). Topics whose events carry names or answers
 * (outbox.replayed has the fresh result, reconciliation items hold the answers before and after)
 * only go to scopes that need them.
 */
const TOPIC_RULES: Readonly<Record<string, readonly Scope[]>> = {
  line: ['inquiry', 'batch', 'events:read', 'admin-ops'],
  reader: ['inquiry', 'events:read'],
  outbox: ['inquiry', 'admin-ops'],
  reconciliation: ['admin-ops'],
  rechecks: ['admin-ops'],
  batches: ['batch'],
};

/** The scopes that allow a request type (always including full). */
export function scopesForRequest(type: string): Scope[] {
  if (ALWAYS.has(type)) return SCOPES.filter((s) => !API_CLOSED.has(s));
  const rule = REQUEST_RULES.find(([p]) => (p.endsWith('.') ? type.startsWith(p) : type === p));
  return ['full', ...(rule?.[1] ?? [])];
}

/** The scopes that allow subscribing to a topic (always including full). */
export function scopesForTopic(topic: string): Scope[] {
  return ['full', ...(Object.hasOwn(TOPIC_RULES, topic) ? TOPIC_RULES[topic]! : [])];
}

/** Whether a rule (not just the full fallback) names this request type / topic: for the coverage test. */
export function hasExplicitRule(kind: 'request' | 'topic', name: string): boolean {
  if (kind === 'topic') return Object.hasOwn(TOPIC_RULES, name);
  return ALWAYS.has(name) || REQUEST_RULES.some(([p]) => (p.endsWith('.') ? name.startsWith(p) : name === p));
}

/** A record's scopes; none stored means a token from before scopes: full access. */
export function effectiveScopes(stored: readonly string[] | undefined): Scope[] {
  if (!stored || stored.length === 0) return ['full'];
  return stored.filter((s): s is Scope => (SCOPES as readonly string[]).includes(s));
}

export function allows(have: readonly Scope[], needed: readonly Scope[]): boolean {
  return have.some((s) => needed.includes(s));
}

export function isScope(s: string): s is Scope {
  return (SCOPES as readonly string[]).includes(s);
}
