/**
 * Follows readers and cards, and recovers by itself when pcscd goes away or a reader vanishes:
 * the monitor loop re-establishes its PC/SC context with exponential backoff (never a busy loop),
 * and sessions use their own context so that a pending status wait never blocks a transmit.
 * Sessions on one slot run one after the other, never overlapping (see withSession).
 */
import { EventEmitter } from 'node:events';
import { ReaderError, isReaderError } from './errors.js';
import { CardSession, type CardSessionOptions } from './session.js';
import {
  allowlistedCard,
  smartcardBackend,
  type PcscBackend,
  type PcscCard,
  type PcscContext,
  type ReaderSnapshot,
  type ShareMode,
} from './pcsc.js';

export interface ReaderManagerOptions {
  backend?: PcscBackend;
  /** Longest single status wait; also how often the reader list is re-read (default 1000 ms). */
  pollMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  apduTimeoutMs?: number;
  /** Longest wait for pcscd to take a connection to the card (default 10 s; a session's deadline, if sooner). */
  connectTimeoutMs?: number;
  /** Only readers whose name passes are followed (e.g. one slot of the virtual reader). */
  readerFilter?: (name: string) => boolean;
}

export interface ReaderInfo {
  name: string;
  cardPresent: boolean;
  atr?: string;
}
export interface ReaderManagerStatus {
  pcsc: 'up' | 'down';
  readers: ReaderInfo[];
  lastError?: string;
}

export interface SessionStats {
  reader: string;
  apdus: number;
  verifies: number;
  reads: number;
  ms: number;
  error?: string;
}

export interface WaitForCardOptions {
  readerName?: string;
  deadline?: number;
  signal?: AbortSignal;
}
export interface WithSessionOptions extends WaitForCardOptions, Pick<CardSessionOptions, 'apduTimeoutMs' | 'onApdu'> {
  mode?: ShareMode;
  /** Reset the card on disconnect (drops any verified PIN). Default true. */
  resetOnClose?: boolean;
}

export interface ReaderManagerEvents {
  reader: [{ name: string; attached: boolean }];
  card: [{ reader: string; present: boolean; atr?: string }];
  state: [ReaderManagerStatus];
  session: [SessionStats];
}

export class ReaderManager extends EventEmitter<ReaderManagerEvents> {
  private readonly backend: PcscBackend;
  private readonly pollMs: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private monitorCtx: PcscContext | undefined;
  private sessionCtx: PcscContext | undefined;
  private readers = new Map<string, ReaderSnapshot>();
  private pcscUp = false;
  private lastError: string | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  private sleepTimer: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  private firstPass: Promise<void>;
  private firstPassDone!: () => void;
  /** APDU count of the last session, for the benchmark. */
  lastSession: SessionStats | undefined;

  constructor(private readonly opts: ReaderManagerOptions = {}) {
    super();
    this.backend = opts.backend ?? smartcardBackend();
    this.pollMs = opts.pollMs ?? 1000;
    this.backoffInitialMs = opts.backoffInitialMs ?? 250;
    this.backoffMaxMs = opts.backoffMaxMs ?? 5000;
    this.firstPass = new Promise((r) => {
      this.firstPassDone = r;
    });
  }

  /** Starts following readers; resolves after the first attempt to reach pcscd (up or not). */
  async start(): Promise<void> {
    if (!this.running) {
      this.running = true;
      this.loop = this.monitor();
    }
    await this.firstPass;
  }

  async stop(): Promise<void> {
    this.running = false;
    this.monitorCtx?.cancel();
    this.wake();
    await this.loop;
    this.loop = undefined;
    this.monitorCtx?.close();
    this.monitorCtx = undefined;
    this.sessionCtx?.close();
    this.sessionCtx = undefined;
  }

  status(): ReaderManagerStatus {
    const readers = [...this.readers.values()].map((r) =>
      r.atr
        ? { name: r.name, cardPresent: r.present, atr: r.atr.toString('hex').toUpperCase() }
        : { name: r.name, cardPresent: r.present },
    );
    return this.lastError && !this.pcscUp
      ? { pcsc: 'down', readers, lastError: this.lastError }
      : { pcsc: this.pcscUp ? 'up' : 'down', readers };
  }

  /** Resolves with the name of a reader holding a card. */
  waitForCard(o: WaitForCardOptions = {}): Promise<string> {
    const pick = (): string | undefined =>
      [...this.readers.values()].find((r) => r.present && (o.readerName === undefined || r.name === o.readerName))
        ?.name;
    const now = pick();
    if (now) return Promise.resolve(now);
    return new Promise<string>((resolve, reject) => {
      const cleanup = () => {
        this.off('card', onCard);
        this.off('state', onCard);
        if (timer) clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
      };
      const onCard = () => {
        const n = pick();
        if (n) {
          cleanup();
          resolve(n);
        }
      };
      const onAbort = () => {
        cleanup();
        reject(new ReaderError('READER_ABORTED', 'Cancelled while waiting for a card'));
      };
      const timer =
        o.deadline !== undefined
          ? setTimeout(
              () => {
                cleanup();
                const st = this.status();
                const code = !this.pcscUp
                  ? 'READER_PCSC_UNAVAILABLE'
                  : st.readers.length === 0
                    ? 'READER_NO_READER'
                    : 'READER_NO_CARD';
                reject(
                  new ReaderError(code, 'No card was presented before the deadline', { details: { waited: true } }),
                );
              },
              Math.max(0, o.deadline - Date.now()),
            )
          : undefined;
      if (o.signal?.aborted) {
        onAbort();
        return;
      }
      o.signal?.addEventListener('abort', onAbort, { once: true });
      this.on('card', onCard);
      this.on('state', onCard);
    });
  }

  /**
   * Connects to the card (waiting for one until `deadline` if given), runs fn with a CardSession on
   * that one connection, then disconnects. The APDU count is reported in the `session` event.
   */
  async withSession<T>(fn: (s: CardSession) => Promise<T>, o: WithSessionOptions = {}): Promise<T> {
    const reader = o.deadline !== undefined ? await this.waitForCard(o) : this.pickNow(o.readerName);
    // One session per slot at a time: a session's end resets the card (SCARD_RESET_CARD), which
    // another session on the same card would meet as "Card was reset" in the middle of its check.
    const freeSlot = await this.takeSlot(reader, o);
    const started = Date.now();
    let conn: { card: PcscCard; ctx: PcscContext };
    try {
      conn = await this.connect(reader, o.mode ?? 'shared', o.deadline);
    } catch (e) {
      freeSlot();
      throw e;
    }
    const { card, ctx } = conn;
    const session = new CardSession(card, {
      apduTimeoutMs: o.apduTimeoutMs ?? this.opts.apduTimeoutMs,
      deadline: o.deadline,
      signal: o.signal,
      onApdu: o.onApdu,
    });
    let error: unknown;
    try {
      return await fn(session);
    } catch (e) {
      error = e;
      throw e;
    } finally {
      const stats: SessionStats = { reader, ...session.counters, ms: Date.now() - started };
      if (error !== undefined) stats.error = isReaderError(error) ? error.code : String(error);
      this.lastSession = stats;
      const reset = o.resetOnClose !== false;
      if (
        isReaderError(error, 'READER_TIMEOUT') ||
        isReaderError(error, 'READER_ABORTED') ||
        isReaderError(error, 'READER_BUSY')
      ) {
        // A timed-out transmit may still sit in the driver: disconnecting now would block on its
        // lock, and the context is held by it too (pcsc-lite serializes the calls of one context).
        // The next session gets a fresh context and the slot at once (it must not queue behind a
        // transmit that may never come back). The release comes when the transmit does, and
        // resets the card only if no session has taken the slot since: a reset then would land
        // in the middle of that session ("Card was reset").
        this.retire(ctx);
        freeSlot();
        void session
          .idle()
          .then(async () => {
            const mine = this.tryTakeSlot(reader);
            try {
              await card.disconnect(reset && mine ? 'reset' : 'leave');
            } finally {
              mine?.();
            }
          })
          .catch(() => undefined)
          .finally(() => this.letGo(ctx));
      } else {
        try {
          await card.disconnect(reset ? 'reset' : 'leave');
        } finally {
          this.letGo(ctx);
          freeSlot();
        }
      }
      this.emit('session', stats);
      if (isReaderError(error, 'READER_PCSC_UNAVAILABLE')) this.dropSessionCtx();
    }
  }

  /** The tail of each slot's queue of sessions. */
  private readonly slots = new Map<string, Promise<void>>();

  /** The slot, if no session holds or waits for it; else undefined. */
  private tryTakeSlot(reader: string): (() => void) | undefined {
    if (this.slots.has(reader)) return undefined;
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    this.slots.set(reader, mine);
    void mine.then(() => {
      if (this.slots.get(reader) === mine) this.slots.delete(reader);
    });
    return release;
  }

  /**
   * Waits for the slot's earlier sessions to end (until the deadline, or connectTimeoutMs without
   * one: READER_BUSY) and returns the function that hands the slot on. Idempotent.
   */
  private async takeSlot(reader: string, o: WaitForCardOptions): Promise<() => void> {
    const before = this.slots.get(reader) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const tail = before.then(() => mine);
    this.slots.set(reader, tail);
    void tail.then(() => {
      if (this.slots.get(reader) === tail) this.slots.delete(reader);
    });
    const limit =
      o.deadline !== undefined ? Math.max(0, o.deadline - Date.now()) : (this.opts.connectTimeoutMs ?? 10_000);
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      await Promise.race([
        before,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new ReaderError('READER_BUSY', 'Another check is using the card in this reader; try again', {
                  details: { reader },
                }),
              ),
            limit,
          );
          onAbort = () => reject(new ReaderError('READER_ABORTED', 'Cancelled while waiting for the reader'));
          if (o.signal?.aborted) onAbort();
          else o.signal?.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
    } catch (e) {
      release(); // give up our turn: the queue goes on without us
      throw e;
    } finally {
      clearTimeout(timer);
      if (onAbort) o.signal?.removeEventListener('abort', onAbort);
    }
    return release;
  }

  private pickNow(readerName?: string): string {
    if (!this.pcscUp)
      throw new ReaderError('READER_PCSC_UNAVAILABLE', 'The PC/SC service is not available', {
        details: { lastError: this.lastError },
      });
    const candidates = [...this.readers.values()].filter((r) => readerName === undefined || r.name === readerName);
    if (candidates.length === 0)
      throw new ReaderError(
        'READER_NO_READER',
        readerName ? `Reader not found: ${readerName}` : 'No card reader is connected',
      );
    const withCard = candidates.find((r) => r.present);
    if (!withCard) throw new ReaderError('READER_NO_CARD', 'No card in the reader');
    return withCard.name;
  }

  /** The card, and the context it is connected on (held for the session: let go when it ends). */
  private async connect(
    reader: string,
    mode: ShareMode,
    deadline?: number,
  ): Promise<{ card: PcscCard; ctx: PcscContext }> {
    for (let attempt = 0; ; attempt++) {
      try {
        this.sessionCtx ??= await this.backend.establish();
        const ctx = this.sessionCtx;
        // Whatever the backend, nothing outside the JPKI allowlist reaches it.
        return { card: allowlistedCard(await this.connectWithin(ctx, reader, mode, deadline)), ctx };
      } catch (e) {
        const err = isReaderError(e) ? e : new ReaderError('READER_IO', String(e), { cause: e });
        // A stale session context after a pcscd restart: re-establish once, then give up.
        if ((err.code === 'READER_PCSC_UNAVAILABLE' || err.code === 'READER_NO_READER') && attempt === 0) {
          this.dropSessionCtx();
          continue;
        }
        if (err.code === 'READER_PCSC_UNAVAILABLE') this.dropSessionCtx();
        throw err;
      }
    }
  }

  /**
   * SCardConnect has no timeout of its own: a reader wedged by a card that stopped answering would
   * hold the counter's request forever. Past the limit the request gets READER_BUSY, the context is
   * given up (the next session opens a fresh one) and a connection that comes late is let go.
   */
  private connectWithin(ctx: PcscContext, reader: string, mode: ShareMode, deadline?: number): Promise<PcscCard> {
    // A connection normally takes milliseconds; a deadline already near gets a second (its APDUs then time out as such).
    const limit = Math.min(
      this.opts.connectTimeoutMs ?? 10_000,
      deadline !== undefined ? Math.max(1000, deadline - Date.now()) : Infinity,
    );
    this.hold(ctx);
    const pending = ctx.connect(reader, mode);
    return new Promise<PcscCard>((resolve, reject) => {
      let late = false;
      const timer = setTimeout(() => {
        late = true;
        this.retire(ctx);
        reject(
          new ReaderError('READER_BUSY', `The reader did not take a connection within ${limit} ms`, {
            details: { ms: limit },
          }),
        );
        void pending
          .then(
            (c) => c.disconnect('leave'),
            () => undefined,
          )
          .finally(() => this.letGo(ctx));
      }, limit);
      pending.then(
        (c) => {
          if (!late) {
            clearTimeout(timer);
            resolve(c);
          }
        },
        (e: unknown) => {
          if (!late) {
            clearTimeout(timer);
            this.letGo(ctx);
            reject(e);
          }
        },
      );
    });
  }

  // Sessions on both slots may share a context: one given up is closed only when the last of them ends.
  private readonly ctxUses = new Map<PcscContext, number>();
  private readonly retired = new Set<PcscContext>();

  private hold(ctx: PcscContext): void {
    this.ctxUses.set(ctx, (this.ctxUses.get(ctx) ?? 0) + 1);
  }

  private letGo(ctx: PcscContext): void {
    const left = (this.ctxUses.get(ctx) ?? 1) - 1;
    if (left > 0) {
      this.ctxUses.set(ctx, left);
      return;
    }
    this.ctxUses.delete(ctx);
    if (this.retired.delete(ctx)) ctx.close();
  }

  /** New sessions open a fresh context; this one is closed once no session or connect uses it. */
  private retire(ctx: PcscContext): void {
    if (this.sessionCtx === ctx) this.sessionCtx = undefined;
    if (this.ctxUses.has(ctx)) this.retired.add(ctx);
    else ctx.close();
  }

  private dropSessionCtx(): void {
    this.sessionCtx?.close();
    this.sessionCtx = undefined;
  }

  private setUp(up: boolean, err?: string): void {
    const changed = up !== this.pcscUp;
    this.pcscUp = up;
    if (err !== undefined) this.lastError = err;
    if (up) this.lastError = undefined;
    if (!up && this.readers.size > 0) this.applySnapshot([]);
    if (changed) this.emit('state', this.status());
  }

  private applySnapshot(list: ReaderSnapshot[]): void {
    const filter = this.opts.readerFilter;
    const next = new Map(list.filter((r) => !filter || filter(r.name)).map((r) => [r.name, r]));
    let changed = false;
    for (const [name, old] of this.readers) {
      if (!next.has(name)) {
        changed = true;
        if (old.present) this.emit('card', { reader: name, present: false });
        this.emit('reader', { name, attached: false });
      }
    }
    for (const [name, r] of next) {
      const old = this.readers.get(name);
      if (!old) {
        changed = true;
        this.emit('reader', { name, attached: true });
      }
      if ((old?.present ?? false) !== r.present || (r.present && old?.atr && r.atr && !old.atr.equals(r.atr))) {
        changed = true;
        this.emit(
          'card',
          r.atr
            ? { reader: name, present: r.present, atr: r.atr.toString('hex').toUpperCase() }
            : { reader: name, present: r.present },
        );
      }
    }
    this.readers = next;
    if (changed) this.emit('state', this.status());
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sleepTimer = undefined;
        resolve();
      }, ms);
      this.sleepTimer = { timer, resolve };
    });
  }

  private wake(): void {
    if (this.sleepTimer) {
      clearTimeout(this.sleepTimer.timer);
      this.sleepTimer.resolve();
      this.sleepTimer = undefined;
    }
  }

  private async monitor(): Promise<void> {
    let backoff = this.backoffInitialMs;
    let quick = 0;
    while (this.running) {
      try {
        if (!this.monitorCtx) {
          this.monitorCtx = await this.backend.establish();
          backoff = this.backoffInitialMs;
        }
        const list = this.monitorCtx.listReaders();
        this.setUp(true);
        this.applySnapshot(list);
        this.firstPassDone();
        const t0 = Date.now();
        const watched = list.filter((r) => !this.opts.readerFilter || this.opts.readerFilter(r.name));
        const res = await this.monitorCtx.waitForChange(watched, this.pollMs);
        if (!this.running) break;
        if (Array.isArray(res)) this.applySnapshot(res.length === list.length ? res : this.monitorCtx.listReaders());
        // Guard against a driver that keeps answering "changed" at once: never spin.
        if (Date.now() - t0 < 20) {
          if (++quick > 3) await this.sleep(100);
        } else quick = 0;
      } catch (e) {
        const err = isReaderError(e) ? e : new ReaderError('READER_IO', String(e), { cause: e });
        this.monitorCtx?.close();
        this.monitorCtx = undefined;
        this.dropSessionCtx();
        this.setUp(false, `${err.code}: ${err.message}`);
        this.firstPassDone();
        if (!this.running) break;
        await this.sleep(backoff);
        backoff = Math.min(this.backoffMaxMs, backoff * 2);
      }
    }
  }
}
