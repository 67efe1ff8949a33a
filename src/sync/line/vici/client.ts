/**
 * A VICI client over charon's Unix socket. The protocol has no sequence numbers, so one operation
 * (a command, or an event (un)registration) is outstanding at a time and the rest wait in a queue.
 * Streamed commands (`list-sas`, `list-conns`) register their event, collect what arrives before
 * the response, and unregister. Subscriptions survive charon restarts: the client reconnects with
 * backoff and registers them again, then emits 'connected' so the owner can reload its config.
 */
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { fullJitter, type BackoffOptions } from '../../../core/backoff.js';
import { OnshiError } from '../../../core/errors.js';
import {
  decodePacket,
  encodePacket,
  FrameReader,
  type ViciInput,
  type ViciMessage,
  type ViciOutPacket,
  type ViciPacket,
} from './codec.js';

export interface ViciClientOptions {
  /** the VICI socket, as a path or `unix://PATH` (charon's default is /var/run/charon.vici) */
  socket: string;
  /** per operation; a timed-out operation drops the connection (its late answer could not be told apart) */
  timeoutMs?: number;
  reconnect?: BackoffOptions;
}

export interface ViciClientEvents {
  connected: [];
  disconnected: [error: OnshiError];
  event: [name: string, message: ViciMessage];
}

interface Operation {
  packet: ViciOutPacket;
  /** the event a streamed command collects, registered before and unregistered after */
  collect?: { event: string; into: ViciMessage[] };
  resolve(p: ViciPacket): void;
  reject(e: OnshiError): void;
  timeoutMs: number;
}

export const socketPathOf = (uri: string): string => (uri.startsWith('unix://') ? uri.slice('unix://'.length) : uri);

/** `success = no` in a response, as an error carrying charon's errmsg. */
export function assertSuccess(command: string, response: ViciMessage): ViciMessage {
  if (response['success'] === 'no') {
    const errmsg = typeof response['errmsg'] === 'string' ? response['errmsg'] : 'no reason given';
    throw new OnshiError('VICI_COMMAND_FAILED', `charon refused ${command}: ${errmsg}`, {
      details: { command, errmsg },
    });
  }
  return response;
}

export class ViciClient extends EventEmitter<ViciClientEvents> {
  private readonly path: string;
  private readonly timeoutMs: number;
  private readonly backoff: BackoffOptions;
  private socket: Socket | undefined;
  private connected = false;
  private running = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly queue: Operation[] = [];
  private current: { op: Operation; timer: NodeJS.Timeout; stage: 'register' | 'command' | 'unregister' } | undefined;
  private readonly subscriptions = new Set<string>();

  constructor(opts: ViciClientOptions) {
    super();
    this.path = socketPathOf(opts.socket);
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.backoff = opts.reconnect ?? { baseMs: 250, capMs: 5_000 };
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Starts connecting (and reconnecting whenever charon goes away); resolves at once. */
  start(): Promise<void> {
    if (!this.running) {
      this.running = true;
      this.open();
    }
    return Promise.resolve();
  }

  /** Resolves when connected; VICI_UNAVAILABLE after `timeoutMs`. */
  whenConnected(timeoutMs = this.timeoutMs): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('connected', onConnected);
        reject(this.unavailable(`no VICI connection within ${timeoutMs} ms`));
      }, timeoutMs);
      const onConnected = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.once('connected', onConnected);
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.retryTimer);
    this.drop(new OnshiError('VICI_CLOSED', 'the VICI client was stopped'));
  }

  /** One command; its response message (a `success = no` answer is returned, see assertSuccess). */
  async request(command: string, message?: ViciInput, opts: { timeoutMs?: number } = {}): Promise<ViciMessage> {
    const p = await this.enqueue({ type: 'CMD_REQUEST', name: command, ...(message ? { message } : {}) }, opts);
    return this.responseOf(command, p);
  }

  /** A streamed command: the events named `event` that arrive before the response, and the response. */
  async stream(
    command: string,
    event: string,
    message?: ViciInput,
    opts: { timeoutMs?: number } = {},
  ): Promise<{ events: ViciMessage[]; response: ViciMessage }> {
    const events: ViciMessage[] = [];
    const p = await this.enqueue({ type: 'CMD_REQUEST', name: command, ...(message ? { message } : {}) }, opts, {
      event,
      into: events,
    });
    return { events, response: this.responseOf(command, p) };
  }

  /** Registers for events (now if connected, and after every reconnect); they arrive as 'event'. */
  async subscribe(events: readonly string[]): Promise<void> {
    for (const name of events) {
      if (this.subscriptions.has(name)) continue;
      this.subscriptions.add(name);
      if (this.connected) await this.registration('EVENT_REGISTER', name);
    }
  }

  async unsubscribe(events: readonly string[]): Promise<void> {
    for (const name of events) {
      if (!this.subscriptions.delete(name)) continue;
      if (this.connected) await this.registration('EVENT_UNREGISTER', name);
    }
  }

  // ---------------------------------------------------------------------------------------------

  private async registration(type: 'EVENT_REGISTER' | 'EVENT_UNREGISTER', name: string): Promise<void> {
    const p = await this.enqueue({ type, name }, {});
    if (p.type === 'EVENT_UNKNOWN')
      throw new OnshiError('VICI_UNKNOWN_EVENT', `charon has no event "${name}"`, { details: { event: name } });
  }

  private responseOf(command: string, p: ViciPacket): ViciMessage {
    if (p.type === 'CMD_UNKNOWN')
      throw new OnshiError('VICI_UNKNOWN_COMMAND', `charon has no command "${command}"`, { details: { command } });
    if (p.type !== 'CMD_RESPONSE')
      throw new OnshiError('VICI_MALFORMED', `a ${p.type} answered the command "${command}"`);
    return p.message;
  }

  private enqueue(packet: ViciOutPacket, opts: { timeoutMs?: number }, collect?: Operation['collect']) {
    return new Promise<ViciPacket>((resolve, reject) => {
      if (!this.connected) {
        reject(this.unavailable('not connected to charon'));
        return;
      }
      this.queue.push({
        packet,
        resolve,
        reject,
        timeoutMs: opts.timeoutMs ?? this.timeoutMs,
        ...(collect ? { collect } : {}),
      });
      this.next();
    });
  }

  private unavailable(message: string, cause?: unknown): OnshiError {
    return new OnshiError('VICI_UNAVAILABLE', message, {
      retryable: true,
      details: { socket: this.path },
      ...(cause ? { cause } : {}),
    });
  }

  private next(): void {
    if (this.current || !this.connected) return;
    const op = this.queue.shift();
    if (!op) return;
    this.send(op, op.collect ? 'register' : 'command');
  }

  private send(op: Operation, stage: 'register' | 'command' | 'unregister'): void {
    const timer = setTimeout(() => {
      // No sequence numbers: a late answer would be taken for the next operation's. Start over.
      this.drop(new OnshiError('VICI_TIMEOUT', `charon did not answer within ${op.timeoutMs} ms`, { retryable: true }));
    }, op.timeoutMs);
    this.current = { op, timer, stage };
    const packet: ViciOutPacket =
      stage === 'command'
        ? op.packet
        : { type: stage === 'register' ? 'EVENT_REGISTER' : 'EVENT_UNREGISTER', name: op.collect!.event };
    try {
      this.socket!.write(encodePacket(packet));
    } catch (e) {
      clearTimeout(timer);
      this.current = undefined;
      op.reject(e instanceof OnshiError ? e : new OnshiError('VICI_ENCODE', (e as Error).message));
      this.next();
    }
  }

  private onPacket(p: ViciPacket): void {
    if (p.type === 'EVENT') {
      const collecting = this.current?.op.collect;
      if (collecting && collecting.event === p.name && this.current?.stage === 'command')
        collecting.into.push(p.message);
      if (this.subscriptions.has(p.name)) this.emit('event', p.name, p.message);
      return;
    }
    const cur = this.current;
    if (!cur) {
      this.drop(new OnshiError('VICI_MALFORMED', `an unsolicited ${p.type} from charon`));
      return;
    }
    clearTimeout(cur.timer);
    this.current = undefined;
    const { op, stage } = cur;
    if (stage === 'register') {
      if (p.type !== 'EVENT_CONFIRM') {
        op.reject(new OnshiError('VICI_UNKNOWN_EVENT', `charon has no event "${op.collect!.event}"`));
        this.next();
        return;
      }
      this.send(op, 'command');
      return;
    }
    if (stage === 'command' && op.collect) {
      // Unregister the stream's event unless a subscription wants it; answer only after that.
      if (this.subscriptions.has(op.collect.event)) op.resolve(p);
      else {
        const answer = p;
        this.send({ ...op, resolve: () => op.resolve(answer) }, 'unregister');
        return;
      }
    } else op.resolve(p);
    this.next();
  }

  private open(): void {
    if (!this.running) return;
    const socket = connect(this.path);
    this.socket = socket;
    const frames = new FrameReader();
    socket.on('connect', () => {
      this.attempt = 0;
      this.connected = true;
      void this.afterConnect();
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.socket !== socket) return;
      try {
        for (const seg of frames.push(chunk)) this.onPacket(decodePacket(seg));
      } catch (e) {
        this.drop(e instanceof OnshiError ? e : new OnshiError('VICI_MALFORMED', (e as Error).message));
      }
    });
    socket.on('error', () => {
      /* 'close' follows and decides */
    });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.drop(this.unavailable('the VICI connection closed (charon stopped?)'));
    });
  }

  private async afterConnect(): Promise<void> {
    try {
      for (const name of this.subscriptions) await this.registration('EVENT_REGISTER', name);
    } catch (e) {
      // An unknown event name is the caller's mistake, not a reason to reconnect forever.
      this.emit('disconnected', e as OnshiError);
      return;
    }
    if (this.connected) this.emit('connected');
  }

  /** Fails what is in flight and queued, closes the socket, and schedules a reconnect if running. */
  private drop(error: OnshiError): void {
    const wasConnected = this.connected;
    const socket = this.socket;
    this.socket = undefined;
    this.connected = false;
    socket?.destroy();
    if (this.current) {
      clearTimeout(this.current.timer);
      this.current.op.reject(error);
      this.current = undefined;
    }
    for (const op of this.queue.splice(0)) op.reject(error);
    if (wasConnected) this.emit('disconnected', error);
    if (this.running) {
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.open(), Math.max(50, fullJitter(this.attempt++, this.backoff)));
    }
  }
}
