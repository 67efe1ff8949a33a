/**
 * GatewayStore: the gateway's durable state (eligibility cache, outbox, reconciliation, revocation
 * list, meta) in one SQLite file in WAL mode.
 *
 * Threads: every write goes to the writer worker (writer-worker.ts), which owns the only write
 * connection. Reads that the counter waits on (cache lookups, revocation checks, stats) run on a
 * read-only connection on the main thread: WAL lets it read the last committed snapshot while the
 * worker writes, and these are indexed point reads (tens of microseconds, served from the page
 * cache), far cheaper than a round trip to the worker. Because a write's promise resolves only
 * after its commit, a read issued after an awaited write always sees it.
 *
 * Durability: one database file with synchronous=FULL on the writer connection. The outbox must be
 * FULL; the cache could live with NORMAL, but a second file would mean a second key check, a
 * second corruption path and no atomic "cache + outbox" transaction later, while the cost of FULL
 * for the cache (one extra WAL fsync per put) is paid in the worker, off the event loop, and is
 * shared by group commit.
 */
import Database from 'better-sqlite3';
import { existsSync, mkdirSync } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { OnshiError } from '../core/errors.js';
import {
  AUDIT_COLUMNS,
  AUDIT_KINDS,
  auditAad,
  auditSource,
  verifyAuditSteps,
  verifyAuditSync,
  type AuditRow,
  type AuditSource,
} from './audit.js';
import { CacheKeys, loadOrCreateKey, toJson } from './crypto.js';
import {
  outcomeToWire,
  type OpArgs,
  type WireEligibility,
  type OpName,
  type OpResult,
  type Request,
  type Requests,
  type Response,
  type Startup,
  type WireError,
  type WorkerMessage,
} from './protocol.js';
import { spawnWriter } from './spawn-writer.js';
import { toStoreError } from './sqlite-errors.js';
import type {
  AuditEntry,
  AuditInput,
  AuditVerifyResult,
  BatchChunkRecord,
  BatchChunkState,
  BatchEntryInput,
  BatchEntryRecord,
  BatchEntryResultInput,
  BatchRecord,
  BatchState,
  CacheOptions,
  CompleteOutcome,
  LookupInput,
  OutboxEntry,
  OutboxStats,
  RecheckEntry,
  RecheckInput,
  RecheckState,
  RecheckUpdate,
  ReconciliationEntry,
  ReconciliationInput,
  StoreAlert,
  StoreErrorCode,
} from './types.js';
import { AAD, META_REVOCATION_FETCHED_AT } from './writer-ops.js';
import { BATCH_AAD } from './batch-ops.js';

export const DB_FILE = 'gateway.db';
/** A prepared cache write (eligibilityWrite → settleOutbox). */
export type EligibilityWrite = WireEligibility;
const DEFAULT_OUTBOX_MAX = 10_000;
/** Meta keys starting with this are the store's own. */
const RESERVED_META = 'store.';

const err = (code: StoreErrorCode, message: string, details?: Record<string, unknown>): OnshiError<StoreErrorCode> =>
  new OnshiError<StoreErrorCode>(code, message, details ? { details } : {});

const fromWire = (w: WireError): OnshiError =>
  new OnshiError(w.code, w.message, { retryable: w.retryable, ...(w.details ? { details: w.details } : {}) });

function validDate(d: Date, name: string): number {
  const ms = d instanceof Date ? d.getTime() : NaN;
  if (!Number.isFinite(ms)) throw err('STORE_INPUT_INVALID', `${name} must be a valid Date`);
  return ms;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

type ReaderStatements = ReturnType<typeof prepareReader>;

function prepareReader(db: Database.Database) {
  return {
    elig: db.prepare('SELECT answer, verified_at, source FROM eligibility WHERE lookup = ?'),
    // the depth is kept by triggers (schema v6); the oldest comes from the partial index outbox_open_age
    depth: db.prepare(
      `SELECT (SELECT depth FROM outbox_depth) AS depth, (SELECT created_at FROM outbox INDEXED BY outbox_open_age WHERE state IN ('pending', 'inflight') ORDER BY created_at LIMIT 1) AS oldest`,
    ),
    dead: db.prepare(`SELECT COUNT(*) FROM outbox WHERE state = 'dead'`).pluck(),
    revoked: db.prepare('SELECT 1 FROM revoked_serials WHERE serial = ?').pluck(),
    meta: db.prepare('SELECT value FROM meta WHERE key = ?').pluck(),
    reconAll: db.prepare('SELECT * FROM reconciliation ORDER BY id LIMIT ?'),
    reconOpen: db.prepare('SELECT * FROM reconciliation WHERE handled_at IS NULL ORDER BY id LIMIT ?'),
    reconByOutbox: db.prepare('SELECT * FROM reconciliation WHERE outbox_id = ? ORDER BY id LIMIT 1'),
    reconOpenCount: db.prepare('SELECT COUNT(*) FROM reconciliation WHERE handled_at IS NULL').pluck(),
    eligCount: db.prepare('SELECT entries FROM eligibility_count').pluck(), // kept by triggers (schema v8)
    rechecksAll: db.prepare('SELECT * FROM rechecks ORDER BY id DESC LIMIT ?'),
    rechecksByState: db.prepare('SELECT * FROM rechecks WHERE state = ? ORDER BY id LIMIT ?'),
    recheckById: db.prepare('SELECT * FROM rechecks WHERE id = ?'),
    overdue: db
      .prepare(`SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'inflight') AND created_at < ?`)
      .pluck(),
    auditList: db.prepare(`SELECT ${AUDIT_COLUMNS} FROM audit WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?`),
    auditListDesc: db.prepare(`SELECT ${AUDIT_COLUMNS} FROM audit WHERE seq > ? AND seq < ? ORDER BY seq DESC LIMIT ?`),
    audit: auditSource(db),
    batch: db.prepare('SELECT * FROM batches WHERE id = ?'),
    batchList: db.prepare('SELECT * FROM batches ORDER BY submitted_at DESC, id LIMIT ?'),
    batchRunnable: db
      .prepare(
        `SELECT id FROM batches WHERE (state = 'queued' AND run = 'now') OR state = 'running' ORDER BY submitted_at, id`,
      )
      .pluck(),
    batchScheduled: db
      .prepare(`SELECT id FROM batches WHERE state = 'queued' AND run = 'scheduled' ORDER BY submitted_at, id`)
      .pluck(),
    batchChunks: db.prepare('SELECT * FROM batch_chunks WHERE batch_id = ? ORDER BY chunk'),
    batchChunkEntries: db.prepare('SELECT seq, query FROM batch_entries WHERE batch_id = ? AND chunk = ? ORDER BY seq'),
    batchEntries: db.prepare(
      'SELECT seq, query, state, result FROM batch_entries WHERE batch_id = ? AND seq >= ? ORDER BY seq LIMIT ?',
    ),
  };
}

interface BatchRow {
  id: string;
  client: string;
  confirmation_date: string;
  run: 'now' | 'scheduled';
  state: BatchState;
  total: number;
  finished: number;
  errors: number;
  chunks: number;
  submitted_at: number;
  started_at: number | null;
  finished_at: number | null;
}
interface BatchChunkRow {
  batch_id: string;
  chunk: number;
  state: BatchChunkState;
  idempotency_key: string;
  reception_number: string | null;
  entries: number;
  last_error: string | null;
}

function batchRecord(r: BatchRow): BatchRecord {
  const b: BatchRecord = {
    id: r.id,
    client: r.client,
    confirmationDate: r.confirmation_date,
    run: r.run,
    state: r.state,
    total: r.total,
    finished: r.finished,
    errors: r.errors,
    chunks: r.chunks,
    submittedAt: new Date(r.submitted_at),
  };
  if (r.started_at !== null) b.startedAt = new Date(r.started_at);
  if (r.finished_at !== null) b.finishedAt = new Date(r.finished_at);
  return b;
}

/** The admin page's batch row (src/admin/backend.ts BatchItem is this type). */
export interface BatchListItem {
  id: string;
  submittedAt: string;
  state: 'queued' | 'running' | 'done' | 'failed';
  total: number;
  done: number;
  errors: number;
  finishedAt?: string;
  client?: string;
}

const CODE_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Checks an audit entry's clear fields: they are kept forever, so they must be short codes, never text. */
function auditArgs(a: AuditInput, now: Date): OpArgs<'appendAudit'> {
  if (!AUDIT_KINDS.includes(a.kind))
    throw err('STORE_INPUT_INVALID', `audit kind must be one of ${AUDIT_KINDS.join(', ')}`);
  if (
    typeof a.actor !== 'string' ||
    a.actor.length === 0 ||
    a.actor.length > 128 ||
    /[\u0000-\u001f\u007f]/.test(a.actor)
  ) {
    throw err('STORE_INPUT_INVALID', 'audit actor must be 1–128 printable characters');
  }
  const printable = (v: unknown, max: number): boolean =>
    typeof v === 'string' && v.length > 0 && v.length <= max && !/[\u0000-\u001f\u007f]/.test(v);
  if (a.target !== undefined && !printable(a.target, 128))
    throw err('STORE_INPUT_INVALID', 'audit target must be 1–128 printable characters');
  if (a.remote !== undefined && !printable(a.remote, 64))
    throw err('STORE_INPUT_INVALID', 'audit remote must be 1–64 printable characters');
  if (typeof a.action !== 'string' || !CODE_RE.test(a.action))
    throw err('STORE_INPUT_INVALID', 'audit action must be a short code ([A-Za-z0-9_.:-], ≤ 64)');
  if (a.mode !== undefined && a.mode !== 'card' && a.mode !== 'numbers')
    throw err('STORE_INPUT_INVALID', 'audit mode must be card or numbers');
  if (a.outcome !== undefined && (typeof a.outcome !== 'string' || !CODE_RE.test(a.outcome)))
    throw err('STORE_INPUT_INVALID', 'audit outcome must be a short code ([A-Za-z0-9_.:-], ≤ 64)');
  if (a.source !== undefined && a.source !== 'central' && a.source !== 'cache')
    throw err('STORE_INPUT_INVALID', 'audit source must be central or cache');
  return {
    kind: a.kind,
    actor: a.actor,
    action: a.action,
    target: a.target ?? null,
    remote: a.remote ?? null,
    mode: a.mode ?? null,
    outcome: a.outcome ?? null,
    source: a.source ?? null,
    personalJson: a.personal === undefined ? null : toJson(a.personal),
    at: validDate(now, 'now'),
  };
}

interface RecheckRow {
  id: number;
  client: string;
  created_at: number;
  until_at: number;
  next_at: number | null;
  attempts: number;
  state: RecheckState;
  first_validity: string;
  last_validity: string | null;
  last_error: string | null;
  personal: Buffer;
  found: Buffer | null;
  settled_at: number | null;
}

interface ReconRow {
  id: number;
  outbox_id: number;
  before: Buffer | null;
  after: Buffer;
  changed_fields: string;
  created_at: number;
  handled_at: number | null;
}

export class GatewayStore {
  /** What happened at open: a corrupt file moved aside, a key created, inflight entries reset… */
  readonly startupAlerts: readonly StoreAlert[];
  readonly dbPath: string;
  readonly keyPath: string;
  readonly outboxMax: number;

  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closing: Promise<void> | undefined;
  private failure: OnshiError | undefined;

  private constructor(
    private readonly worker: Worker,
    private readonly reader: Database.Database,
    private readonly rs: ReaderStatements,
    private readonly keys: CacheKeys,
    init: { dbPath: string; keyPath: string; outboxMax: number; alerts: StoreAlert[] },
  ) {
    this.dbPath = init.dbPath;
    this.keyPath = init.keyPath;
    this.outboxMax = init.outboxMax;
    this.startupAlerts = Object.freeze(init.alerts);
    worker.on('message', (m: WorkerMessage) => this.onMessage(m));
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', (code) => this.fail(new Error(`writer worker exited (${code})`)));
    worker.unref(); // referenced only while requests are in flight (see call)
  }

  /** Loads or creates the key, starts the writer (which checks, repairs and migrates the file), opens the reader. */
  static async open(o: CacheOptions): Promise<GatewayStore> {
    mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    const outboxMax = o.outboxMax ?? DEFAULT_OUTBOX_MAX;
    if (!Number.isInteger(outboxMax) || outboxMax < 1)
      throw err('STORE_INPUT_INVALID', 'outboxMax must be a positive integer');
    const key = loadOrCreateKey(o.dir, o.keyFile);
    const keys = new CacheKeys(key.key);
    const dbPath = join(o.dir, DB_FILE);
    const worker = spawnWriter({ dbPath, keyHex: key.key.toString('hex'), outboxMax });
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
    let reader: Database.Database;
    let rs: ReaderStatements;
    try {
      reader = new Database(dbPath, { readonly: true, fileMustExist: true, timeout: 250 });
      rs = prepareReader(reader);
    } catch (e) {
      await worker.terminate();
      throw toStoreError(e, 'opening the read connection');
    }
    return new GatewayStore(worker, reader, rs, keys, {
      dbPath,
      keyPath: key.path,
      outboxMax,
      alerts: [...key.alerts, ...startup.alerts],
    });
  }

  // ---- eligibility cache ----

  /** Stores an answer; an older `verifiedAt` never replaces a newer one already cached. */
  async putEligibility(lookup: LookupInput, answer: unknown, verifiedAt: Date, source = 'central'): Promise<void> {
    await this.call('putEligibility', this.eligibilityWrite(lookup, answer, verifiedAt, source));
  }

  /** A cache write to commit later with settleOutbox (same checks and meaning as putEligibility). */
  eligibilityWrite(lookup: LookupInput, answer: unknown, verifiedAt: Date, source = 'central'): EligibilityWrite {
    return {
      lookupHex: this.keys.lookupKey(lookup).toString('hex'),
      answerJson: toJson(answer),
      verifiedAt: validDate(verifiedAt, 'verifiedAt'),
      source,
    };
  }

  /** The cached answer if central confirmed it at most `maxAgeMs` ago. Throws STORE_CORRUPT if the row was tampered with. */
  getEligibility(
    lookup: LookupInput,
    maxAgeMs: number,
    now = new Date(),
  ): { answer: unknown; verifiedAt: Date; source: string } | undefined {
    this.assertOpen();
    const lookupKey = this.keys.lookupKey(lookup);
    const row = this.read(() => this.rs.elig.get(lookupKey)) as
      | { answer: Buffer; verified_at: number; source: string }
      | undefined;
    if (!row || now.getTime() - row.verified_at > maxAgeMs) return undefined;
    const answer = this.keys.openJson(
      row.answer,
      AAD.eligibility(lookupKey.toString('hex'), row.verified_at, row.source),
    );
    return { answer, verifiedAt: new Date(row.verified_at), source: row.source };
  }

  // ---- outbox ----

  /**
   * Queues an entry; resolves after its synchronous=FULL commit. The idempotency key must be opaque
   * (it is stored in clear). Enqueueing a key already present returns that entry's id with
   * `duplicate: true` and stores nothing. Refuses with OUTBOX_FULL at `outboxMax` pending + inflight
   * entries (old entries are never dropped), STORE_DISK_FULL when the disk is full.
   */
  async enqueue(
    entry: { idempotencyKey: string; kind: string; payload: unknown },
    now = new Date(),
  ): Promise<{ id: number; depth: number; duplicate: boolean }> {
    if (
      typeof entry.idempotencyKey !== 'string' ||
      entry.idempotencyKey.length === 0 ||
      entry.idempotencyKey.length > 200
    ) {
      throw err('STORE_INPUT_INVALID', 'idempotencyKey must be 1–200 characters');
    }
    if (typeof entry.kind !== 'string' || entry.kind.length === 0)
      throw err('STORE_INPUT_INVALID', 'kind must be a non-empty string');
    return this.call('enqueue', {
      idempotencyKey: entry.idempotencyKey,
      kind: entry.kind,
      payloadJson: toJson(entry.payload),
      now: validDate(now, 'now'),
    });
  }

  /**
   * Up to `limit` pending entries due at `now`, oldest first, marked inflight (attempts + 1). Each
   * must be settled with complete(); inflight entries left by a crash return to pending at open.
   * A payload that fails authentication parks its entry as dead and rejects with STORE_CORRUPT
   * (details.ids); the next call returns the others.
   */
  async nextDue(limit: number, now = new Date()): Promise<OutboxEntry[]> {
    if (!Number.isInteger(limit) || limit < 1) throw err('STORE_INPUT_INVALID', 'limit must be a positive integer');
    return dueEntries(await this.call('nextDue', { limit, now: validDate(now, 'now') }));
  }

  /**
   * complete() of an inflight entry together with the replay's cache writes (`writes`, from
   * eligibilityWrite) in one transaction — the entry is done only if they are durable too — and
   * then nextDue(`next`) (none for 0): a replay's whole bookkeeping in one round trip to the writer.
   * Rejects like complete() (nothing of it stands) or, after the commit, with nextDue's STORE_CORRUPT
   * (details.settled = true).
   */
  async settleOutbox(
    id: number,
    outcome: CompleteOutcome,
    o: { writes?: readonly EligibilityWrite[]; next: number },
    now = new Date(),
  ): Promise<OutboxEntry[]> {
    if (typeof outcome === 'object' && 'retryAt' in outcome) validDate(outcome.retryAt, 'retryAt');
    if (!Number.isInteger(o.next) || o.next < 0)
      throw err('STORE_INPUT_INVALID', 'next must be a non-negative integer');
    const r = await this.call('settleOutbox', {
      id,
      outcome: outcomeToWire(outcome),
      eligibility: [...(o.writes ?? [])],
      next: o.next,
      now: validDate(now, 'now'),
    });
    // A STORE_CORRUPT here comes after the commit: the entry's own outcome stands, only taking the next ones failed.
    return dueEntries(r, { settled: true });
  }

  /** Settles an inflight entry: done, retry later (error = a code, no personal data), or dead (kept and counted). */
  async complete(id: number, outcome: CompleteOutcome, now = new Date()): Promise<void> {
    if (typeof outcome === 'object' && 'retryAt' in outcome) validDate(outcome.retryAt, 'retryAt');
    await this.call('complete', { id, outcome: outcomeToWire(outcome), now: validDate(now, 'now') });
  }

  outboxStats(): OutboxStats {
    this.assertOpen();
    const { depth, oldest } = this.read(() => this.rs.depth.get()) as { depth: number; oldest: number | null };
    const dead = this.read(() => this.rs.dead.get()) as number;
    const stats: OutboxStats = { depth, dead, fillRatio: depth / this.outboxMax };
    if (oldest !== null) stats.oldestAt = new Date(oldest);
    return stats;
  }

  /** Deletes done entries settled before `before` (retention). Pending, inflight and dead are never pruned. */
  async pruneOutbox(before: Date): Promise<number> {
    return (await this.call('pruneOutbox', { before: validDate(before, 'before') })).deleted;
  }

  // ---- reconciliation ----

  async addReconciliation(r: ReconciliationInput, now = new Date()): Promise<{ id: number }> {
    if (!Array.isArray(r.changedFields) || !r.changedFields.every((f) => typeof f === 'string'))
      throw err('STORE_INPUT_INVALID', 'changedFields must be field names');
    return this.call('addReconciliation', {
      outboxId: r.outboxId,
      beforeJson: r.before === undefined ? null : toJson(r.before),
      afterJson: toJson(r.after),
      changedFields: r.changedFields,
      now: validDate(now, 'now'),
    });
  }

  /** Oldest first; by default only the entries not yet handled. */
  listReconciliation(o: { includeHandled?: boolean; limit?: number } = {}): ReconciliationEntry[] {
    this.assertOpen();
    const stmt = o.includeHandled ? this.rs.reconAll : this.rs.reconOpen;
    return (this.read(() => stmt.all(o.limit ?? 1000)) as ReconRow[]).map((row) => this.reconEntry(row));
  }

  /** The item filed for an outbox entry, if any (an indexed read: replays check it every time). */
  reconciliationFor(outboxId: number): ReconciliationEntry | undefined {
    this.assertOpen();
    const row = this.read(() => this.rs.reconByOutbox.get(outboxId)) as ReconRow | undefined;
    return row ? this.reconEntry(row) : undefined;
  }

  /** Entries in the eligibility cache (status and metrics). */
  cacheEntries(): number {
    this.assertOpen();
    return this.read(() => this.rs.eligCount.get()) as number;
  }

  /** Items not yet marked handled. */
  openReconciliationCount(): number {
    this.assertOpen();
    return this.read(() => this.rs.reconOpenCount.get()) as number;
  }

  /** Pending or inflight outbox entries created before `before` (past their time-to-live). */
  overdueCount(before: Date): number {
    this.assertOpen();
    return this.read(() => this.rs.overdue.get(validDate(before, 'before'))) as number;
  }

  private reconEntry(row: ReconRow): ReconciliationEntry {
    const e: ReconciliationEntry = {
      id: row.id,
      outboxId: row.outbox_id,
      before: row.before === null ? undefined : this.keys.openJson(row.before, AAD.reconBefore(row.id)),
      after: this.keys.openJson(row.after, AAD.reconAfter(row.id)),
      changedFields: JSON.parse(row.changed_fields) as string[],
      createdAt: new Date(row.created_at),
    };
    if (row.handled_at !== null) e.handledAt = new Date(row.handled_at);
    return e;
  }

  async markHandled(id: number, now = new Date()): Promise<void> {
    await this.call('markHandled', { id, now: validDate(now, 'now') });
  }

  // ---- time-lag rechecks ----

  /** Schedules a recheck; the same patient's open recheck is returned instead (`duplicate: true`). */
  async addRecheck(r: RecheckInput, now = new Date()): Promise<{ id: number; duplicate: boolean }> {
    if (typeof r.client !== 'string' || r.client.length === 0 || r.client.length > 128)
      throw err('STORE_INPUT_INVALID', 'recheck client must be 1–128 characters');
    if (typeof r.validity !== 'string' || !CODE_RE.test(r.validity))
      throw err('STORE_INPUT_INVALID', 'recheck validity must be a code');
    return this.call('addRecheck', {
      lookupHex: this.keys.lookupKey(r.lookup).toString('hex'),
      client: r.client,
      validity: r.validity,
      until: validDate(r.until, 'until'),
      nextAt: validDate(r.nextAt, 'nextAt'),
      personalJson: toJson(r.personal),
      now: validDate(now, 'now'),
    });
  }

  /** Records one attempt (or the window's end). A recheck already found or expired is left as it is. */
  async updateRecheck(id: number, u: RecheckUpdate, now = new Date()): Promise<void> {
    const validity = u.state === 'expired' ? null : (u.validity ?? null);
    if (validity !== null && !CODE_RE.test(validity))
      throw err('STORE_INPUT_INVALID', 'recheck validity must be a code');
    await this.call('updateRecheck', {
      id,
      attempted: u.state !== 'expired',
      state: u.state,
      validity,
      error: u.state === 'scheduled' && u.error !== undefined ? u.error : null,
      nextAt: u.state === 'scheduled' ? validDate(u.nextAt, 'nextAt') : null,
      foundJson: u.state === 'found' ? toJson(u.found) : null,
      now: validDate(now, 'now'),
    });
  }

  /** Newest first; with `state`, only those (oldest first, for the job). Personal fields decrypted. */
  listRechecks(o: { state?: RecheckState; limit?: number } = {}): RecheckEntry[] {
    this.assertOpen();
    const limit = o.limit ?? 1000;
    const rows = this.read(() =>
      o.state ? this.rs.rechecksByState.all(o.state, limit) : this.rs.rechecksAll.all(limit),
    ) as RecheckRow[];
    return rows.map((row) => this.recheckEntry(row));
  }

  getRecheck(id: number): RecheckEntry | undefined {
    this.assertOpen();
    const row = this.read(() => this.rs.recheckById.get(id)) as RecheckRow | undefined;
    return row ? this.recheckEntry(row) : undefined;
  }

  private recheckEntry(row: RecheckRow): RecheckEntry {
    const e: RecheckEntry = {
      id: row.id,
      client: row.client,
      createdAt: new Date(row.created_at),
      until: new Date(row.until_at),
      attempts: row.attempts,
      state: row.state,
      firstValidity: row.first_validity,
      personal: this.keys.openJson(row.personal, AAD.recheckPersonal(row.id)),
    };
    if (row.next_at !== null) e.nextAt = new Date(row.next_at);
    if (row.last_validity !== null) e.lastValidity = row.last_validity;
    if (row.last_error !== null) e.lastError = row.last_error;
    if (row.found !== null) e.found = this.keys.openJson(row.found, AAD.recheckFound(row.id));
    if (row.settled_at !== null) e.settledAt = new Date(row.settled_at);
    return e;
  }

  // ---- revocation list ----

  /** Replaces the whole list atomically. Serials are hex (any case, `:` separators, leading zeros ignored). */
  async setRevocationList(serials: string[], fetchedAt: Date): Promise<{ count: number }> {
    return this.call('setRevocationList', { serials: [...serials], fetchedAt: validDate(fetchedAt, 'fetchedAt') });
  }

  isRevoked(serial: string): boolean {
    this.assertOpen();
    const k = this.keys.serialKey(serial);
    return this.read(() => this.rs.revoked.get(k)) !== undefined;
  }

  /** Milliseconds since the list was fetched; undefined if it never was. */
  revocationAge(now = new Date()): number | undefined {
    this.assertOpen();
    const v = this.read(() => this.rs.meta.get(META_REVOCATION_FETCHED_AT)) as string | undefined;
    return v === undefined ? undefined : now.getTime() - Number(v);
  }

  // ---- audit log ----

  /**
   * Appends one entry; the worker assigns seq and chains it in commit order. Resolves after the
   * commit. STORE_CORRUPT when the chain head was tampered with (nothing is appended then).
   */
  async appendAudit(entry: AuditInput, now = new Date()): Promise<{ seq: number; hash: string }> {
    return this.call('appendAudit', auditArgs(entry, now));
  }

  /**
   * Entries with after < seq < before, oldest first (`newestFirst` for a log page). Personal fields
   * are decrypted unless `personal: false`.
   */
  listAudit(
    o: { after?: number; before?: number; limit?: number; newestFirst?: boolean; personal?: boolean } = {},
  ): AuditEntry[] {
    this.assertOpen();
    const stmt = o.newestFirst ? this.rs.auditListDesc : this.rs.auditList;
    const rows = this.read(() =>
      stmt.all(o.after ?? 0, o.before ?? Number.MAX_SAFE_INTEGER, o.limit ?? 100),
    ) as AuditRow[];
    return rows.map((r) => {
      const e: AuditEntry = {
        seq: r.seq,
        at: new Date(r.at),
        kind: r.kind as AuditEntry['kind'],
        actor: r.actor,
        action: r.action,
        hash: r.hash.toString('hex'),
      };
      if (r.target !== null) e.target = r.target;
      if (r.remote !== null) e.remote = r.remote;
      if (r.mode !== null) e.mode = r.mode as 'card' | 'numbers';
      if (r.outcome !== null) e.outcome = r.outcome;
      if (r.source !== null) e.source = r.source as 'central' | 'cache';
      if (r.purged_at !== null) e.purgedAt = new Date(r.purged_at);
      if (r.personal !== null && o.personal !== false) e.personal = this.keys.openJson(r.personal, auditAad(r.seq));
      return e;
    });
  }

  /**
   * Walks the whole chain (in chunks, yielding to the event loop) up to the head as it was when the
   * walk started. Never throws for tampering: the result names the first bad seq and why.
   */
  async verifyAudit(): Promise<AuditVerifyResult> {
    this.assertOpen();
    const src: AuditSource = {
      headValue: () => this.read(() => this.rs.audit.headValue()),
      rows: (a, u, l) => this.read(() => this.rs.audit.rows(a, u, l)),
      seqOfHash: (h) => this.read(() => this.rs.audit.seqOfHash(h)),
      lastSeq: () => this.read(() => this.rs.audit.lastSeq()),
    };
    const it = verifyAuditSteps(src, this.keys);
    for (;;) {
      const r = it.next();
      if (r.done) return r.value;
      await yieldToLoop();
      this.assertOpen();
    }
  }

  /**
   * Retention: drops the personal fields of entries written before `before` (the clear fields and
   * the chain stay). Returns how many entries were purged. Checkpoint afterwards so that the old
   * pages leave the WAL too.
   */
  async purgeAuditPersonal(before: Date, now = new Date()): Promise<number> {
    return (await this.call('purgeAuditPersonal', { before: validDate(before, 'before'), now: validDate(now, 'now') }))
      .purged;
  }

  // ---- batch inquiry ----

  /**
   * Adds one part of a batch (the first creates it with `create`); `close` makes it complete and
   * splits it into chunks of `chunkSize`. Resolves after the commit (synchronous=FULL). Refusals:
   * BATCH_EXISTS, BATCH_NOT_FOUND (or another client's), BATCH_NOT_OPEN, BATCH_TOO_LARGE,
   * BATCH_ENTRY_INVALID (a duplicate arbitraryId; details.index is its index in the whole batch).
   * Nothing of a refused part is kept.
   */
  async appendBatch(
    o: {
      batchId: string;
      client: string;
      create?: { confirmationDate: string; run: 'now' | 'scheduled' };
      entries: BatchEntryInput[];
      close?: { chunkSize: number };
      maxEntries: number;
    },
    now = new Date(),
  ): Promise<{ total: number; state: BatchState }> {
    if (o.close && (!Number.isInteger(o.close.chunkSize) || o.close.chunkSize < 1))
      throw err('STORE_INPUT_INVALID', 'chunkSize must be a positive integer');
    const entries = o.entries.map((e) => ({ arbitraryId: e.arbitraryId, queryJson: toJson(e.query) }));
    const r = await this.call('batchAppend', {
      batchId: o.batchId,
      client: o.client,
      entries,
      maxEntries: o.maxEntries,
      now: validDate(now, 'now'),
      ...(o.create ? { create: o.create } : {}),
      ...(o.close ? { close: o.close } : {}),
    });
    return { total: r.total, state: r.state as BatchState };
  }

  async startBatch(batchId: string, now = new Date()): Promise<void> {
    await this.call('batchStart', { batchId, now: validDate(now, 'now') });
  }

  /** Retention: deletes the batches settled before `before`, entries and results included. */
  async pruneBatches(before: Date): Promise<{ batches: number; entries: number }> {
    return this.call('batchPrune', { before: validDate(before, 'before') });
  }

  /** Central took the chunk: from now on a restart fetches it by this number and never submits it again. */
  async batchChunkSubmitted(batchId: string, chunk: number, receptionNumber: string, now = new Date()): Promise<void> {
    await this.call('batchChunkSubmitted', { batchId, chunk, receptionNumber, now: validDate(now, 'now') });
  }

  /** The last failure of a chunk still being worked on (a code, never personal data), for status. */
  async batchChunkError(batchId: string, chunk: number, error: string, now = new Date()): Promise<void> {
    await this.call('batchChunkError', { batchId, chunk, error, now: validDate(now, 'now') });
  }

  /**
   * Stores a chunk's results and settles it in one transaction; entries the results leave out get
   * `unanswered` as their (error) result. A chunk already settled is left as it is. The batch is
   * settled with its last chunk (failed when a chunk failed as a whole).
   */
  async finishBatchChunk(
    o: {
      batchId: string;
      chunk: number;
      chunkState: 'done' | 'failed';
      error?: string;
      results: BatchEntryResultInput[];
      unanswered: unknown;
    },
    now = new Date(),
  ) {
    return this.call('batchChunkFinish', {
      batchId: o.batchId,
      chunk: o.chunk,
      chunkState: o.chunkState,
      ...(o.error !== undefined ? { error: o.error } : {}),
      results: o.results.map((r) => ({ seq: r.seq, state: r.state, isError: r.isError, resultJson: toJson(r.result) })),
      unansweredJson: toJson(o.unanswered),
      now: validDate(now, 'now'),
    });
  }

  getBatch(batchId: string): BatchRecord | undefined {
    this.assertOpen();
    const r = this.read(() => this.rs.batch.get(batchId)) as BatchRow | undefined;
    return r ? batchRecord(r) : undefined;
  }

  /** Batches that should be worked on now: queued to run at once, or running (also after a restart). */
  runnableBatches(): string[] {
    this.assertOpen();
    return this.read(() => this.rs.batchRunnable.all()) as string[];
  }

  /** Complete batches waiting for the batch schedule. */
  scheduledBatches(): string[] {
    this.assertOpen();
    return this.read(() => this.rs.batchScheduled.all()) as string[];
  }

  batchChunks(batchId: string): BatchChunkRecord[] {
    this.assertOpen();
    return (this.read(() => this.rs.batchChunks.all(batchId)) as BatchChunkRow[]).map((r) => {
      const c: BatchChunkRecord = {
        batchId: r.batch_id,
        chunk: r.chunk,
        state: r.state,
        idempotencyKey: r.idempotency_key,
        entries: r.entries,
      };
      if (r.reception_number !== null) c.receptionNumber = r.reception_number;
      if (r.last_error !== null) c.lastError = r.last_error;
      return c;
    });
  }

  /** The queries of one chunk, in order (decrypted). */
  batchChunkQueries(batchId: string, chunk: number): { seq: number; query: unknown }[] {
    this.assertOpen();
    const rows = this.read(() => this.rs.batchChunkEntries.all(batchId, chunk)) as { seq: number; query: Buffer }[];
    return rows.map((r) => ({ seq: r.seq, query: this.keys.openJson(r.query, BATCH_AAD.query(batchId, r.seq)) }));
  }

  /** Entries from `fromSeq` on, in order, with their results once they have one (decrypted). */
  batchEntries(batchId: string, fromSeq: number, limit: number): BatchEntryRecord[] {
    this.assertOpen();
    const rows = this.read(() => this.rs.batchEntries.all(batchId, fromSeq, limit)) as {
      seq: number;
      query: Buffer;
      state: BatchEntryRecord['state'];
      result: Buffer | null;
    }[];
    return rows.map((r) => {
      const query = this.keys.openJson(r.query, BATCH_AAD.query(batchId, r.seq)) as { arbitraryId?: string };
      const e: BatchEntryRecord = { seq: r.seq, arbitraryId: query.arbitraryId ?? '', state: r.state, query };
      if (r.result !== null) e.result = this.keys.openJson(r.result, BATCH_AAD.result(batchId, r.seq));
      return e;
    });
  }

  /** Newest first, in the admin page's shape (a batch still receiving parts shows as queued). */
  listBatches(o: { limit?: number } = {}): BatchListItem[] {
    this.assertOpen();
    return (this.read(() => this.rs.batchList.all(o.limit ?? 200)) as BatchRow[]).map((r) => {
      const item: BatchListItem = {
        id: r.id,
        submittedAt: new Date(r.submitted_at).toISOString(),
        state: r.state === 'open' ? 'queued' : r.state,
        total: r.total,
        done: r.finished,
        errors: r.errors,
        client: r.client,
      };
      if (r.finished_at !== null) item.finishedAt = new Date(r.finished_at).toISOString();
      return item;
    });
  }

  // ---- meta ----

  getMeta(key: string): string | undefined {
    this.assertOpen();
    return this.read(() => this.rs.meta.get(key)) as string | undefined;
  }

  /** Small operational values (never personal data: stored in clear). Keys starting with `store.` are reserved. */
  async setMeta(key: string, value: string): Promise<void> {
    if (!key || key.startsWith(RESERVED_META))
      throw err('STORE_INPUT_INVALID', `meta key "${key}" is empty or reserved`);
    await this.call('setMeta', { key, value: String(value) });
  }

  // ---- lifecycle ----

  /** Lets queued writes finish, checkpoints the WAL into the file, stops the worker. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.reader.close();
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

  private assertOpen(): void {
    if (this.closing) throw err('STORE_CLOSED', 'the store is closed');
    if (this.failure) throw this.failure;
  }

  private read<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      throw toStoreError(e, 'reading');
    }
  }

  private call<K extends OpName>(op: K, args: OpArgs<K>): Promise<OpResult<K>> {
    if (this.closing) return Promise.reject(err('STORE_CLOSED', 'the store is closed'));
    return this.send(op, args);
  }

  private send<K extends OpName>(op: K, args: OpArgs<K>): Promise<OpResult<K>> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<OpResult<K>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      if (this.pending.size === 1) this.worker.ref();
      this.outgoing.push({ type: 'req', id, op, args } as Request);
      if (this.outgoing.length === 1) queueMicrotask(this.flushOutgoing);
    });
  }

  /** Requests made in one go (a replay's settle and its events, a batch's parts) cross to the writer in one message. */
  private outgoing: Request[] = [];
  private readonly flushOutgoing = (): void => {
    const requests = this.outgoing;
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
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
  }
}

/** nextDue's wire answer → entries; corrupt entries (already parked as dead) reject with STORE_CORRUPT (plus `details`). */
function dueEntries(r: OpResult<'nextDue'>, details: Record<string, unknown> = {}): OutboxEntry[] {
  if (r.corruptIds.length > 0) {
    throw err(
      'STORE_CORRUPT',
      `outbox entries ${r.corruptIds.join(', ')} could not be decrypted and were marked dead`,
      { ids: r.corruptIds, ...details },
    );
  }
  return r.entries.map((e) => {
    const out: OutboxEntry = {
      id: e.id,
      idempotencyKey: e.idempotencyKey,
      kind: e.kind,
      payload: JSON.parse(e.payloadJson) as unknown,
      createdAt: new Date(e.createdAt),
      attempts: e.attempts,
    };
    if (e.lastError !== undefined) out.lastError = e.lastError;
    return out;
  });
}

/**
 * Verifies the audit chain of the database in `dir` through a read-only connection, in one read
 * snapshot: safe next to a running daemon (no migration, no inflight reset, no key created).
 * Throws AUDIT_UNAVAILABLE when there is no database or it predates the audit log.
 */
export function verifyAuditFile(o: { dir: string; keyFile?: string }): AuditVerifyResult {
  const dbPath = join(o.dir, DB_FILE);
  if (!existsSync(dbPath)) throw err('AUDIT_UNAVAILABLE', `no gateway database at ${dbPath}`);
  const keys = new CacheKeys(loadOrCreateKey(o.dir, o.keyFile, { create: false }).key);
  let db: Database.Database;
  try {
    db = new Database(dbPath, { readonly: true, fileMustExist: true, timeout: 5000 });
  } catch (e) {
    throw toStoreError(e, 'opening the database read-only');
  }
  try {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version < 3)
      throw err(
        'AUDIT_UNAVAILABLE',
        `the database is at schema ${version}; the audit log starts at 3 (start the gateway once)`,
      );
    const check = db.prepare(`SELECT value FROM meta WHERE key = 'store.key_check'`).pluck().get() as
      | string
      | undefined;
    if (check === undefined) throw err('AUDIT_UNAVAILABLE', 'the database has no key check value');
    try {
      keys.open(Buffer.from(check, 'base64'), AAD.keyCheck);
    } catch {
      throw err('STORE_KEY_INVALID', 'the cache key does not match this database');
    }
    return db.transaction(() => verifyAuditSync(auditSource(db), keys))();
  } catch (e) {
    throw toStoreError(e, 'verifying the audit log');
  } finally {
    db.close();
  }
}
