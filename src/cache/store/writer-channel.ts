/**
 * The main thread's end of the one writer thread: requests go out (those made in one turn of the
 * event loop cross in one message; FLUSH_MAX waiting leave at once), answers come back by id, a
 * request's promise resolves only after its commit. The worker is referenced only while requests
 * are in flight, so an idle store never keeps the process alive. A worker that dies fails every pending and later request with STORE_WORKER_FAILED.
 */
import type { Worker } from 'node:worker_threads';
import { OnshiError } from '../../core/errors.js';
import type {
  OpArgs,
  OpName,
  OpResult,
  Request,
  Requests,
  Response,
  Startup,
  WireError,
  WorkerInit,
  WorkerMessage,
} from '../protocol.js';
import { spawnWriter } from '../spawn-writer.js';
import type { CallOptions, StoreAlert, StoreErrorCode } from '../types.js';
import { err } from './inputs.js';

export const fromWire = (w: WireError): OnshiError =>
  new OnshiError(w.code, w.message, { retryable: w.retryable, ...(w.details ? { details: w.details } : {}) });

/**
 * How long a write nobody waits for (a live answer's cache write, a check's audit entry) may wait
 * to share a commit with others: one check at a time cost the writer a commit (and its fsync) and
 * two thread wake-ups each. A foreground request takes the waiting ones along at once.
 */
export const DEFER_MS = 25;
/** at most this many wait: more go at once */
const DEFER_MAX = 64;
/**
 * Foreground requests leave once per turn of the event loop (setImmediate), so that those made by
 * the I/O callbacks of one turn (50 clients' outage answers, each committing an outbox entry) share
 * one message and one wake-up of the writer; once this many wait (checked after each callback, with
 * its microtasks), they leave at once, so that a burst does not wait for the end of the turn.
 */
export const FLUSH_MAX = 16;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export class WriterChannel {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closing: Promise<void> | undefined;
  private failure: OnshiError | undefined;
  /** Requests made in one turn of the loop (the clients' requests of one poll, a replay's settle and its events) cross in one message. */
  private outgoing: Request[] = [];
  /** the flush queued for the end of this turn */
  private flushing: NodeJS.Immediate | undefined;
  /** the check queued for the end of this callback (its microtasks) */
  private checking = false;
  /** Deferred requests (CallOptions.defer): they leave with the next message, or after DEFER_MS. */
  private deferred: Request[] = [];
  private deferTimer: NodeJS.Timeout | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (m: WorkerMessage) => this.onMessage(m));
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', (code) => this.fail(new Error(`writer worker exited (${code})`)));
    worker.unref(); // referenced only while requests are in flight (see send)
  }

  /** Starts the writer (which checks, repairs and migrates the file) and waits until it is ready. */
  static async start(init: WorkerInit): Promise<{ channel: WriterChannel; alerts: StoreAlert[] }> {
    const worker = spawnWriter(init);
    const startup = await new Promise<Startup>((resolve, reject) => {
      const onExit = (code: number) =>
        reject(err('STORE_WORKER_FAILED', `the writer worker exited (${code}) before it was ready`));
      worker.once('error', (e) =>
        reject(
          new OnshiError<StoreErrorCode>('STORE_WORKER_FAILED', `the writer worker failed to start: ${e.message}`, {
            cause: e,
          }),
        ),
      );
      worker.once('exit', onExit);
      worker.once('message', (m: WorkerMessage) => {
        worker.off('exit', onExit);
        resolve(m as Startup);
      });
    });
    if (startup.type === 'fatal') {
      await worker.terminate();
      throw fromWire(startup.error);
    }
    return { channel: new WriterChannel(worker), alerts: startup.alerts };
  }

  /** Stops a writer that was started but will not be used (the read connection failed to open). */
  terminate(): Promise<number> {
    return this.worker.terminate();
  }

  /** Throws STORE_CLOSED after close, or the worker's failure. */
  assertOpen(): void {
    if (this.closing) throw err('STORE_CLOSED', 'the store is closed');
    if (this.failure) throw this.failure;
  }

  call<K extends OpName>(op: K, args: OpArgs<K>, opts?: CallOptions): Promise<OpResult<K>> {
    if (this.closing) return Promise.reject(err('STORE_CLOSED', 'the store is closed'));
    return this.send(op, args, opts?.defer === true);
  }

  /**
   * Lets queued writes finish, has the worker checkpoint the WAL and exit. `first` runs before
   * anything else (the store closes its read connection there). Idempotent.
   */
  close(first: () => void): Promise<void> {
    this.closing ??= (async () => {
      first();
      if (!this.failure) {
        this.worker.ref(); // keep the process alive until the worker has checkpointed and exited
        const exited = new Promise<void>((r) => this.worker.once('exit', () => r()));
        try {
          await this.send('close', {});
        } finally {
          await exited;
        }
      }
    })();
    return this.closing;
  }

  private send<K extends OpName>(op: K, args: OpArgs<K>, defer = false): Promise<OpResult<K>> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<OpResult<K>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      if (this.pending.size === 1) this.worker.ref();
      const req = { type: 'req', id, op, args } as Request;
      if (defer) {
        this.deferred.push(req);
        if (this.deferred.length >= DEFER_MAX) this.releaseDeferred();
        else if (this.deferred.length === 1) {
          this.deferTimer = setTimeout(this.releaseDeferred, DEFER_MS);
          this.deferTimer.unref(); // the worker is referenced while anything is pending
        }
        return;
      }
      this.outgoing.push(req);
      if (!this.checking) {
        this.checking = true;
        queueMicrotask(this.flushIfMany);
      }
    });
  }

  /** After a callback's requests: FLUSH_MAX or more go now (in one message), fewer at the end of the turn. */
  private readonly flushIfMany = (): void => {
    this.checking = false;
    if (this.outgoing.length >= FLUSH_MAX) this.flushOutgoing();
    else if (this.outgoing.length > 0) this.flushSoon();
  };

  /** A flush at the end of this turn of the loop (once). */
  private flushSoon(): void {
    this.flushing ??= setImmediate(this.flushOutgoing);
  }

  /** The deferred requests leave now (in this turn's message). */
  private readonly releaseDeferred = (): void => {
    // a flush already queued takes the deferred ones along
    if (this.deferred.length > 0) this.flushSoon();
  };

  private readonly flushOutgoing = (): void => {
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = undefined;
    clearTimeout(this.deferTimer);
    // whatever waits for company goes with this message (in call order: deferred ones came first)
    const requests = this.deferred.length > 0 ? [...this.deferred.splice(0), ...this.outgoing] : this.outgoing;
    this.outgoing = [];
    if (requests.length === 0 || this.failure) return;
    this.worker.postMessage(requests.length === 1 ? requests[0] : ({ type: 'req-batch', requests } satisfies Requests));
  };

  private onMessage(m: WorkerMessage): void {
    if (m.type === 'res-batch') {
      for (const r of m.responses) this.onResponse(r);
      return;
    }
    if (m.type === 'res') this.onResponse(m);
  }

  private onResponse(m: Response): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (this.pending.size === 0 && !this.closing) this.worker.unref();
    if (m.ok) p.resolve(m.result);
    else p.reject(fromWire(m.error));
  }

  private fail(e: unknown): void {
    if (this.closing && this.pending.size === 0) return; // normal exit after close
    this.failure ??= new OnshiError<StoreErrorCode>(
      'STORE_WORKER_FAILED',
      `the writer worker stopped: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
    clearTimeout(this.deferTimer);
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = undefined;
    this.deferred = [];
    this.outgoing = [];
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
  }
}
