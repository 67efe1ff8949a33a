/**
 * The official file exchange (spec §3, §7): a receipt computer that today drops request files into
 * the 資格確認端末's `req` folder and reads answers from `res` works with the gateway unchanged.
 *
 * - `req` is watched with fs.watch and scanned every `pollMs` (events are unreliable on network and
 *   some other file systems). A file is read only when its size and time have stayed the same for
 *   `settleMs`; names that do not match `OQS…req_*.xml` (temp names) are never touched.
 * - `OQSsiquc01req` goes through the same inquiry flow as the WebSocket API (outage answers
 *   included), `OQSmuquc01req` is submitted to central and answered with the receipt,
 *   `OQSmuquc02req` fetches the batch (waiting up to `batchWaitMs`) and is answered with the result
 *   or 処理中. Anything that cannot be processed gets an error answer (SegmentOfResult 9), never
 *   silence and never a crash.
 * - Exactly once, across crashes: before central is asked, a journal record (state dir, no personal
 *   data) keeps the idempotency key; the answer is written and fsynced under a hidden temp name in
 *   `res`, the record then says "answered" and names that temp file, and only then is the temp file
 *   renamed into place and the request deleted. After a restart a request whose record says
 *   "answered" only finishes that rename (if it had not happened) and is deleted: it is never asked
 *   again and never answered twice. A request without such a record is answered (with the same
 *   idempotency key, so central does not act twice).
 * - Face-reader style results: every card check made at the gateway is also written as
 *   `OQSsiquc01res_face_<institution…>_<time>.xml` (daemon.ts calls writeFaceResult).
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { commitTempFile, writeFileAtomic, writeFileAtomicAsync, writeTempFile } from '../core/atomic-file.js';
import { OnshiError, isOnshiError } from '../core/errors.js';
import {
  batchOutcome,
  declaredEncoding,
  decodeBatchFetchXml,
  decodeBatchSubmitXml,
  decodeRequestXml,
  encodeBatchReceiptXml,
  encodeBatchResultXml,
  encodeErrorAnswer,
  encodeResponseXml,
  faceResultName,
  parseRequestName,
  shiftJisSafeBody,
  shiftJisSafeResponse,
  shiftJisSafeText,
  type BatchReceipt,
  type BatchResult,
  type BatchSubmitRequest,
  type ExchangeName,
} from '../oqs/index.js';
import { timestampJst, todayJst } from '../oqs/dates.js';
import type { CharacterCode, NumbersQuery, QualificationResponse, ResponseBody } from '../oqs/types.js';
import type { FileExchangeConfig } from '../core/config.js';
import type { InquiryResult } from '../checks/result.js';
import type { NumbersQueryInput } from '../protocol/schema.js';
import type { Logger } from '../core/logger.js';

export type FileExchangeErrorCode =
  | 'FX_FOLDER_MISSING' // a configured folder does not exist (never created: spec §7)
  | 'FX_UNSUPPORTED' // a request kind the gateway does not answer (照会番号, 医療扶助, 薬剤/健診 …)
  | 'FX_INSTITUTION_MISMATCH'; // the request names another 医療機関コード

export interface FileExchangeDeps {
  options: FileExchangeConfig;
  institutionCode: string;
  stateDir: string;
  logger: Logger;
  /** the inquiry flow of the WebSocket API (inquireByNumbers with the daemon's deps) */
  inquire(input: {
    query: NumbersQueryInput;
    confirmationDate: string;
    requestId: string;
    clientId: string;
    deadline: number;
    idempotencyKey: string;
  }): Promise<InquiryResult>;
  central: {
    submitBatch(req: BatchSubmitRequest, call: { deadline: number; idempotencyKey?: string }): Promise<BatchReceipt>;
    fetchBatch(receptionNumber: string, institutionCode: string, call: { deadline: number }): Promise<BatchResult>;
  };
  /** how long one call to central may take (config central.timeoutMs) */
  centralTimeoutMs: number;
}

/** What the journal keeps of one request: its identity and how far its answer got. No personal data. */
interface JournalRecord {
  v: 1;
  name: string;
  /** HMAC-SHA256 (journal key) of the request bytes, size and mtime: the same file, not just the same name */
  digest: string;
  size: number;
  mtimeMs: number;
  state: 'pending' | 'answered';
  idempotencyKey: string;
  /** state answered: the temp file in res that holds the answer until it is renamed */
  tmp?: string;
  res?: string;
  at: string;
}

interface Seen {
  size: number;
  mtimeMs: number;
  since: number;
}

class ShuttingDown extends Error {}

const CLIENT_ID = 'file-exchange';
const TEMP_RE = /^\.(?:OQS|YZK|TKK)[A-Za-z0-9_-]+\.(?:xml|XML)\.\d+\.[0-9a-f]{8}\.tmp$/;

export class FileExchange {
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
  private readonly abort = new AbortController();
  private readonly warned = new Set<string>();
  /** requests whose processing failed (e.g. res not writable): not tried again before `until` */
  private readonly failures = new Map<string, { count: number; until: number }>();
  private pruneTimer: NodeJS.Timeout | undefined;
  private readonly journalDir: string;
  private readonly key: Buffer;
  private readonly mode: number;
  private readonly faceDir: string;

  private constructor(private readonly d: FileExchangeDeps) {
    const o = d.options;
    this.journalDir = join(d.stateDir, 'file-exchange', 'journal');
    this.mode = parseInt(o.fileMode, 8);
    this.faceDir = o.faceDir || o.resDir;
    const keyFile = join(d.stateDir, 'file-exchange', 'journal.key');
    if (!existsSync(keyFile)) writeFileAtomic(keyFile, randomBytes(32));
    this.key = readFileSync(keyFile);
    writeFileAtomic(join(this.journalDir, '.keep'), ''); // creates the journal folder (0700)
  }

  /** Checks the folders, tidies what a crash left, answers what waits in req, then watches it. */
  static async start(d: FileExchangeDeps): Promise<FileExchange> {
    const o = d.options;
    const folders: Array<[string, string]> = [
      ['reqDir', o.reqDir],
      ['resDir', o.resDir],
    ];
    if (o.faceDir) folders.push(['faceDir', o.faceDir]);
    if (o.doneDir) folders.push(['doneDir', o.doneDir]);
    for (const [key, dir] of folders) {
      let ok = false;
      try {
        ok = dir !== '' && statSync(dir).isDirectory();
      } catch {
        /* missing */
      }
      if (!ok) {
        throw new OnshiError<FileExchangeErrorCode>(
          'FX_FOLDER_MISSING',
          `fileExchange.${key} ${dir ? `(${dir}) does not exist or is not a folder` : 'is not set'}; the gateway never creates the exchange folders`,
          { details: { setting: `fileExchange.${key}` } },
        );
      }
    }
    const fx = new FileExchange(d);
    await fx.recover();
    fx.watchFolder();
    fx.timer = setInterval(() => fx.kick(), o.pollMs);
    fx.pruneTimer = setInterval(
      () =>
        void fx.prune().catch(() => {
          /* next hour */
        }),
      3600_000,
    );
    fx.pruneTimer.unref();
    await fx.scan();
    d.logger.info('file exchange started', { event: 'fx_started', reqDir: o.reqDir, resDir: o.resDir });
    return fx;
  }

  /** Stops watching; single checks in flight finish, batch waits are abandoned (answered after the restart). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.pruneTimer);
    clearTimeout(this.debounce);
    this.watcher?.close();
    this.abort.abort();
    this.queue.length = 0;
    await this.scanning;
    await Promise.allSettled([...this.tasks]);
  }

  /** A scan now, then until every request it found is answered (tests, and the CLI's one-shot use). */
  async scanNow(): Promise<void> {
    await this.scan();
    while (this.tasks.size > 0 || this.scanning) await Promise.allSettled([...this.tasks, this.scanning]);
  }

  /**
   * The face-reader style result of a card check made at the gateway (spec §3). Central's and
   * cached answers are written (a cached one with a notice saying so); an "unavailable" answer is
   * not (the terminal writes no file for a check that gave no eligibility). Returns the file name.
   */
  async writeFaceResult(result: InquiryResult): Promise<string | undefined> {
    if (!this.d.options.faceFiles || result.source === 'none') return undefined;
    const characterCode: CharacterCode = this.d.options.encoding === 'Shift_JIS' ? '1' : '0';
    const now = new Date();
    const response = responseOf(result, {
      referenceClassification: '1',
      institutionCode: this.d.institutionCode,
      characterCode,
      processTime: timestampJst(now),
      fileId: randomBytes(12).toString('base64'),
    });
    const name = faceResultName(this.d.institutionCode, randomBytes(4).toString('hex'), timestampJst(now));
    await writeFileAtomicAsync(
      join(this.faceDir, name),
      encodeResponseXml(characterCode === '1' ? shiftJisSafeResponse(response) : response),
      this.mode,
    );
    this.d.logger.info('face result written', { event: 'fx_face_written', file: name, source: result.source });
    return name;
  }

  // -------------------------------------------------------------------------------------------
  // Watching and scanning

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
    if (this.abort.signal.aborted) return;
    if (delayMs === 0) {
      void this.scan();
      return;
    }
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.scan(), delayMs);
  }

  private scan(): Promise<void> {
    if (this.scanning) {
      this.rescan = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      try {
        do {
          this.rescan = false;
          await this.scanOnce();
        } while (this.rescan && !this.abort.signal.aborted);
      } finally {
        this.scanning = undefined;
      }
    })();
    return this.scanning;
  }

  private async scanOnce(): Promise<void> {
    const { reqDir, settleMs } = this.d.options;
    let names: string[];
    try {
      names = await readdir(reqDir);
      this.warned.delete('readdir');
    } catch (e) {
      this.warnOnce('readdir', 'cannot read the req folder', {
        event: 'fx_scan_failed',
        code: (e as NodeJS.ErrnoException).code,
      });
      return;
    }
    const present = new Set<string>();
    const now = Date.now();
    for (const file of names) {
      const parsed = parseRequestName(file);
      if (parsed === undefined) continue;
      present.add(file);
      if (this.active.has(file)) continue;
      const failed = this.failures.get(file);
      if (failed !== undefined && now < failed.until) continue;
      let st: Awaited<ReturnType<typeof stat>>;
      try {
        st = await stat(join(reqDir, file));
      } catch {
        continue; // taken away meanwhile
      }
      if (!st.isFile()) continue;
      const prev = this.seen.get(file);
      if (prev === undefined || prev.size !== st.size || prev.mtimeMs !== st.mtimeMs) {
        this.seen.set(file, { size: st.size, mtimeMs: st.mtimeMs, since: now });
        if (settleMs > 0) continue;
      } else if (now - prev.since < settleMs) continue;
      this.active.add(file);
      this.queue.push({ name: parsed, size: st.size, mtimeMs: st.mtimeMs });
    }
    for (const k of this.seen.keys()) if (!present.has(k)) this.seen.delete(k);
    for (const k of this.failures.keys()) if (!present.has(k)) this.failures.delete(k);
    this.pump();
  }

  private pump(): void {
    while (this.running < this.d.options.concurrency && this.queue.length > 0 && !this.abort.signal.aborted) {
      const job = this.queue.shift()!;
      this.running++;
      const file = job.name.name;
      const task = this.process(job.name, job.size, job.mtimeMs)
        .then(() => {
          this.failures.delete(file);
        })
        .catch((e: unknown) => {
          if (e instanceof ShuttingDown) return;
          // Tried again with a backoff (1 s doubling to 1 min), logged as an error the first time only.
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
        })
        .finally(() => {
          this.running--;
          this.active.delete(job.name.name);
          this.tasks.delete(task);
          this.pump();
        });
      this.tasks.add(task);
    }
  }

  private warnOnce(key: string, message: string, meta: Record<string, unknown>): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.d.logger.warn(message, meta);
  }

  // -------------------------------------------------------------------------------------------
  // One request, exactly once

  private async process(name: ExchangeName, size: number, mtimeMs: number): Promise<void> {
    const o = this.d.options;
    const path = join(o.reqDir, name.name);
    let content: Buffer | undefined;
    if (size <= o.maxBytes) {
      content = await readFile(path).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined;
        throw e;
      });
      if (content === undefined) return; // taken away meanwhile
      if (content.length !== size) {
        this.seen.delete(name.name); // changed while we looked: wait for it to settle again
        return;
      }
    }
    // Rounded to the millisecond: finer parts of a file time are not kept by every file system (or by a copy).
    const digest = createHmac('sha256', this.key)
      .update(content ?? Buffer.alloc(0))
      .update(`\0${size}\0${Math.round(mtimeMs)}`)
      .digest('hex');
    const prior = await this.readRecord(name.name);
    const same = prior !== undefined && prior.digest === digest;
    if (same && prior.state === 'answered') {
      await this.finish(prior); // a crash came between the record and the deletion
      return;
    }
    const idempotencyKey = same ? prior.idempotencyKey : randomUUID();
    const base = { v: 1 as const, name: name.name, digest, size, mtimeMs, idempotencyKey };
    if (!same) await this.writeRecord({ ...base, state: 'pending', at: new Date().toISOString() });

    const { bytes, outcome } = await this.answer(name, content, idempotencyKey);
    const tmp = await writeTempFile(o.resDir, name.resultName, bytes, this.mode);
    const answered: JournalRecord = {
      ...base,
      state: 'answered',
      tmp: basename(tmp),
      res: name.resultName,
      at: new Date().toISOString(),
    };
    try {
      await this.writeRecord(answered);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    await this.finish(answered);
    this.d.logger.info('request file answered', {
      event: 'fx_answered',
      file: name.name,
      result: name.resultName,
      kind: name.kind,
      ...outcome,
    });
  }

  /** The answer is recorded: put it in place (unless that already happened) and take the request away. */
  private async finish(rec: JournalRecord): Promise<void> {
    const o = this.d.options;
    if (rec.tmp !== undefined && rec.res !== undefined) {
      try {
        await commitTempFile(join(o.resDir, rec.tmp), join(o.resDir, rec.res));
      } catch (e) {
        // Already renamed before the crash (and perhaps already taken by the receipt computer).
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    const path = join(o.reqDir, rec.name);
    try {
      if (o.doneDir) await rename(path, join(o.doneDir, rec.name));
      else await rm(path);
      this.warned.delete(`remove:${rec.name}`);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      // Answered and recorded: it will not be answered again, only removed on a later scan.
      this.warnOnce(`remove:${rec.name}`, 'an answered request file could not be removed; retrying', {
        event: 'fx_remove_failed',
        file: rec.name,
        code,
      });
    }
  }

  private recordPath(name: string): string {
    return join(this.journalDir, `${name}.json`);
  }

  private async readRecord(name: string): Promise<JournalRecord | undefined> {
    let text: string;
    try {
      text = await readFile(this.recordPath(name), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    try {
      const r = JSON.parse(text) as JournalRecord;
      return r.v === 1 && r.name === name ? r : undefined;
    } catch {
      return undefined; // written atomically, so only a foreign file could be torn: treat as absent
    }
  }

  private writeRecord(rec: JournalRecord): Promise<void> {
    return writeFileAtomicAsync(this.recordPath(rec.name), Buffer.from(JSON.stringify(rec)));
  }

  /**
   * After a restart: finish answers that were recorded but not yet in place (their request may be
   * gone already), delete temp answers no record names (their requests are answered again), and
   * forget records older than journalDays whose request is gone.
   */
  private async recover(): Promise<void> {
    const o = this.d.options;
    const referenced = new Set<string>();
    for (const file of await readdir(this.journalDir)) {
      if (!file.endsWith('.json')) continue;
      const rec = await this.readRecord(file.slice(0, -5));
      if (rec === undefined) continue;
      if (rec.state === 'answered' && rec.tmp !== undefined) {
        if (existsSync(join(o.resDir, rec.tmp))) {
          await this.finish(rec);
          this.d.logger.info('finished an answer recorded before a restart', { event: 'fx_recovered', file: rec.name });
        }
        referenced.add(rec.tmp);
      }
    }
    await this.prune();
    for (const dir of new Set([o.resDir, this.faceDir])) {
      for (const file of await readdir(dir)) {
        if (TEMP_RE.test(file) && !referenced.has(file)) await rm(join(dir, file), { force: true });
      }
    }
  }

  /** Forgets records older than journalDays whose request is gone (at start and hourly). */
  private async prune(): Promise<void> {
    const o = this.d.options;
    const cutoff = Date.now() - o.journalDays * 86_400_000;
    for (const file of await readdir(this.journalDir)) {
      if (!file.endsWith('.json')) continue;
      const name = file.slice(0, -5);
      if (this.active.has(name)) continue;
      const rec = await this.readRecord(name);
      if (rec !== undefined && Date.parse(rec.at) < cutoff && !existsSync(join(o.reqDir, rec.name)))
        await rm(this.recordPath(name), { force: true });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Answers

  private characterCodeFor(content: Buffer | undefined): CharacterCode {
    const e = this.d.options.encoding;
    if (e === 'UTF-8') return '0';
    if (e === 'Shift_JIS') return '1';
    return content !== undefined && declaredEncoding(content) === 'Shift_JIS' ? '1' : '0';
  }

  /** Never throws for a bad request or a failed check: those are answered with SegmentOfResult 9. */
  private async answer(
    name: ExchangeName,
    content: Buffer | undefined,
    idempotencyKey: string,
  ): Promise<{ bytes: Buffer; outcome: Record<string, unknown> }> {
    const characterCode = this.characterCodeFor(content);
    const ctx: ErrorContext = { kind: name.kind, characterCode };
    try {
      if (content === undefined) {
        throw new OnshiError('OQS_XML_TOO_LARGE', `the request file is larger than ${this.d.options.maxBytes} bytes`);
      }
      switch (name.kind) {
        case 'single':
          return await this.single(content, idempotencyKey, ctx);
        case 'batchSubmit':
          return await this.batchSubmit(content, idempotencyKey, ctx);
        case 'batchFetch':
          return await this.batchFetch(content, ctx);
        case 'unsupported':
          throw new OnshiError<FileExchangeErrorCode>(
            'FX_UNSUPPORTED',
            `${name.prefix}${name.scope}${name.job}${name.step} files are not answered by the gateway; use the 資格確認端末 for them`,
          );
      }
    } catch (e) {
      if (e instanceof ShuttingDown) throw e;
      return this.errorAnswer(ctx, e);
    }
  }

  private errorAnswer(ctx: ErrorContext, e: unknown): { bytes: Buffer; outcome: Record<string, unknown> } {
    let errorCode = isOnshiError(e) ? e.code : 'INTERNAL';
    let errorMessage = e instanceof Error ? e.message : String(e);
    // Central's own 別紙6-1 code, when it answered 異常終了, passes through verbatim (spec §8).
    if (isOnshiError(e, 'CENTRAL_REJECTED') && typeof e.details.errorCode === 'string') errorCode = e.details.errorCode;
    if (!isOnshiError(e)) {
      errorMessage = 'internal error while answering the request';
      this.d.logger.error('unexpected error while answering a request file', {
        event: 'fx_internal_error',
        error: e instanceof Error ? e.message : String(e),
      });
    }
    const bytes = encodeErrorAnswer({
      kind: ctx.kind,
      processTime: timestampJst(),
      institutionCode: this.d.institutionCode,
      characterCode: ctx.characterCode,
      errorCode,
      errorMessage,
      ...(ctx.confirmationDate ? { confirmationDate: ctx.confirmationDate } : {}),
      ...(ctx.fileId ? { fileId: ctx.fileId } : {}),
      ...(ctx.receptionNumber ? { receptionNumber: ctx.receptionNumber } : {}),
    });
    return { bytes, outcome: { segmentOfResult: '9', errorCode } };
  }

  private checkInstitution(code: string): void {
    if (code !== this.d.institutionCode) {
      throw new OnshiError<FileExchangeErrorCode>(
        'FX_INSTITUTION_MISMATCH',
        `the request is for 医療機関コード ${code}, this gateway serves ${this.d.institutionCode}`,
      );
    }
  }

  private deadline(): number {
    return Date.now() + this.d.options.deadlineMs;
  }

  private async single(
    content: Buffer,
    idempotencyKey: string,
    ctx: ErrorContext,
  ): Promise<{ bytes: Buffer; outcome: Record<string, unknown> }> {
    const { request } = decodeRequestXml(content, { maxBytes: this.d.options.maxBytes });
    ctx.confirmationDate = request.confirmationDate;
    if (request.fileId !== undefined) ctx.fileId = request.fileId;
    this.checkInstitution(request.institutionCode);
    const result = await this.d.inquire({
      query: queryInput(request.query),
      confirmationDate: request.confirmationDate,
      requestId: request.fileId ?? idempotencyKey,
      clientId: CLIENT_ID,
      deadline: this.deadline(),
      idempotencyKey,
    });
    if (result.source === 'none') {
      const u = result.unavailable!;
      const queued = result.recheck?.queued
        ? ' 回線の復旧後に自動で再確認します。'
        : result.recheck
          ? ` ${result.recheck.message}`
          : '';
      throw new OnshiError(u.code, `${u.guidance[0] ?? ''}${queued} (${u.message})`);
    }
    const response = responseOf(result, {
      referenceClassification: '2',
      institutionCode: this.d.institutionCode,
      characterCode: ctx.characterCode,
      processTime: result.processTime ?? timestampJst(),
      query: request.query,
      ...(request.fileId ? { fileId: request.fileId } : {}),
    });
    const bytes = encodeResponseXml(ctx.characterCode === '1' ? shiftJisSafeResponse(response) : response);
    return {
      bytes,
      outcome: {
        segmentOfResult: '1',
        source: result.source,
        ...(result.validity ? { validity: result.validity } : {}),
      },
    };
  }

  private async batchSubmit(
    content: Buffer,
    idempotencyKey: string,
    ctx: ErrorContext,
  ): Promise<{ bytes: Buffer; outcome: Record<string, unknown> }> {
    const { request } = decodeBatchSubmitXml(content, { maxBytes: this.d.options.maxBytes });
    ctx.confirmationDate = request.confirmationDate;
    if (request.fileId !== undefined) ctx.fileId = request.fileId;
    this.checkInstitution(request.institutionCode);
    const receipt = await this.d.central.submitBatch(request, {
      deadline: Date.now() + this.d.centralTimeoutMs,
      idempotencyKey,
    });
    const header = { ...receipt.header, characterCode: ctx.characterCode };
    if (ctx.characterCode === '1' && header.errorMessage !== undefined)
      header.errorMessage = shiftJisSafeText(header.errorMessage);
    const bytes = encodeBatchReceiptXml({ ...receipt, header });
    return { bytes, outcome: { segmentOfResult: header.segmentOfResult, entries: request.entries.length } };
  }

  private async batchFetch(
    content: Buffer,
    ctx: ErrorContext,
  ): Promise<{ bytes: Buffer; outcome: Record<string, unknown> }> {
    const { request } = decodeBatchFetchXml(content, { maxBytes: this.d.options.maxBytes });
    ctx.receptionNumber = request.receptionNumber;
    ctx.confirmationDate = todayJst();
    this.checkInstitution(request.institutionCode);
    const { batchWaitMs, batchPollMs } = this.d.options;
    const waitEnd = Date.now() + batchWaitMs;
    const fetch = (): Promise<BatchResult> =>
      this.d.central.fetchBatch(request.receptionNumber, request.institutionCode, {
        deadline: Date.now() + this.d.centralTimeoutMs,
      });
    let result = await fetch();
    while (batchOutcome(result).state === 'pending' && Date.now() + batchPollMs <= waitEnd) {
      await sleep(batchPollMs, this.abort.signal);
      result = await fetch();
    }
    const header = { ...result.header, characterCode: ctx.characterCode };
    let units = result.units;
    if (ctx.characterCode === '1') {
      if (header.errorMessage !== undefined) header.errorMessage = shiftJisSafeText(header.errorMessage);
      units = units.map((u) => shiftJisSafeBody(u));
    }
    const bytes = encodeBatchResultXml({ ...result, header, units });
    return { bytes, outcome: { segmentOfResult: header.segmentOfResult, units: units.length } };
  }
}

interface ErrorContext {
  kind: ExchangeName['kind'];
  characterCode: CharacterCode;
  confirmationDate?: string;
  fileId?: string;
  receptionNumber?: string;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new ShuttingDown());
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new ShuttingDown());
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** A request block as the API's input (the inquiry flow validates and normalizes it again). */
function queryInput(q: NumbersQuery): NumbersQueryInput {
  return {
    insurerNumber: q.insurerNumber,
    number: q.number,
    birthdate: q.birthdate,
    limitConsent: q.limitConsent === '1',
    ...(q.symbol !== undefined ? { symbol: q.symbol } : {}),
    ...(q.branch !== undefined ? { branch: q.branch } : {}),
    ...(q.arbitraryId !== undefined ? { arbitraryId: q.arbitraryId } : {}),
  };
}

/** Our notice code on an answer from the cache (central was unreachable): §8 (6), shown, not an error. */
export const CACHE_NOTICE_CODE = 'ONSHI-I-CACHE';

/**
 * What the counter was told, as the official answer file (§2.2–2.4). A cached answer says so in
 * ProcessingResultCode/Message (with the time central confirmed it), since the file has no other
 * place for it.
 */
export function responseOf(
  result: InquiryResult,
  o: {
    referenceClassification: '1' | '2';
    institutionCode: string;
    characterCode: CharacterCode;
    processTime: string;
    fileId?: string;
    query?: NumbersQuery;
  },
): QualificationResponse {
  const body: ResponseBody = { status: result.status ?? '1', results: result.results };
  if (o.query !== undefined) body.query = o.query;
  if (result.validity !== undefined) body.validity = result.validity;
  if (result.resultCode !== undefined) body.resultCode = result.resultCode;
  if (result.resultMessage !== undefined) body.resultMessage = result.resultMessage;
  if (result.source === 'cache') {
    body.resultCode ??= CACHE_NOTICE_CODE;
    const recheck = result.recheck && !result.recheck.queued ? [result.recheck.message] : [];
    body.resultMessage = [...result.notices, ...recheck].join(' ');
  }
  const response: QualificationResponse = {
    header: {
      processTime: o.processTime,
      confirmationDate: result.confirmationDate,
      institutionCode: o.institutionCode,
      referenceClassification: o.referenceClassification,
      segmentOfResult: '1',
      characterCode: o.characterCode,
    },
    body,
  };
  if (o.fileId !== undefined) response.header.fileId = o.fileId;
  return response;
}
