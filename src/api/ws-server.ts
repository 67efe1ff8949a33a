/**
 * The WebSocket API for receipt computers. Authentication happens at the upgrade (no token, no
 * socket); every frame is validated against the published schemas and the token's scopes; every
 * request gets exactly one answer with its id before its deadline; dead clients are dropped by
 * ping/pong; a client that does not read loses events first and its connection second.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { Server as TlsServer } from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { codeOf, OnshiError } from '../core/errors.js';
import {
  type ApiErrorBody,
  type ApiErrorCode,
  type ApiRequest,
  CLOSE_PROTOCOL_UNSUPPORTED,
  DEFAULT_DEADLINES,
  parseRequest,
  PROTOCOL_MAJOR,
  PROTOCOL_VERSION,
} from '../protocol/schema.js';
import type { ClientRecord, ClientStore } from './tokens.js';
import type { EventHub, EventTopic, GatewayEvent } from '../protocol/events.js';
import type { Logger } from '../core/logger.js';
import { allows, effectiveScopes, type Scope, scopesForRequest, scopesForTopic } from '../protocol/scopes.js';
import { FailureLimiter, type FailureRecord } from './rate-limit.js';
import type { ConsentFlags } from '../checks/counter-advice.js';

export interface RequestContext {
  client: ClientRecord;
  /** unique per WebSocket connection: a PIN is accepted only on the connection that asked for it */
  connectionId: string;
  /** TLS, or a loopback peer: the only connections a PIN may travel over */
  secure: boolean;
  /** the peer's address, for the audit trail */
  remote: string;
  /** absolute ms since epoch */
  deadline: number;
  signal: AbortSignal;
  /** progress events for this request's client (e.g. card inserted) */
  progress(event: Record<string, unknown>): void;
  /** a card check's consents chosen by the patient after the PIN (the kiosk; see checks/card.ts) */
  askConsents?(signal: AbortSignal): Promise<ConsentFlags>;
}

/** A handler answers with `{ type, ...fields }`; the server adds the id. Throwing answers `error`. */
export type RequestHandler = (
  req: ApiRequest,
  ctx: RequestContext,
) => Promise<Record<string, unknown> & { type: string }>;

export interface WsServerOptions {
  host: string;
  port: number;
  maxPayloadBytes: number;
  heartbeatMs: number;
  /** open connections at most (default 512); one more is refused with 503 after its token checked out */
  maxConnections?: number;
  defaultDeadlineMs: number;
  clients: ClientStore;
  logger: Logger;
  handle: RequestHandler;
  /** where subscribe/unsubscribe register this connection's event sink */
  events?: EventHub;
  /** serve wss:// with this identity (the gateway's own certificate); absent = plain ws (loopback only) */
  tls?: { keyPem: string; certPem: string };
  /** failed authentications per source address before it is refused for a while (default 10 a minute, 5 min) */
  authLimiter?: FailureLimiter;
  /** where the failure counts are kept across restarts (the store's authFailures); absent = memory only */
  authFailures?: {
    live(now?: number): FailureRecord[];
    put(r: FailureRecord): Promise<void>;
  };
  /** told of every refused authentication (the audit trail) */
  onAuthFailure?: (f: { remote: string; reason: 'bad_token' | 'rate_limited' }) => void;
}

const LOOPBACK_PEER = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;

/** A PIN may cross TLS or stay on this machine, nothing else. */
export const isLoopbackPeer = (address: string | undefined): boolean => LOOPBACK_PEER.test(address ?? '');

/**
 * Above this much unsent data on a connection, topic events are dropped (and counted). Answers,
 * a request's progress events and state events (line.state…, the retained ones) are never dropped:
 * they are small and a client needs them to stay right.
 */
export const EVENT_HIGH_WATER_BYTES = 1024 * 1024;
/** Above this much unsent data the client is not reading at all: close with 1013 (try again later). */
export const SEND_HARD_LIMIT_BYTES = 4 * 1024 * 1024;

export interface WsServerStats {
  /** topic events not sent because a client's send buffer was over the high-water mark, since start */
  droppedEvents: number;
  /** connections closed with 1013 at the hard limit, since start */
  overflowCloses: number;
}

/**
 * A request's AbortController, made only when something asks for its signal (a check by numbers
 * or an outage answer never does; a card check does): one fewer object and listener list per request.
 */
class LazyAbort {
  private ac: AbortController | undefined;
  private aborted = false;
  private reason: unknown;

  get signal(): AbortSignal {
    if (!this.ac) {
      this.ac = new AbortController();
      if (this.aborted) this.ac.abort(this.reason);
    }
    return this.ac.signal;
  }

  /** As AbortController.abort: the first reason stands. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.ac?.abort(reason);
  }
}

interface Inflight {
  ac: LazyAbort;
  answer(msg: Record<string, unknown>): void;
}

interface Conn {
  id: string;
  ws: WebSocket;
  client: ClientRecord;
  scopes: Scope[];
  alive: boolean;
  inflight: Map<string, Inflight>;
  droppedEvents: number;
  secure: boolean;
  remote: string;
}

let connSeq = 0;

/** How long before the deadline we stop waiting for the flow, so the answer still arrives in time. */
const DEADLINE_MARGIN_MS = 20;
/** api.maxConnections' default (config.ts) */
const DEFAULT_MAX_CONNECTIONS = 512;

export class WsApiServer {
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly conns = new Set<Conn>();
  private heartbeat: NodeJS.Timeout | undefined;
  private draining = false;
  private inflightCount = 0;
  private idleWaiters: (() => void)[] = [];
  private droppedEvents = 0;
  private overflowCloses = 0;
  private readonly limiter: FailureLimiter;
  /** per client id: when it last connected or sent a request (since start; the admin page shows it) */
  private readonly lastSeen = new Map<string, number>();

  private constructor(private readonly opts: WsServerOptions) {
    const plain = (_req: IncomingMessage, res: ServerResponse): void => {
      res.writeHead(426, { 'content-type': 'text/plain' });
      res.end('onshi-gateway: connect with a WebSocket client\n');
    };
    this.http = opts.tls
      ? createTlsServer({ key: opts.tls.keyPem, cert: opts.tls.certPem, minVersion: 'TLSv1.2' }, plain)
      : createServer(plain);
    this.limiter = opts.authLimiter ?? new FailureLimiter({ maxFailures: 10, windowMs: 60_000, lockoutMs: 300_000 });
    // Counts kept before a restart still count: restarting the gateway must not reset a guesser.
    if (opts.authFailures) this.limiter.restore(opts.authFailures.live());
    // ws enforces maxPayload itself: an oversized frame closes the socket with 1009.
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.maxPayloadBytes,
      clientTracking: false,
      perMessageDeflate: false,
    });
    this.http.on('upgrade', (req, socket: Socket, head) => this.upgrade(req, socket, head));
    this.http.on('clientError', (_e, socket) => socket.destroy());
  }

  static async start(opts: WsServerOptions): Promise<WsApiServer> {
    const s = new WsApiServer(opts);
    await new Promise<void>((resolve, reject) => {
      s.http.once('error', reject);
      s.http.listen(opts.port, opts.host, () => resolve());
    });
    s.heartbeat = setInterval(() => s.beat(), opts.heartbeatMs);
    return s;
  }

  /** Stores the address's count (the store writes it in the worker; a failure to keep it is logged, never fatal). */
  private keepFailures(remote: string): void {
    const keep = this.opts.authFailures;
    const r = keep && this.limiter.record(remote);
    if (!keep || !r) return;
    keep.put(r).catch((e: unknown) =>
      this.opts.logger.warn('could not keep the authentication failure count', {
        event: 'auth_failures_unsaved',
        error: codeOf(e),
      }),
    );
  }

  get port(): number {
    return (this.http.address() as AddressInfo).port;
  }

  get tls(): boolean {
    return this.opts.tls !== undefined;
  }

  /** After a certificate renewal: new connections get the new certificate, open ones keep theirs. */
  updateTls(tls: { keyPem: string; certPem: string }): void {
    if (this.opts.tls)
      (this.http as unknown as TlsServer).setSecureContext({
        key: tls.keyPem,
        cert: tls.certPem,
        minVersion: 'TLSv1.2',
      });
  }

  get clientCount(): number {
    return this.conns.size;
  }

  /** Each client seen since start: its open connections and when it last connected or sent a request. */
  clientActivity(): { id: string; connections: number; lastSeenAt: string }[] {
    const open = new Map<string, number>();
    for (const c of this.conns) open.set(c.client.id, (open.get(c.client.id) ?? 0) + 1);
    return [...this.lastSeen].map(([id, at]) => ({
      id,
      connections: open.get(id) ?? 0,
      lastSeenAt: new Date(at).toISOString(),
    }));
  }

  stats(): WsServerStats {
    return { droppedEvents: this.droppedEvents, overflowCloses: this.overflowCloses };
  }

  private upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const refuse = (status: number, text: string): void => {
      socket.end(
        `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\n\r\n${text}`,
      );
    };
    if (this.draining) return refuse(503, 'Service Unavailable');
    if (path !== '/' && path !== '/v1') return refuse(404, 'Not Found');
    const remote = req.socket.remoteAddress ?? 'unknown';
    // Checked before the token, so a locked-out address cannot keep guessing.
    const allowed = this.limiter.check(remote);
    if (!allowed.allowed) {
      this.opts.onAuthFailure?.({ remote, reason: 'rate_limited' });
      const retry = Math.ceil(allowed.retryAfterMs / 1000);
      return void socket.end(
        `HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nRetry-After: ${retry}\r\nContent-Length: 0\r\n\r\n`,
      );
    }
    const auth = req.headers.authorization ?? '';
    const client = this.opts.clients.authenticate(/^Bearer (.+)$/i.exec(auth)?.[1]);
    if (!client) {
      const r = this.limiter.fail(remote);
      this.keepFailures(remote);
      this.opts.logger.warn('websocket authentication failed', {
        event: 'auth_failed',
        remote,
        failures: r.failures,
        ...(r.justLocked ? { lockedForMs: this.limiter.lockoutMs } : {}),
      });
      this.opts.onAuthFailure?.({ remote, reason: 'bad_token' });
      return refuse(401, 'Unauthorized');
    }
    // Each connection holds memory and a heartbeat: a client reconnecting in a loop cannot exhaust the box.
    if (this.conns.size >= (this.opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS)) {
      this.opts.logger.warn('websocket connection refused: too many open', {
        event: 'connection_limit',
        client: client.id,
        open: this.conns.size,
      });
      return refuse(503, 'Service Unavailable');
    }
    const secure = this.opts.tls !== undefined || isLoopbackPeer(remote);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, client, secure, remote));
  }

  private accept(ws: WebSocket, client: ClientRecord, secure: boolean, remote: string): void {
    const conn: Conn = {
      id: `c${++connSeq}`,
      ws,
      client,
      scopes: effectiveScopes(client.scopes),
      alive: true,
      inflight: new Map(),
      droppedEvents: 0,
      secure,
      remote,
    };
    this.conns.add(conn);
    this.lastSeen.set(client.id, Date.now());
    this.opts.logger.info('client connected', { event: 'connect', client: client.id, clientName: client.name });
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.on('message', (data, isBinary) => {
      this.lastSeen.set(client.id, Date.now());
      this.onMessage(conn, data, isBinary);
    });
    ws.on('error', (e) =>
      this.opts.logger.warn('websocket error', { event: 'ws_error', client: client.id, error: e.message }),
    );
    ws.on('close', (code) => {
      this.conns.delete(conn);
      this.opts.events?.unsubscribe(conn.id);
      for (const f of conn.inflight.values())
        f.ac.abort(new OnshiError<ApiErrorCode>('CANCELLED', 'the client disconnected'));
      this.opts.logger.info('client disconnected', {
        event: 'disconnect',
        client: client.id,
        code,
        ...(conn.droppedEvents ? { droppedEvents: conn.droppedEvents } : {}),
      });
    });
    this.send(conn, {
      type: 'welcome',
      protocol: PROTOCOL_VERSION,
      client: { id: client.id, name: client.name, scopes: conn.scopes },
    });
  }

  /**
   * Every frame to a client goes through here. Over the hard limit the client is not reading:
   * close with 1013 rather than hold its data in memory. Over the high-water mark, droppable
   * (topic) events are counted and not sent.
   */
  private send(conn: Conn, msg: unknown, droppable = false): void {
    const ws = conn.ws;
    if (ws.readyState !== WebSocket.OPEN) return;
    const text = JSON.stringify(msg);
    const buffered = ws.bufferedAmount;
    if (buffered + Buffer.byteLength(text) > SEND_HARD_LIMIT_BYTES) {
      this.overflowCloses++;
      this.opts.logger.warn('client does not read: closing at the send-buffer hard limit', {
        event: 'send_buffer_overflow',
        client: conn.client.id,
        bufferedBytes: buffered,
        droppedEvents: conn.droppedEvents,
      });
      ws.close(1013, 'send buffer over 4 MiB: the client is not reading');
      return;
    }
    if (droppable && buffered > EVENT_HIGH_WATER_BYTES) {
      if (conn.droppedEvents++ === 0)
        this.opts.logger.warn('client reads too slowly: dropping events', {
          event: 'events_dropped',
          client: conn.client.id,
          bufferedBytes: buffered,
        });
      this.droppedEvents++;
      return;
    }
    ws.send(text);
  }

  private refuse(conn: Conn, id: string | null, error: ApiErrorBody): void {
    this.send(conn, { type: 'error', id, error });
  }

  private onMessage(conn: Conn, data: RawData, isBinary: boolean): void {
    conn.alive = true;
    if (conn.ws.readyState !== WebSocket.OPEN) return;
    if (isBinary) {
      return this.refuse(conn, null, {
        code: 'INVALID_MESSAGE',
        message: 'binary frames are not accepted; send JSON text',
        retryable: false,
      });
    }
    const text = rawToString(data);
    // The frame may hold a PIN: do not leave it in a buffer (the parsed string is beyond our reach).
    if (Buffer.isBuffer(data)) data.fill(0);
    const parsed = parseRequest(text);
    if (!parsed.ok) return this.refuse(conn, parsed.id, parsed.error);
    const req = parsed.request;
    if (conn.inflight.has(req.id)) {
      return this.refuse(conn, req.id, {
        code: 'DUPLICATE_ID',
        message: `request ${req.id} is still in progress`,
        retryable: false,
      });
    }
    const needed = scopesForRequest(req.type);
    if (!allows(conn.scopes, needed)) {
      this.opts.logger.warn("request outside the token's scopes", {
        event: 'scope_denied',
        client: conn.client.id,
        type: req.type,
        scopes: conn.scopes,
      });
      return this.refuse(conn, req.id, scopeDenied(`request "${req.type}"`, needed, conn.scopes));
    }
    if (this.draining) {
      return this.refuse(conn, req.id, {
        code: 'SHUTTING_DOWN',
        message: 'the gateway is restarting; try again shortly',
        retryable: true,
      });
    }
    if (req.type === 'hello') return this.hello(conn, req.id, req.protocol, req.client);
    // A PIN travels over TLS or stays on this machine; a plain LAN connection never carries one
    // (the daemon never listens so, but this holds whatever the listener).
    if (req.type === 'pin.submit' && !conn.secure) {
      return this.refuse(conn, req.id, {
        code: 'PIN_INSECURE_CONNECTION',
        message: 'a PIN is accepted only over TLS (wss://) or from this machine; reconnect with wss://',
        retryable: false,
      });
    }
    if (req.type === 'inquiry.cancel') return this.cancel(conn, req.id, req.inquiryId);
    if (req.type === 'subscribe' || req.type === 'unsubscribe')
      return this.subscription(conn, req.id, req.type, req.topics);
    void this.run(conn, req);
  }

  /** Same major: accepted (a minor only adds). Another major: refused, and the connection closed. */
  private hello(conn: Conn, id: string, protocol: string, software: string | undefined): void {
    const major = Number(protocol.split('.')[0]);
    this.opts.logger.info('client hello', {
      event: 'hello',
      client: conn.client.id,
      protocol,
      ...(software ? { software } : {}),
    });
    if (major !== PROTOCOL_MAJOR) {
      this.refuse(conn, id, {
        code: 'PROTOCOL_UNSUPPORTED',
        message: `protocol ${protocol} is not supported: this gateway speaks ${PROTOCOL_VERSION} (any ${PROTOCOL_MAJOR}.x client works); update the client or the gateway`,
        retryable: false,
        details: { requested: protocol, supported: [PROTOCOL_VERSION] },
      });
      conn.ws.close(CLOSE_PROTOCOL_UNSUPPORTED, 'protocol version not supported');
      return;
    }
    this.send(conn, {
      type: 'hello.accepted',
      id,
      protocol: PROTOCOL_VERSION,
      scopes: conn.scopes,
      limits: {
        maxPayloadBytes: this.opts.maxPayloadBytes,
        heartbeatMs: this.opts.heartbeatMs,
        eventHighWaterBytes: EVENT_HIGH_WATER_BYTES,
        sendHardLimitBytes: SEND_HARD_LIMIT_BYTES,
      },
    });
  }

  private subscription(conn: Conn, id: string, type: 'subscribe' | 'unsubscribe', topics: EventTopic[]): void {
    const hub = this.opts.events;
    if (!hub)
      return this.refuse(conn, id, {
        code: 'EVENTS_UNAVAILABLE',
        message: 'this gateway publishes no events',
        retryable: false,
      });
    if (type === 'unsubscribe') {
      hub.unsubscribe(conn.id, topics);
      return this.send(conn, { type: 'unsubscribed', id, topics: hub.topicsOf(conn.id) });
    }
    // All or nothing: a display asking for a topic it may not have learns it at once.
    for (const topic of topics) {
      const needed = scopesForTopic(topic);
      if (!allows(conn.scopes, needed))
        return this.refuse(conn, id, scopeDenied(`topic "${topic}"`, needed, conn.scopes));
    }
    hub.subscribe(conn.id, topics, (e) => this.send(conn, e, !isStateEvent(hub, e)), conn.client.id);
    this.send(conn, { type: 'subscribed', id, topics: hub.topicsOf(conn.id) });
    for (const e of hub.retained(topics)) this.send(conn, e);
  }

  private cancel(conn: Conn, id: string, target: string): void {
    const f = conn.inflight.get(target);
    if (!f) {
      return this.refuse(conn, id, {
        code: 'NOT_FOUND',
        message: `no request ${target} in progress`,
        retryable: false,
      });
    }
    const reason = new OnshiError<ApiErrorCode>('CANCELLED', 'cancelled by the client');
    f.answer({ type: 'error', error: reason.toJSON() });
    f.ac.abort(reason);
    this.send(conn, { type: 'cancelled', id, inquiryId: target });
  }

  private async run(conn: Conn, req: ApiRequest): Promise<void> {
    const started = Date.now();
    const requested = 'deadlineMs' in req ? req.deadlineMs : undefined;
    const deadline = started + (requested ?? DEFAULT_DEADLINES[req.type] ?? this.opts.defaultDeadlineMs);
    const ac = new LazyAbort();
    this.inflightCount++;
    let answered = false;
    const answer = (msg: Record<string, unknown>): void => {
      if (answered) return;
      answered = true;
      this.send(conn, { ...msg, id: req.id });
      const outcome = msg.type === 'error' ? (msg.error as ApiErrorBody).code : 'ok';
      // One line per request; a check says where its answer came from (central, cache during an outage, none).
      const source = (msg.result as { source?: unknown } | undefined)?.source;
      this.opts.logger.info('request', {
        event: 'request',
        client: conn.client.id,
        type: req.type,
        outcome,
        ...(typeof source === 'string' ? { source } : {}),
        ms: Date.now() - started,
      });
    };
    conn.inflight.set(req.id, { ac, answer });
    const timer = setTimeout(
      () => {
        const reason = new OnshiError<ApiErrorCode>('DEADLINE_EXCEEDED', 'no answer before the deadline', {
          retryable: true,
        });
        answer({ type: 'error', error: reason.toJSON() });
        ac.abort(reason);
      },
      Math.max(0, deadline - Date.now() - DEADLINE_MARGIN_MS),
    );
    try {
      const ctx: RequestContext = {
        client: conn.client,
        connectionId: conn.id,
        secure: conn.secure,
        remote: conn.remote,
        deadline: deadline - DEADLINE_MARGIN_MS,
        get signal() {
          return ac.signal;
        },
        progress: (event) => {
          if (!answered) this.send(conn, { ...event, id: req.id });
        },
      };
      answer(await this.opts.handle(req, ctx));
    } catch (e) {
      answer({ type: 'error', error: errorBody(e) });
      if (!(e instanceof OnshiError))
        this.opts.logger.error('request failed unexpectedly', {
          event: 'internal_error',
          type: req.type,
          error: (e as Error)?.message,
        });
    } finally {
      clearTimeout(timer);
      conn.inflight.delete(req.id);
      if (--this.inflightCount === 0) for (const f of this.idleWaiters.splice(0)) f();
    }
  }

  private beat(): void {
    for (const conn of this.conns) {
      if (!conn.alive) {
        this.opts.logger.info('dropping silent client', { event: 'heartbeat_timeout', client: conn.client.id });
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      conn.ws.ping();
    }
  }

  /** Graceful stop: refuse new work, let in-flight requests answer (up to graceMs), then close. */
  async close(graceMs: number): Promise<void> {
    this.draining = true;
    clearInterval(this.heartbeat);
    const httpClosed = new Promise((r) => this.http.close(r));
    if (this.inflightCount > 0) {
      await Promise.race([
        new Promise<void>((r) => this.idleWaiters.push(r)),
        new Promise<void>((r) => setTimeout(r, graceMs).unref()),
      ]);
    }
    for (const conn of this.conns) conn.ws.close(1001, 'gateway shutting down');
    const deadline = Date.now() + 1000;
    while (this.conns.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const conn of this.conns) conn.ws.terminate();
    this.http.closeAllConnections();
    await httpClosed;
  }
}

/** A retained event is the current state of something (line.state…): never dropped. */
function isStateEvent(hub: EventHub, e: GatewayEvent): boolean {
  return hub.isRetained(e);
}

function scopeDenied(what: string, needed: readonly Scope[], have: readonly Scope[]): ApiErrorBody {
  const named = needed.filter((s) => s !== 'full');
  return {
    code: 'SCOPE_DENIED',
    message: `${what} needs the scope ${[...named, 'full'].join(' or ')}; this token has ${have.join(', ') || 'no valid scope'}`,
    retryable: false,
    details: { needed: [...named, 'full'], have: [...have] },
  };
}

function rawToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data as ArrayBuffer).toString('utf8');
}

export function errorBody(e: unknown): ApiErrorBody {
  if (e instanceof OnshiError) return e.toJSON();
  return { code: 'INTERNAL', message: 'internal error', retryable: true };
}
