/**
 * What each WebSocket request does: a table keyed by request type. The WebSocket server handles the
 * connection-level ones itself (hello, inquiry.cancel, subscribe, unsubscribe); everything else is
 * routed here and answered with `{ type, ...fields }`.
 */
import type { AuditInput, GatewayStore } from '../cache/index.js';
import { codeOf, OnshiError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { ReaderManager } from '../reader/index.js';
import { inquireByCard, type CardInquiryDeps, type CardResult } from '../checks/card.js';
import { inquireByNumbers, type InquiryDeps } from '../checks/numbers.js';
import type { PinBroker } from '../checks/pin-broker.js';
import { type RecheckJob, toRecheckView } from '../checks/rechecks.js';
import type { CheckContext } from '../checks/result.js';
import type { EventHub } from '../protocol/events.js';
import type { AnswerBodyOf, Handlers } from '../protocol/answers.js';
import type { ApiRequest, CheckContextInput, RequestType } from '../protocol/schema.js';
import type { DaemonStatus } from '../ops/status.js';
import type { CheckKind } from '../ops/metrics.js';
import type { BatchApi } from './batch-api.js';
import type { RequestContext, RequestHandler } from './ws-server.js';

/** A reconciliation item on the wire: the store keeps its two sides as written (outcome.ts summaries). */
type ReconciliationItem = AnswerBodyOf<'reconciliation.list'>['items'][number];
/** The requests the WebSocket server answers itself, on the connection. */
type ConnectionRequest = 'hello' | 'inquiry.cancel' | 'subscribe' | 'unsubscribe';
/** One handler per request type this table answers, each typed by its answer (protocol/answers.ts). */
export type HandlerTable = Handlers<RequestContext, Exclude<RequestType, ConnectionRequest>>;

/** Counts and audits checks (daemon/audit.ts). */
export interface CheckRecorder {
  checked<R extends { source?: string; status?: string; validity?: string }>(
    kind: CheckKind,
    req: { id: string; mode?: 'pin' | 'visual' },
    ctx: RequestContext,
    run: () => Promise<R>,
  ): Promise<R>;
  append(entry: AuditInput): void;
}

export interface HandlerDeps {
  /** the numbers check's parts (central, institution code, outage path, rechecks) */
  inquiry: InquiryDeps & { rechecks: RecheckJob };
  /** the card check's parts other than the reader; absent reader = reader.enabled is false */
  card: Omit<CardInquiryDeps, 'reader'> & { reader: ReaderManager | undefined };
  pins: PinBroker;
  store: GatewayStore;
  events: EventHub;
  batches: BatchApi;
  recorder: CheckRecorder;
  status(): DaemonStatus;
  /** told of each card check's answer (the file exchange's face-reader result) */
  onCardResult?(result: CardResult): Promise<void>;
  logger: Logger;
}

const checkContext = (r: CheckContextInput): CheckContext => ({
  changedInsurer: r.changedInsurer,
  consent: r.consent,
  nameTarget: r.nameTarget,
  ...(r.knownFacts ? { knownFacts: r.knownFacts } : {}),
});

export function createHandlers(d: HandlerDeps): HandlerTable {
  return {
    ping: async () => ({ type: 'pong' }),
    'inquiry.numbers': async (req, ctx) => {
      const input = {
        query: req.query,
        requestId: req.id,
        clientId: ctx.client.id,
        deadline: ctx.deadline,
        context: checkContext(req),
        ...(req.confirmationDate ? { confirmationDate: req.confirmationDate } : {}),
      };
      const result = await d.recorder.checked('numbers', req, ctx, () => inquireByNumbers(d.inquiry, input));
      return { type: 'inquiry.result', result };
    },
    'inquiry.card': async (req, ctx) => {
      const reader = d.card.reader;
      if (!reader)
        throw new OnshiError('READER_DISABLED', 'this gateway has no card reader enabled (reader.enabled is false)');
      const result = await d.recorder.checked('card', req, ctx, () =>
        inquireByCard(
          { ...d.card, reader },
          {
            mode: req.mode,
            limitConsent: req.limitConsent,
            inquiryId: req.id,
            clientId: ctx.client.id,
            connectionId: ctx.connectionId,
            context: checkContext(req),
            deadline: ctx.deadline,
            signal: ctx.signal,
            progress: ctx.progress,
            ...(req.confirmationDate ? { confirmationDate: req.confirmationDate } : {}),
            ...(req.readerName ? { readerName: req.readerName } : {}),
            ...(ctx.askConsents ? { askConsents: ctx.askConsents } : {}),
          },
        ),
      );
      // The official file exchange's face-reader result: never delays or fails the counter's answer.
      d.onCardResult?.(result).catch((e: unknown) =>
        d.logger.error('could not write the face result file', { event: 'fx_face_failed', code: codeOf(e) }),
      );
      return { type: 'inquiry.result', result };
    },
    'pin.submit': async (req, ctx) => {
      d.pins.submit(ctx.connectionId, req.inquiryId, req.pin, req.confirmLastTry);
      return { type: 'pin.accepted', inquiryId: req.inquiryId };
    },
    status: async () => ({ type: 'status', status: d.status() }),
    'reconciliation.list': async (req) => ({
      type: 'reconciliation.items',
      items: d.store.reconciliation
        .list({ includeHandled: req.includeHandled, limit: req.limit })
        .map(({ createdAt, handledAt, ...e }) => ({
          ...e,
          before: e.before as ReconciliationItem['before'],
          after: e.after as ReconciliationItem['after'],
          createdAt: createdAt.toISOString(),
          ...(handledAt ? { handledAt: handledAt.toISOString() } : {}),
        })),
    }),
    'reconciliation.handle': async (req, ctx) => {
      await d.store.reconciliation.markHandled(req.itemId);
      d.recorder.append({
        kind: 'admin',
        actor: ctx.client.id,
        action: 'reconciliation.handle',
        target: String(req.itemId),
        remote: ctx.remote.slice(0, 64),
        outcome: 'ok',
      });
      d.events.publish('reconciliation', 'reconciliation.handled', { itemId: req.itemId, by: ctx.client.id });
      return { type: 'reconciliation.handled', itemId: req.itemId };
    },
    'rechecks.list': async (req) => ({
      type: 'rechecks.items',
      items: d.store.rechecks.list({ ...(req.state ? { state: req.state } : {}), limit: req.limit }).map(toRecheckView),
    }),
    'rechecks.run': async () => ({ type: 'rechecks.ran', ...(await d.inquiry.rechecks.run()) }),
    'batch.submit': (req, ctx) => d.batches.submit(req, ctx.client.id),
    'batch.status': async (req, ctx) => d.batches.status(req, ctx.client.id),
    'batch.results': async (req, ctx) => d.batches.results(req, ctx.client.id),
  };
}

/** The WebSocket server's handler: the table's entry for the request's type. */
export function routeRequests(table: HandlerTable): RequestHandler {
  return async (req, ctx) => {
    // The table is typed per request type; here the request's own type picks its entry.
    const handler = (
      table as Partial<
        Record<string, (r: ApiRequest, c: RequestContext) => Promise<Record<string, unknown> & { type: string }>>
      >
    )[req.type];
    if (!handler) throw new OnshiError('INTERNAL', `${req.type} is handled by the WebSocket server`);
    return handler(req, ctx);
  };
}
