/**
 * The `req` folder watcher: fs.watch events plus a scan every `pollMs` (events are unreliable on
 * network and some other file systems). A file is handed on only when its size and time have
 * stayed the same for `settleMs`; names that do not match `OQS…req_*.xml` (temp names) are never
 * touched (logged once, hidden names not at all). Symbolic links are handed on unfollowed (lstat):
 * the processor answers them with an error. At most `concurrency` requests run at once; one that fails is tried again with a backoff.
 */
import { type FSWatcher, watch } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { OnshiError } from '../core/errors.js';
import { type ExchangeName, parseRequestName } from '../oqs/index.js';
import { type FileExchangeDeps, ShuttingDown, type WarnOnce } from './types.js';

/** Ignored names remembered at most (each is logged once). */
const MAX_NAMED = 1000;

interface Seen {
  size: number;
  mtimeMs: number;
  since: number;
}

/** Handles one settled request file; 'changed' when it changed meanwhile (it then has to settle again). */
export type RequestHandler = (name: ExchangeName, size: number, mtimeMs: number) => Promise<'changed' | undefined>;

export class RequestFolderWatcher {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private rescan = false;
  private readonly seen = new Map<string, Seen>();
  /** names being processed or waiting for a slot */
  private readonly active = new Set<string>();
  private readonly queue: Array<{ name: ExchangeName; size: number; mtimeMs: number }> = [];
  private running = 0;
  private readonly tasks = new Set<Promise<void>>();
  /** requests whose processing failed (e.g. res not writable): not tried again before `until` */
  private readonly failures = new Map<string, { count: number; until: number }>();
  /** names that are not requests, logged once while they stay */
  private readonly named = new Set<string>();

  constructor(
    private readonly d: Pick<FileExchangeDeps, 'options' | 'logger'>,
    private readonly handle: RequestHandler,
    private readonly o: { signal: AbortSignal; warn: WarnOnce },
  ) {}

  /** Watches the folder and starts the poll timer (the first scan is the caller's). */
  start(): void {
    this.watchFolder();
    this.timer = setInterval(() => this.kick(), this.d.options.pollMs);
  }

  /** Stops watching and polling, drops what waits for a slot, waits for the requests in flight. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    this.watcher?.close();
    this.queue.length = 0;
    await this.scanning;
    await Promise.allSettled([...this.tasks]);
  }

  /** Whether a request is being processed or waits for a slot. */
  isActive(name: string): boolean {
    return this.active.has(name);
  }

  /** Until no scan runs and every request found is answered. */
  async drain(): Promise<void> {
    while (this.tasks.size > 0 || this.scanning) await Promise.allSettled([...this.tasks, this.scanning]);
  }

  scan(): Promise<void> {
    if (this.scanning) {
      this.rescan = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      try {
        do {
          this.rescan = false;
          await this.scanOnce();
        } while (this.rescan && !this.o.signal.aborted);
      } finally {
        this.scanning = undefined;
      }
    })();
    return this.scanning;
  }

  private watchFolder(): void {
    try {
      this.watcher = watch(this.d.options.reqDir, { persistent: false }, () => this.kick(20));
      this.watcher.on('error', (e) => {
        this.d.logger.warn('file-system events for the req folder stopped; scanning only', {
          event: 'fx_watch_failed',
          error: e.message,
        });
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch (e) {
      this.d.logger.warn('no file-system events for the req folder; scanning only', {
        event: 'fx_watch_failed',
        error: (e as Error).message,
      });
    }
  }

  private kick(delayMs = 0): void {
    if (this.o.signal.aborted) return;
    if (delayMs === 0) {
      void this.scan();
      return;
    }
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.scan(), delayMs);
  }

  private async scanOnce(): Promise<void> {
    const { reqDir, settleMs } = this.d.options;
    let names: string[];
    try {
      names = await readdir(reqDir);
      this.o.warn.clear('readdir');
    } catch (e) {
      this.o.warn('readdir', 'cannot read the req folder', {
        event: 'fx_scan_failed',
        code: (e as NodeJS.ErrnoException).code,
      });
      return;
    }
    const present = new Set<string>();
    const now = Date.now();
    for (const file of names) {
      present.add(file);
      const parsed = parseRequestName(file);
      if (parsed === undefined) {
        this.ignored(file);
        continue;
      }
      if (this.active.has(file)) continue;
      const failed = this.failures.get(file);
      if (failed !== undefined && now < failed.until) continue;
      // lstat: a symbolic link is handed on as itself (the processor refuses it), never followed here.
      let st: Awaited<ReturnType<typeof lstat>>;
      try {
        st = await lstat(join(reqDir, file));
      } catch {
        continue; // taken away meanwhile
      }
      if (!st.isFile() && !st.isSymbolicLink()) continue;
      const prev = this.seen.get(file);
      if (prev === undefined || prev.size !== st.size || prev.mtimeMs !== st.mtimeMs) {
        this.seen.set(file, { size: st.size, mtimeMs: st.mtimeMs, since: now });
        if (settleMs > 0) continue;
      } else if (now - prev.since < settleMs) continue;
      this.active.add(file);
      this.queue.push({ name: parsed, size: st.size, mtimeMs: st.mtimeMs });
    }
    for (const k of this.seen.keys()) if (!present.has(k)) this.seen.delete(k);
    for (const k of this.named) if (!present.has(k)) this.named.delete(k);
    for (const k of this.failures.keys()) if (!present.has(k)) this.failures.delete(k);
    this.pump();
  }

  /** A name that is not a request is left alone, and said once (hidden names: a writer's temp files, silently). */
  private ignored(file: string): void {
    if (file.startsWith('.') || this.named.has(file)) return;
    if (this.named.size >= MAX_NAMED) return; // a folder full of junk is not logged without end
    this.named.add(file);
    this.d.logger.info('a file in the req folder is not a request (its name does not match); left alone', {
      event: 'fx_name_ignored',
      file: file.slice(0, 120),
    });
  }

  private pump(): void {
    while (this.running < this.d.options.concurrency && this.queue.length > 0 && !this.o.signal.aborted) {
      const job = this.queue.shift()!;
      this.running++;
      const file = job.name.name;
      const task = this.handle(job.name, job.size, job.mtimeMs)
        .then((r) => {
          if (r === 'changed') this.seen.delete(file); // wait for it to settle again
          this.failures.delete(file);
        })
        .catch((e: unknown) => this.failed(file, e))
        .finally(() => {
          this.running--;
          this.active.delete(file);
          this.tasks.delete(task);
          this.pump();
        });
      this.tasks.add(task);
    }
  }

  /** Tried again with a backoff (1 s doubling to 1 min), logged as an error the first time only. */
  private failed(file: string, e: unknown): void {
    if (e instanceof ShuttingDown) return;
    const count = (this.failures.get(file)?.count ?? 0) + 1;
    this.failures.set(file, { count, until: Date.now() + Math.min(60_000, 1000 * 2 ** (count - 1)) });
    const meta = {
      event: 'fx_failed',
      file,
      attempts: count,
      code: (e as OnshiError).code ?? (e as NodeJS.ErrnoException).code ?? 'INTERNAL',
      error: (e as Error).message,
    };
    if (count === 1) this.d.logger.error('a request file could not be answered; it is tried again', meta);
    else this.d.logger.debug('a request file could not be answered again', meta);
  }
}
