/**
 * The journal (state dir, no personal data): one record per request file, written before central
 * is asked and again once the answer is fsynced under its temp name, so that a request is never
 * asked twice nor answered twice across crashes.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic, writeFileAtomicAsync } from '../core/atomic-file.js';

/** What the journal keeps of one request: its identity and how far its answer got. No personal data. */
export interface JournalRecord {
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

export class Journal {
  private readonly dir: string;
  private readonly key: Buffer;

  /** Creates the journal folder (0700) and its key on first use. */
  constructor(stateDir: string) {
    this.dir = join(stateDir, 'file-exchange', 'journal');
    const keyFile = join(stateDir, 'file-exchange', 'journal.key');
    if (!existsSync(keyFile)) writeFileAtomic(keyFile, randomBytes(32));
    this.key = readFileSync(keyFile);
    writeFileAtomic(join(this.dir, '.keep'), '');
  }

  /** The identity of a request file's version. */
  digest(content: Buffer | undefined, size: number, mtimeMs: number): string {
    // Rounded to the millisecond: finer parts of a file time are not kept by every file system (or by a copy).
    return createHmac('sha256', this.key)
      .update(content ?? Buffer.alloc(0))
      .update(`\0${size}\0${Math.round(mtimeMs)}`)
      .digest('hex');
  }

  /** The request names that have a record. */
  async names(): Promise<string[]> {
    return (await readdir(this.dir)).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
  }

  async read(name: string): Promise<JournalRecord | undefined> {
    let text: string;
    try {
      text = await readFile(this.path(name), 'utf8');
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

  write(rec: JournalRecord): Promise<void> {
    return writeFileAtomicAsync(this.path(rec.name), Buffer.from(JSON.stringify(rec)));
  }

  remove(name: string): Promise<void> {
    return rm(this.path(name), { force: true });
  }

  private path(name: string): string {
    return join(this.dir, `${name}.json`);
  }
}
