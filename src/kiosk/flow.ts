/**
 * The kiosk's card check, one per paired kiosk. It drives the same card check the WebSocket API
 * does — the `inquiry.card` and `pin.submit` entries of the API's handler table, so the reader
 * progress, the PIN broker, the audit, the metrics and the res_face file are the API's own — and
 * turns its progress into screens for the patient. A screen never carries personal data: the
 * answer goes to the staff view (desk.ts), and the kiosk is told only "done" or an error code.
 *
 * The kiosk token's scope `kiosk` opens nothing on the WebSocket API (scopes.ts); this module is the
 * only door it opens, and only on the reader the token is bound to.
 */
import type { HandlerTable } from '../api/handlers.js';
import type { ClientRecord } from '../api/tokens.js';
import type { RequestContext } from '../api/ws-server.js';
import type { ConsentFlags } from '../checks/counter-advice.js';
import { codeOf, OnshiError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { EventHub, GatewayEvent } from '../protocol/events.js';
import { allows, effectiveScopes } from '../protocol/scopes.js';
import type { AnswerBodyOf } from '../protocol/answers.js';
import { type ParsedRequest, parseRequest } from '../protocol/schema.js';
import type { KioskDesk } from './desk.js';

/** The only API requests a kiosk makes. */
type KioskRequest = 'inquiry.card' | 'pin.submit';

export type KioskErrorCode =
  | 'KIOSK_BUSY'
  | 'KIOSK_NOT_ASKING'
  | 'KIOSK_IDLE'
  | 'KIOSK_CARD_REMOVED'
  | 'KIOSK_SCOPE'
  | 'KIOSK_NOT_WAITING';

/** What the kiosk page shows. No field ever holds a name, a number or an answer. */
export type Screen =
  /** `visual`: staff have confirmed the face; the check waits for the card (no start buttons) */
  | { screen: 'card'; visual?: true }
  | { screen: 'reading' }
  | { screen: 'face' }
  | { screen: 'pin'; triesLeft: number; confirmRequired: boolean; wrong: boolean; refused?: string }
  | { screen: 'consents' }
  | { screen: 'checking' }
  | { screen: 'done' }
  | { screen: 'error'; code: string };

export interface KioskFlowOptions {
  handlers: Pick<HandlerTable, KioskRequest>;
  desk: KioskDesk;
  events: EventHub;
  logger: Logger;
  /** no touch for this long ends the check and returns to the first screen (default 60 s) */
  idleMs?: number;
  /** how long "done" or an error stays before the first screen again (default 8 s) */
  endScreenMs?: number;
  /** a check's whole budget (default 5 min) */
  deadlineMs?: number;
}

type Sink = (s: Screen) => void;

interface Session {
  client: ClientRecord;
  screen: Screen;
  sinks: Set<Sink>;
  run?: {
    ac: AbortController;
    inquiryId: string;
    connectionId: string;
    mode: 'pin' | 'visual';
    consents?: { resolve(c: ConsentFlags): void; reject(e: unknown): void };
    wrong: boolean;
  };
  idle?: NodeJS.Timeout;
  end?: NodeJS.Timeout;
}

let seq = 0;

export class KioskFlows {
  private readonly sessions = new Map<string, Session>();
  /** each reader's last card presence: a card put down starts a check, a card lifted ends one */
  private readonly present = new Map<string, boolean>();
  private readonly subId = `kiosk-flows-${++seq}`;

  constructor(private readonly o: KioskFlowOptions) {}

  start(): void {
    this.o.events.subscribe(this.subId, ['reader'], (e) => this.onReader(e));
    for (const e of this.o.events.retained(['reader'])) this.onReader(e);
  }

  stop(): void {
    this.o.events.unsubscribe(this.subId);
    for (const s of this.sessions.values()) {
      this.abort(s, new OnshiError('SHUTTING_DOWN', 'the gateway is stopping'));
      clearTimeout(s.idle);
      clearTimeout(s.end);
    }
  }

  /** A kiosk page's screen stream: the current screen at once, then every change. */
  attach(client: ClientRecord, sink: Sink): () => void {
    const s = this.session(client);
    s.sinks.add(sink);
    sink(s.screen);
    return () => s.sinks.delete(sink);
  }

  /** Starts a check on the kiosk's reader (the start button, or a card put on the reader). */
  begin(client: ClientRecord, mode: 'pin' | 'visual', remote: string): void {
    const s = this.session(client);
    if (s.run) {
      // The patient chose the face check while the PIN check waited for them: start over.
      if (mode === s.run.mode || s.screen.screen !== 'card')
        throw new OnshiError<KioskErrorCode>('KIOSK_BUSY', 'a check is already running on this kiosk');
      this.abort(s, new OnshiError('CANCELLED', 'another mode was chosen'));
    }
    this.touch(s);
    void this.runCheck(s, mode, remote);
  }

  /** One PIN entry for the check waiting for it: the API's `pin.submit`, on this kiosk's own "connection". */
  async pin(client: ClientRecord, pin: string, confirmLastTry: boolean): Promise<void> {
    const s = this.session(client);
    const run = s.run;
    if (!run || s.screen.screen !== 'pin')
      throw new OnshiError<KioskErrorCode>('KIOSK_NOT_ASKING', 'the kiosk is not asking for a PIN');
    this.touch(s);
    const req = this.request({
      type: 'pin.submit',
      id: `${run.inquiryId}-pin`,
      inquiryId: run.inquiryId,
      pin,
      confirmLastTry,
    });
    this.show(s, { screen: 'checking' });
    await this.call('pin.submit', req, this.context(s, run, ''));
  }

  /** The consents the patient chose (after the PIN): the check goes on to central with them. */
  consents(client: ClientRecord, flags: ConsentFlags): void {
    const s = this.session(client);
    const waiter = s.run?.consents;
    if (!waiter || s.screen.screen !== 'consents')
      throw new OnshiError<KioskErrorCode>('KIOSK_NOT_ASKING', 'the kiosk is not asking for consents');
    this.touch(s);
    s.run!.consents = undefined;
    this.show(s, { screen: 'checking' });
    waiter.resolve(flags);
  }

  /** The patient pressed "cancel" (or the page's own idle timer fired). */
  cancel(client: ClientRecord): void {
    const s = this.session(client);
    this.abort(s, new OnshiError('CANCELLED', 'cancelled at the kiosk'));
    this.show(s, { screen: 'card' });
  }

  /**
   * A touch on the page (sent at most every few seconds while a check runs): the server's idle
   * clock starts again too, so a patient still typing or choosing is never cut off by it.
   */
  touched(client: ClientRecord): void {
    const s = this.session(client);
    if (s.run) this.touch(s);
  }

  /** The idle time, for the page's own clock (the same value: kiosk.idleSeconds). */
  get idleMs(): number {
    return this.o.idleMs ?? 60_000;
  }

  /** For tests and the status: the kiosk's current screen. */
  screenOf(clientId: string): Screen | undefined {
    return this.sessions.get(clientId)?.screen;
  }

  private session(client: ClientRecord): Session {
    if (!allows(effectiveScopes(client.scopes), ['kiosk']) || !client.reader)
      throw new OnshiError<KioskErrorCode>('KIOSK_SCOPE', 'only a paired kiosk token drives a kiosk');
    let s = this.sessions.get(client.id);
    if (!s) {
      s = { client, screen: { screen: 'card' }, sinks: new Set() };
      this.sessions.set(client.id, s);
    }
    return s;
  }

  private show(s: Session, screen: Screen): void {
    s.screen = screen;
    clearTimeout(s.end);
    if (screen.screen === 'done' || screen.screen === 'error')
      s.end = setTimeout(() => this.show(s, { screen: 'card' }), this.o.endScreenMs ?? 8000);
    for (const sink of s.sinks) sink(screen);
  }

  /** Any touch on the page: the idle clock starts again. No touch for idleMs: back to the start. */
  private touch(s: Session): void {
    clearTimeout(s.idle);
    s.idle = setTimeout(() => {
      if (!s.run) return;
      this.abort(s, new OnshiError<KioskErrorCode>('KIOSK_IDLE', 'no touch for a minute: the check was ended'));
      this.show(s, { screen: 'card' });
    }, this.idleMs);
  }

  private abort(s: Session, reason: OnshiError): void {
    if (!s.run) return;
    s.run.consents?.reject(reason);
    s.run.ac.abort(reason);
    s.run = undefined;
  }

  /** The request checked against the API's own schema (defaults filled in), as a client's would be. */
  private request<T extends KioskRequest>(msg: { type: T } & Record<string, unknown>): ParsedRequest<T> {
    const parsed = parseRequest(JSON.stringify(msg));
    if (!parsed.ok) throw new OnshiError('INVALID_MESSAGE', parsed.error.message);
    return parsed.request as ParsedRequest<T>;
  }

  private context(s: Session, run: NonNullable<Session['run']>, remote: string): RequestContext {
    return {
      client: s.client,
      connectionId: run.connectionId,
      // The page is served over TLS only (server.ts): the PIN crosses nothing else.
      secure: true,
      remote,
      deadline: Date.now() + (this.o.deadlineMs ?? 300_000),
      signal: run.ac.signal,
      progress: (e) => this.progress(s, run, e),
      askConsents: (signal) =>
        new Promise<ConsentFlags>((resolve, reject) => {
          if (signal.aborted) return reject(signal.reason);
          run.consents = { resolve, reject };
          this.show(s, { screen: 'consents' });
        }),
    };
  }

  private call<T extends KioskRequest>(type: T, req: ParsedRequest<T>, ctx: RequestContext): Promise<AnswerBodyOf<T>> {
    const handler = this.o.handlers[type] as (r: ParsedRequest<T>, c: RequestContext) => Promise<AnswerBodyOf<T>>;
    return handler(req, ctx);
  }

  private async runCheck(s: Session, mode: 'pin' | 'visual', remote: string): Promise<void> {
    const n = ++seq;
    const run: NonNullable<Session['run']> = {
      ac: new AbortController(),
      inquiryId: `kiosk-${s.client.id}-${n}`,
      connectionId: `kiosk:${s.client.id}:${n}`,
      mode,
      wrong: false,
    };
    s.run = run;
    const reader = s.client.reader!;
    const who = { kiosk: s.client.name, reader, mode };
    try {
      if (mode === 'visual') {
        this.show(s, { screen: 'face' });
        await this.o.desk.awaitFace({ kioskId: s.client.id, kiosk: s.client.name, reader }, run.ac.signal);
        this.touch(s);
        // The face is confirmed: now the card (read at once if it already lies on the reader).
        this.show(s, { screen: 'card', visual: true });
      } else this.show(s, { screen: 'card' });
      const req = this.request({ type: 'inquiry.card', id: run.inquiryId, mode, readerName: reader });
      const answer = await this.call('inquiry.card', req, this.context(s, run, remote));
      if (s.run !== run) return;
      this.o.desk.recordResult(who, answer.result);
      s.run = undefined;
      this.show(s, { screen: 'done' });
    } catch (e) {
      const code = run.ac.signal.aborted ? codeOf(run.ac.signal.reason) : codeOf(e);
      this.o.desk.record({
        ...who,
        outcome: run.ac.signal.aborted ? 'cancelled' : 'failed',
        code,
        warnings: [],
        consentsSent: [],
      });
      this.o.logger.info('kiosk check ended without an answer', {
        event: 'kiosk_check_failed',
        kiosk: s.client.id,
        code,
      });
      if (s.run !== run) return;
      s.run = undefined;
      this.show(s, { screen: 'error', code });
    }
  }

  private progress(s: Session, run: NonNullable<Session['run']>, e: Record<string, unknown>): void {
    if (s.run !== run) return;
    if (e.type === 'pin.wrong') {
      run.wrong = true;
      return;
    }
    if (e.type === 'pin.required' || e.type === 'pin.refused') {
      const prior = s.screen.screen === 'pin' ? s.screen : undefined;
      const triesLeft = typeof e.triesLeft === 'number' ? e.triesLeft : (prior?.triesLeft ?? 0);
      this.show(s, {
        screen: 'pin',
        triesLeft,
        confirmRequired: e.type === 'pin.required' ? e.confirmRequired === true : (prior?.confirmRequired ?? false),
        wrong: run.wrong,
        ...(e.type === 'pin.refused' ? { refused: String(e.reason) } : {}),
      });
      run.wrong = false;
      return;
    }
    if (e.type !== 'inquiry.progress') return;
    if (e.stage === 'card_inserted' || e.stage === 'certificate_read') this.show(s, { screen: 'reading' });
    else if (e.stage === 'checking' || e.stage === 'checking_offline') this.show(s, { screen: 'checking' });
  }

  /** A card put on a kiosk's reader starts its check; a card lifted mid-check ends it at once. */
  private onReader(e: GatewayEvent): void {
    if (e.event !== 'reader.state') return;
    const readers = (e.data.readers ?? []) as { name: string; card: boolean }[];
    for (const r of readers) {
      const was = this.present.get(r.name) ?? false;
      this.present.set(r.name, r.card);
      for (const s of this.sessions.values()) {
        if (s.client.reader !== r.name) continue;
        if (!r.card && was && s.run && s.screen.screen !== 'card' && s.screen.screen !== 'face') {
          this.abort(s, new OnshiError<KioskErrorCode>('KIOSK_CARD_REMOVED', 'the card was taken off the reader'));
          this.show(s, { screen: 'error', code: 'KIOSK_CARD_REMOVED' });
        } else if (r.card && !was && !s.run && s.sinks.size > 0 && s.screen.screen === 'card') {
          this.begin(s.client, 'pin', 'reader');
        }
      }
    }
  }
}
