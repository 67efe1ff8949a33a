/**
 * One request, exactly once, across crashes: before central is asked a journal record keeps the
 * idempotency key; the answer is written and fsynced under a hidden temp name in `res`, the record
 * then says "answered" and names that temp file, and only then is the temp file renamed into place
 * and the request deleted (or moved to doneDir).
 */
import { randomUUID } from 'node:crypto';
import { constants, existsSync } from 'node:fs';
import { type FileHandle, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { commitTempFile, writeTempFile } from '../core/atomic-file.js';
import { OnshiError } from '../core/errors.js';
import type { ExchangeName } from '../oqs/index.js';
import type { RequestAnswers } from './answers.js';
import type { Journal, JournalRecord } from './journal.js';
import type { FileExchangeDeps, FileExchangeErrorCode, WarnOnce } from './types.js';

const TEMP_RE = /^\.(?:OQS|YZK|TKK)[A-Za-z0-9_-]+\.(?:xml|XML)\.\d+\.[0-9a-f]{8}\.tmp$/;

export class RequestProcessor {
  constructor(
    private readonly d: FileExchangeDeps,
    private readonly journal: Journal,
    private readonly answers: RequestAnswers,
    private readonly o: { mode: number; faceDir: string; warn: WarnOnce },
  ) {}

  /** Answers one request file; 'changed' when it changed while it was read (wait for it to settle again). */
  async process(name: ExchangeName, size: number, mtimeMs: number): Promise<'changed' | undefined> {
    const o = this.d.options;
    const read = await this.readRequest(name.name, size);
    if (read === 'gone' || read === 'changed') return read === 'changed' ? read : undefined;
    const { content, refused } = read;
    const digest = this.journal.digest(content, size, mtimeMs);
    const prior = await this.journal.read(name.name);
    const same = prior !== undefined && prior.digest === digest;
    if (same && prior.state === 'answered') {
      await this.finish(prior); // a crash came between the record and the deletion
      return undefined;
    }
    const idempotencyKey = same ? prior.idempotencyKey : randomUUID();
    const base = { v: 1 as const, name: name.name, digest, size, mtimeMs, idempotencyKey };
    if (!same) await this.journal.write({ ...base, state: 'pending', at: new Date().toISOString() });

    const { bytes, outcome } = refused
      ? this.answers.refuse(name, refused)
      : await this.answers.answer(name, content, idempotencyKey);
    const tmp = await writeTempFile(o.resDir, name.resultName, bytes, this.o.mode);
    const answered: JournalRecord = {
      ...base,
      state: 'answered',
      tmp: basename(tmp),
      res: name.resultName,
      at: new Date().toISOString(),
    };
    try {
      await this.journal.write(answered);
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
    return undefined;
  }

  /**
   * Reads a request without following a symbolic link: the final name is opened with O_NOFOLLOW
   * (a link fails with ELOOP) and must be a regular file (O_NONBLOCK: a FIFO cannot hang the open),
   * and the name is a plain name in req/ (no separator, so the path cannot leave the folder). A
   * link is answered with an error (FX_NOT_A_FILE) and then moved or removed like any request:
   * the link itself, never its target.
   */
  private async readRequest(
    file: string,
    size: number,
  ): Promise<'gone' | 'changed' | { content: Buffer | undefined; refused?: OnshiError }> {
    const o = this.d.options;
    const path = join(o.reqDir, file);
    if (basename(file) !== file || dirname(resolve(path)) !== resolve(o.reqDir))
      return { content: undefined, refused: notAFile(file, 'its name leaves the req folder') };
    let fh: FileHandle;
    try {
      fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return 'gone'; // taken away meanwhile
      if (code !== 'ELOOP') throw e;
      return this.refused(file, 'it is a symbolic link');
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) return this.refused(file, 'it is not a regular file');
      if (size > o.maxBytes) return { content: undefined };
      const content = await fh.readFile();
      return content.length === size ? { content } : 'changed';
    } finally {
      await fh.close();
    }
  }

  private refused(file: string, why: string): { content: undefined; refused: OnshiError } {
    this.d.logger.warn(`a request file was not read: ${why}; answered with an error`, {
      event: 'fx_not_a_file',
      file,
      reason: why,
    });
    return { content: undefined, refused: notAFile(file, why) };
  }

  /**
   * After a restart: finish answers that were recorded but not yet in place (their request may be
   * gone already), delete temp answers no record names (their requests are answered again), and
   * forget records older than journalDays whose request is gone.
   */
  async recover(): Promise<void> {
    const o = this.d.options;
    const referenced = new Set<string>();
    for (const name of await this.journal.names()) {
      const rec = await this.journal.read(name);
      if (rec === undefined) continue;
      if (rec.state === 'answered' && rec.tmp !== undefined) {
        if (existsSync(join(o.resDir, rec.tmp))) {
          await this.finish(rec);
          this.d.logger.info('finished an answer recorded before a restart', { event: 'fx_recovered', file: rec.name });
        }
        referenced.add(rec.tmp);
      }
    }
    await this.prune(() => false);
    for (const dir of new Set([o.resDir, this.o.faceDir])) {
      for (const file of await readdir(dir)) {
        if (TEMP_RE.test(file) && !referenced.has(file)) await rm(join(dir, file), { force: true });
      }
    }
  }

  /** Forgets records older than journalDays whose request is gone (at start and hourly), but not those `active`. */
  async prune(active: (name: string) => boolean): Promise<void> {
    const o = this.d.options;
    const cutoff = Date.now() - o.journalDays * 86_400_000;
    for (const name of await this.journal.names()) {
      if (active(name)) continue;
      const rec = await this.journal.read(name);
      if (rec !== undefined && Date.parse(rec.at) < cutoff && !existsSync(join(o.reqDir, rec.name)))
        await this.journal.remove(name);
    }
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
      this.o.warn.clear(`remove:${rec.name}`);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      // Answered and recorded: it will not be answered again, only removed on a later scan.
      this.o.warn(`remove:${rec.name}`, 'an answered request file could not be removed; retrying', {
        event: 'fx_remove_failed',
        file: rec.name,
        code,
      });
    }
  }
}

const notAFile = (file: string, why: string): OnshiError<FileExchangeErrorCode> =>
  new OnshiError<FileExchangeErrorCode>(
    'FX_NOT_A_FILE',
    `${file} was not read: ${why} (the gateway answers only regular files placed in the req folder)`,
  );
