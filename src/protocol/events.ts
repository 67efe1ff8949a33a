/**
 * Events pushed to receipt computers that subscribed to a topic: the line state, the outbox
 * (replays, dead letters, alerts), reconciliation items, the reader, batch inquiries and the
 * time-lag rechecks. A subscriber is a send function; the WebSocket server registers one per
 * connection (with its client id, so that an event meant for one client — a batch's results —
 * reaches only that client) and removes it when it closes.
 */
export const EVENT_TOPICS = ['line', 'outbox', 'reconciliation', 'reader', 'batches', 'rechecks'] as const;
export type EventTopic = (typeof EVENT_TOPICS)[number];

export interface GatewayEvent {
  type: 'event';
  topic: EventTopic;
  /** e.g. line.state, outbox.replayed, outbox.dead, outbox.alert, reconciliation.added */
  event: string;
  /** ISO 8601 */
  at: string;
  /** per gateway process, increasing: a client can tell it missed some */
  seq: number;
  data: Record<string, unknown>;
}

export type EventSink = (e: GatewayEvent) => void;

export class EventHub {
  private readonly subs = new Map<string, { topics: Set<EventTopic>; sink: EventSink; owner?: string }>();
  private seq = 0;
  /** the last event per topic+name, for a late subscriber's first view (e.g. the current line state) */
  private readonly last = new Map<string, GatewayEvent>();

  /** `owner`: the client id behind this subscriber, for events published `to` one client. */
  subscribe(id: string, topics: readonly EventTopic[], sink: EventSink, owner?: string): void {
    const prior = this.subs.get(id);
    const set = new Set<EventTopic>([...(prior?.topics ?? []), ...topics]);
    this.subs.set(id, { topics: set, sink, ...(owner !== undefined ? { owner } : {}) });
  }

  unsubscribe(id: string, topics?: readonly EventTopic[]): void {
    if (!topics) {
      this.subs.delete(id);
      return;
    }
    const s = this.subs.get(id);
    if (!s) return;
    for (const t of topics) s.topics.delete(t);
    if (s.topics.size === 0) this.subs.delete(id);
  }

  topicsOf(id: string): EventTopic[] {
    return [...(this.subs.get(id)?.topics ?? [])];
  }

  /** Whether anyone would get an event of `topic` (published `to` this owner): lets a publisher skip building it. */
  hasSubscriber(topic: EventTopic, to?: string): boolean {
    for (const s of this.subs.values()) if (s.topics.has(topic) && (to === undefined || s.owner === to)) return true;
    return false;
  }

  /** `to`: only subscribers registered with this owner (client id) get it; such an event is never retained. */
  publish(
    topic: EventTopic,
    event: string,
    data: Record<string, unknown>,
    opts: { retain?: boolean; to?: string } = {},
  ): GatewayEvent {
    const e: GatewayEvent = { type: 'event', topic, event, at: new Date().toISOString(), seq: ++this.seq, data };
    if (opts.retain && opts.to === undefined) this.last.set(`${topic} ${event}`, e);
    for (const s of this.subs.values()) {
      if (s.topics.has(topic) && (opts.to === undefined || s.owner === opts.to)) s.sink(e);
    }
    return e;
  }

  /** Whether this event is the current state of its kind (published with retain and not superseded). */
  isRetained(e: GatewayEvent): boolean {
    return this.last.get(`${e.topic} ${e.event}`) === e;
  }

  /** Retained events of these topics (the current state), for a new subscriber. */
  retained(topics: readonly EventTopic[]): GatewayEvent[] {
    return [...this.last.values()].filter((e) => topics.includes(e.topic));
  }

  get subscriberCount(): number {
    return this.subs.size;
  }
}
