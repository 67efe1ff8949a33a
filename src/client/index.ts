/**
 * The client library for the gateway's WebSocket API (`onshi-gateway/client`): connects with a
 * token (ws:// or wss:// with a pinned CA or certificate fingerprint), negotiates the protocol
 * with `hello`, correlates requests by id, surfaces progress events and typed errors, emits typed
 * topic events, and — with `reconnect` — reconnects with full-jitter backoff and resumes its
 * subscriptions. Used by the CLI and the tests.
 *
 * Requests in flight when a connection drops are rejected with CLIENT_CLOSED (retryable), never
 * re-sent by the library: a check may have reached central, so whether to ask again is the
 * caller's decision. Subscriptions are the library's to restore, since they are pure state.
 */
import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { WebSocket, type ClientOptions } from 'ws';
import { OnshiError } from '../core/errors.js';
import { fullJitter, type BackoffOptions } from '../core/backoff.js';
import {
  type AnswerOf,
  CLOSE_PROTOCOL_UNSUPPORTED,
  DEFAULT_DEADLINES,
  type ErrorAnswer,
  FINAL_TYPES,
  PROTOCOL_VERSION,
  type ProgressMessage,
  type RequestOf,
  type RequestType,
  type Welcome,
} from '../protocol/schema.js';
import type { EventTopic, GatewayEvent, TopicEvent } from '../protocol/events.js';

export type { EventNameOf, EventTopic, GatewayEvent, TopicEvent } from '../protocol/events.js';
export type { InquiryResultWire as InquiryResult } from '../protocol/inquiry-result.js';
export type {
  Answer,
  AnswerOf,
  AnswerType,
  ApiErrorBody,
  ClientRequest,
  ErrorAnswer,
  ProgressMessage,
  RequestOf,
  RequestType,
  Welcome,
} from '../protocol/schema.js';
export { PROTOCOL_VERSION } from '../protocol/schema.js';

/** The gateway's `hello.accepted`: the protocol it speaks, this token's scopes, the connection's limits. */
export type Session = AnswerOf<'hello'>;

export type ClientErrorCode = 'CLIENT_CONNECT_FAILED' | 'CLIENT_CLOSED' | 'CLIENT_TIMEOUT' | 'CLIENT_PIN_MISMATCH';

export interface GatewayClientOptions {
  /** for the WebSocket handshake and the gateway's first answer (default 5000 ms) */
  timeoutMs?: number;
  /** wss://: trust these CA certificates (PEM) instead of the system's */
  ca?: string | Buffer | (string | Buffer)[];
  /**
   * wss://: trust exactly this certificate, by SHA-256 of its DER ("AB:CD:…" as `onshi status`
   * prints it, colons optional) or, stable across renewals, by `spkiSha256` (base64). The token is
   * sent only after the pin matched. Replaces CA and name checks.
   */
  fingerprint256?: string;
  spkiSha256?: string;
  /** reconnect after a dropped connection (default false: one-shot tools want the error) */
  reconnect?: boolean | Partial<BackoffOptions>;
  /** the protocol version to ask for at hello (default this library's) */
  protocol?: string;
  /** sent at hello for the gateway's log, e.g. "receipt-app 4.2" */
  software?: string;
}

export interface ReconnectInfo {
  attempt: number;
  delayMs: number;
  closeCode: number;
}

/** The events a GatewayClient emits. */
export interface GatewayClientEvents {
  /** a topic event from a subscription */
  event: [GatewayEvent];
  /** every message from the gateway, parsed */
  message: [Record<string, unknown>];
  /** a connection is up and hello was accepted (also after each reconnect) */
  connected: [Session];
  /** a connection closed (the code from the gateway, 1006 if it just vanished) */
  close: [number];
  /** a reconnect is scheduled */
  reconnecting: [ReconnectInfo];
  /** the subscriptions were restored after a reconnect */
  resubscribed: [EventTopic[]];
  /** no more reconnects: the token was refused or the protocol is not spoken */
  end: [OnshiError];
  error: [Error];
}

interface Pending {
  resolve(v: never): void;
  reject(e: Error): void;
  onProgress?: (m: ProgressMessage) => void;
  timer: NodeJS.Timeout;
}

/**
 * How long request() waits for an answer before it gives up with CLIENT_TIMEOUT: the request's
 * deadline, which the gateway enforces itself, plus this margin. Only a gateway that has stopped
 * answering on a live connection gets there (a dead connection is found by the heartbeat).
 */
export const ANSWER_MARGIN_MS = 10_000;
/** A request with no deadline of its own has the gateway's api.defaultDeadlineMs, at most this. */
const LONGEST_DEFAULT_DEADLINE_MS = 300_000;

export function answerTimeoutMs(msg: { type: RequestType; deadlineMs?: unknown }): number {
  const deadline =
    typeof msg.deadlineMs === 'number' ? msg.deadlineMs : (DEFAULT_DEADLINES[msg.type] ?? LONGEST_DEFAULT_DEADLINE_MS);
  return deadline + ANSWER_MARGIN_MS;
}

const DEFAULT_RECONNECT: BackoffOptions = { baseMs: 500, capMs: 30_000 };

export class GatewayClient extends EventEmitter<GatewayClientEvents> {
  private readonly pending = new Map<string, Pending>();
  private readonly topics = new Set<EventTopic>();
  private ws: WebSocket | undefined;
  private closedByUser = false;
  /** while open() runs, a close is open()'s failure to report, not a reason to reconnect */
  private opening = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private readonly backoff: BackoffOptions | undefined;
  /** the gateway's `welcome` on the current connection */
  welcome: Welcome | undefined;
  /** the gateway's `hello.accepted` on the current connection: protocol, scopes, limits */
  session: Session | undefined;

  private constructor(
    readonly url: string,
    private readonly token: string,
    private readonly opts: GatewayClientOptions,
  ) {
    super();
    const r = opts.reconnect;
    this.backoff = r ? { ...DEFAULT_RECONNECT, ...(typeof r === 'object' ? r : {}) } : undefined;
  }

  /** Connects (the first connection is not retried: a wrong URL or token is reported at once). */
  static async connect(url: string, token: string, opts: GatewayClientOptions = {}): Promise<GatewayClient> {
    const c = new GatewayClient(url, token, opts);
    await c.open();
    return c;
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** The topics this client is subscribed to (restored after a reconnect). */
  get subscriptions(): EventTopic[] {
    return [...this.topics];
  }

  /**
   * Sends one request; resolves with its answer (`AnswerOf<T>`: a `status` request gives the
   * `status` answer), rejects with the typed error the gateway sent. Progress messages (card
   * checks: inquiry.progress, pin.required…) go to `onProgress`. Without an answer within
   * `timeoutMs` (default: the request's deadline + ANSWER_MARGIN_MS) it rejects with CLIENT_TIMEOUT.
   */
  request<T extends RequestType>(
    msg: RequestOf<T> & { type: T },
    opts: { onProgress?: (m: ProgressMessage) => void; timeoutMs?: number } = {},
  ): Promise<AnswerOf<T>> {
    const id = typeof msg.id === 'string' ? msg.id : randomUUID();
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(
        new OnshiError<ClientErrorCode>('CLIENT_CLOSED', 'not connected to the gateway', { retryable: true }),
      );
    }
    return new Promise<AnswerOf<T>>((resolve, reject) => {
      const timeoutMs = opts.timeoutMs ?? answerTimeoutMs(msg);
      const timer = setTimeout(() => {
        if (this.pending.get(id)?.timer !== timer) return;
        this.pending.delete(id);
        reject(
          new OnshiError<ClientErrorCode>('CLIENT_TIMEOUT', `no answer to ${msg.type} within ${timeoutMs} ms`, {
            retryable: true,
            details: { type: msg.type, id, timeoutMs },
          }),
        );
      }, timeoutMs);
      timer.unref();
      this.pending.set(id, {
        resolve: (v: never) => {
          clearTimeout(timer);
          (resolve as (v: never) => void)(v);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
        ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
        timer,
      });
      ws.send(JSON.stringify({ ...msg, id }));
    });
  }

  /** Subscribes and remembers the topics, so a reconnect subscribes again. */
  async subscribe(topics: EventTopic[]): Promise<EventTopic[]> {
    const answer = await this.request({ type: 'subscribe', topics });
    for (const t of topics) this.topics.add(t);
    return answer.topics;
  }

  async unsubscribe(topics: EventTopic[]): Promise<EventTopic[]> {
    for (const t of topics) this.topics.delete(t);
    const answer = await this.request({ type: 'unsubscribe', topics });
    return answer.topics;
  }

  /** Calls `handler` for each event of `topic` (subscribe separately); returns the remover. */
  onEvent<T extends EventTopic>(topic: T, handler: (e: TopicEvent<T>) => void): () => void {
    const f = (e: GatewayEvent): void => {
      if (e.topic === topic) handler(e as TopicEvent<T>);
    };
    this.on('event', f);
    return () => {
      this.off('event', f);
    };
  }

  /** Resolves at the next `connected` (at once if connected now). */
  waitConnected(): Promise<void> {
    if (this.connected && this.session) return Promise.resolve();
    return new Promise((resolve) => this.once('connected', () => resolve()));
  }

  sendRaw(data: string | Buffer): void {
    this.ws?.send(data);
  }

  /** Closes for good: no reconnect after this. */
  close(): Promise<void> {
    this.closedByUser = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.watchdog);
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      ws.once('close', () => resolve());
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000);
    });
  }

  /** One connection: upgrade with the token, wait for welcome, hello, then restore subscriptions. */
  private async open(): Promise<void> {
    const ws = await this.upgrade();
    this.ws = ws;
    this.opening = true;
    ws.on('message', (data) => this.onMessage(data.toString()));
    ws.on('ping', () => this.feedWatchdog());
    ws.on('close', (code, reason) => this.onClose(ws, code, reason.toString()));
    ws.on('error', (e) => {
      if (this.listenerCount('error') > 0) this.emit('error', e);
    });
    try {
      this.session = await this.request({
        type: 'hello',
        protocol: this.opts.protocol ?? PROTOCOL_VERSION,
        ...(this.opts.software ? { client: this.opts.software } : {}),
      });
      this.feedWatchdog();
      if (this.topics.size > 0) {
        await this.request({ type: 'subscribe', topics: [...this.topics] });
        this.emit('resubscribed', [...this.topics]);
      }
    } catch (e) {
      this.ws = undefined; // its close event is this failure, reported by throwing
      for (const p of this.pending.values())
        p.reject(
          new OnshiError<ClientErrorCode>('CLIENT_CLOSED', 'the connection failed while opening', { retryable: true }),
        );
      this.pending.clear();
      ws.terminate();
      throw e;
    } finally {
      this.opening = false;
    }
    this.attempt = 0;
    this.emit('connected', this.session);
  }

  private upgrade(): Promise<WebSocket> {
    const { url, opts } = this;
    return new Promise((resolve, reject) => {
      const wsOpts: ClientOptions = {
        headers: { authorization: `Bearer ${this.token}` },
        handshakeTimeout: opts.timeoutMs ?? 5000,
        perMessageDeflate: false,
      };
      if (opts.fingerprint256 || opts.spkiSha256)
        wsOpts.createConnection = pinnedTlsConnect(opts) as unknown as ClientOptions['createConnection'];
      else if (opts.ca) wsOpts.ca = opts.ca;
      const ws = new WebSocket(url, wsOpts);
      const timer = setTimeout(
        () => fail('no welcome from the gateway', undefined, 'CLIENT_TIMEOUT'),
        (opts.timeoutMs ?? 5000) * 2,
      );
      const fail = (
        why: string,
        e?: unknown,
        code: ClientErrorCode = 'CLIENT_CONNECT_FAILED',
        details?: Record<string, unknown>,
      ): void => {
        clearTimeout(timer);
        ws.removeAllListeners();
        ws.on('error', () => {});
        ws.terminate();
        reject(
          new OnshiError<ClientErrorCode>(code, `cannot connect to ${url}: ${why}`, {
            retryable: details?.status !== 401,
            cause: e,
            ...(details ? { details } : {}),
          }),
        );
      };
      ws.once('unexpected-response', (_req, res) =>
        fail(
          `HTTP ${res.statusCode}${res.statusCode === 401 ? ' (the token was refused)' : ''}`,
          undefined,
          'CLIENT_CONNECT_FAILED',
          { status: res.statusCode },
        ),
      );
      ws.once('error', (e) =>
        fail(
          e.message,
          e,
          (e as NodeJS.ErrnoException).code === 'CLIENT_PIN_MISMATCH' ? 'CLIENT_PIN_MISMATCH' : 'CLIENT_CONNECT_FAILED',
        ),
      );
      ws.once('message', (data) => {
        clearTimeout(timer);
        ws.removeAllListeners();
        try {
          this.welcome = JSON.parse(data.toString()) as Welcome;
        } catch {
          /* the server always sends JSON */
        }
        resolve(ws);
      });
    });
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.ws) return;
    clearTimeout(this.watchdog);
    for (const p of this.pending.values())
      p.reject(
        new OnshiError<ClientErrorCode>('CLIENT_CLOSED', `connection closed (${code}${reason ? ` ${reason}` : ''})`, {
          retryable: true,
          details: { closeCode: code },
        }),
      );
    this.pending.clear();
    this.session = undefined;
    if (this.opening) return;
    this.emit('close', code);
    if (this.closedByUser || !this.backoff) return;
    if (code === CLOSE_PROTOCOL_UNSUPPORTED)
      return this.end(
        new OnshiError<ClientErrorCode>('CLIENT_CLOSED', 'the gateway does not speak this protocol version', {
          details: { closeCode: code },
        }),
      );
    this.scheduleReconnect(code);
  }

  private scheduleReconnect(closeCode: number): void {
    // Never 0 ms: a gateway that closes at once must not be hammered in a tight loop.
    const delayMs = Math.max(50, fullJitter(this.attempt++, this.backoff));
    this.emit('reconnecting', { attempt: this.attempt, delayMs, closeCode });
    this.retryTimer = setTimeout(() => {
      if (this.closedByUser) return;
      this.open().catch((e: OnshiError) => {
        if (this.closedByUser) return;
        if (e.details?.status === 401 || e.code === 'PROTOCOL_UNSUPPORTED' || e.code === 'CLIENT_PIN_MISMATCH')
          return this.end(e);
        this.scheduleReconnect(1006);
      });
    }, delayMs);
  }

  private end(e: OnshiError): void {
    this.closedByUser = true;
    this.emit('end', e);
  }

  /**
   * The gateway pings every heartbeatMs: after 2.5 intervals without a ping or a message the
   * connection is dead even if TCP has not noticed (a half-open line); drop it and reconnect.
   */
  private feedWatchdog(): void {
    const hb = this.session?.limits.heartbeatMs;
    if (!hb) return;
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => this.ws?.terminate(), hb * 2.5);
    this.watchdog.unref();
  }

  private onMessage(text: string): void {
    this.feedWatchdog();
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    this.emit('message', msg);
    if (msg.type === 'event') return void this.emit('event', msg as unknown as GatewayEvent);
    const id = typeof msg.id === 'string' ? msg.id : undefined;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p) return;
    if (msg.type === 'error') {
      this.pending.delete(id!);
      const e = (msg as ErrorAnswer).error;
      p.reject(
        new OnshiError(e.code, e.message, { retryable: e.retryable, ...(e.details ? { details: e.details } : {}) }),
      );
    } else if (isFinal(msg.type)) {
      this.pending.delete(id!);
      p.resolve(msg as never);
    } else p.onProgress?.(msg as ProgressMessage);
  }
}

function isFinal(type: unknown): boolean {
  return (FINAL_TYPES as readonly unknown[]).includes(type);
}

const hex = (s: string): string => s.replace(/:/g, '').toLowerCase();

/**
 * A TLS connection that holds back every write (the HTTP upgrade with the token) until the
 * gateway's certificate matched the pin; a mismatch destroys the socket before anything is sent.
 */
function pinnedTlsConnect(
  opts: Pick<GatewayClientOptions, 'fingerprint256' | 'spkiSha256'>,
): (options: ConnectionOptions) => TLSSocket {
  return (options) => {
    const sock = tlsConnect({ ...options, rejectUnauthorized: false });
    const write = sock.write;
    const held: unknown[][] = [];
    sock.write = ((...args: unknown[]) => {
      held.push(args);
      return true;
    }) as typeof sock.write;
    sock.once('secureConnect', () => {
      const raw = sock.getPeerCertificate().raw;
      const cert = raw ? new X509Certificate(raw) : undefined;
      const fp = cert ? hex(cert.fingerprint256) : '';
      const spki = cert
        ? createHash('sha256')
            .update(cert.publicKey.export({ type: 'spki', format: 'der' }))
            .digest('base64')
        : '';
      const ok =
        cert !== undefined &&
        (opts.fingerprint256 ? fp === hex(opts.fingerprint256) : true) &&
        (opts.spkiSha256 ? spki === opts.spkiSha256 : true);
      if (!ok) {
        const e = Object.assign(
          new Error(`the gateway's certificate (SHA-256 ${fp || 'none'}) does not match the pinned one`),
          { code: 'CLIENT_PIN_MISMATCH' },
        );
        sock.destroy(e);
        return;
      }
      sock.write = write;
      for (const args of held) (write as (...a: unknown[]) => boolean).apply(sock, args);
    });
    return sock;
  };
}

/**
 * For the CLI commands that talk to the running gateway like a receipt computer: the URL and token
 * from --ws/--token or ONSHI_WS/ONSHI_TOKEN (a usage error without them), one connection for `use`.
 */
export async function withCliClient<T>(
  values: { ws?: string | undefined; token?: string | undefined },
  command: string,
  usage: (message: string) => Error,
  use: (client: GatewayClient) => Promise<T>,
): Promise<T> {
  const url = values.ws ?? process.env.ONSHI_WS;
  const token = values.token ?? process.env.ONSHI_TOKEN;
  if (!url || !token) throw usage(`${command} needs --ws and --token (or ONSHI_WS and ONSHI_TOKEN)`);
  const client = await GatewayClient.connect(url, token);
  try {
    return await use(client);
  } finally {
    await client.close();
  }
}

/** Prints a list as JSON, one line per item, or `empty` when there is none. */
export function printList<T>(items: T[], json: boolean | undefined, empty: string, line: (item: T) => string): void {
  if (json) process.stdout.write(JSON.stringify(items, null, 2) + '\n');
  else if (items.length === 0) process.stdout.write(empty + '\n');
  else for (const i of items) process.stdout.write(line(i) + '\n');
}
