/**
 * Events pushed to receipt computers that subscribed to a topic: the line state, the outbox
 * (replays, dead letters, alerts), reconciliation items, the reader, batch inquiries and the
 * time-lag rechecks. A subscriber is a send function; the WebSocket server registers one per
 * connection (with its client id, so that an event meant for one client — a batch's results —
 * reaches only that client) and removes it when it closes.
 */
import { AnyObject, type Static, StringEnum, Type } from '../core/schema-kit.js';

export const EVENT_TOPICS = ['line', 'outbox', 'reconciliation', 'reader', 'batches', 'rechecks'] as const;
export type EventTopic = (typeof EVENT_TOPICS)[number];

/** The event names (the `event` field) of each topic. */
export const EVENT_NAMES = {
  line: ['line.state', 'line.tunnel'],
  outbox: ['outbox.replayed', 'outbox.dead', 'outbox.drained', 'outbox.alert', 'store.alert'],
  reconciliation: ['reconciliation.added', 'reconciliation.handled'],
  reader: ['reader.state'],
  batches: ['batch.progress', 'batch.results', 'batch.done'],
  rechecks: ['recheck.scheduled', 'recheck.found', 'recheck.expired'],
} as const satisfies Record<EventTopic, readonly string[]>;
export type EventNameOf<T extends EventTopic> = (typeof EVENT_NAMES)[T][number];

/** An event of one topic, as a subscriber receives it. */
export type TopicEvent<T extends EventTopic = EventTopic> = {
  [K in T]: Omit<GatewayEvent, 'topic' | 'event'> & { topic: K; event: EventNameOf<K> };
}[T];

/** The schema of one topic's events (any topic's when none is named). */
export function eventSchema(topic?: EventTopic) {
  return Type.Object({
    type: Type.Literal('event'),
    topic: topic ? Type.Literal(topic) : StringEnum(EVENT_TOPICS),
    event: topic ? StringEnum(EVENT_NAMES[topic]) : Type.String({ description: 'e.g. line.state, outbox.replayed' }),
    at: Type.String({ format: 'date-time', description: 'ISO 8601' }),
    seq: Type.Integer({
      description: 'increasing per gateway process: a gap means events were missed (or dropped at the high-water mark)',
    }),
    data: AnyObject(),
  });
}

/** An event as the server publishes it (any topic, any name). */
export type GatewayEvent = Static<ReturnType<typeof eventSchema>> & { topic: EventTopic };

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
