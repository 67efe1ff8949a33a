/**
 * GatewayStore: the gateway's durable state (eligibility cache, outbox, reconciliation, rechecks,
 * batches, audit log, revocation list, meta, authentication failures) in one SQLite file in WAL mode, one facade per area.
 *
 * Use the facades: `store.outbox.enqueue(…)`, `store.eligibility.get(…)`, `store.audit.append(…)`.
 * The flat methods (`store.enqueue(…)`) are thin delegations kept for the callers written before
 * the split; new code should not add to them.
 *
 * Threads: every write goes to the writer worker (writer-worker.ts, through writer-channel.ts),
 * which owns the only write connection. Reads that the counter waits on (cache lookups, revocation
 * checks, stats) run on a read-only connection on the main thread: WAL lets it read the last
 * committed snapshot while the worker writes, and these are indexed point reads (tens of
 * microseconds, served from the page cache), far cheaper than a round trip to the worker. Because
 * a write's promise resolves only after its commit, a read issued after an awaited write always
 * sees it.
 *
 * Durability: one database file with synchronous=FULL on the writer connection. The outbox must be
 * FULL; the cache could live with NORMAL, but a second file would mean a second key check, a
 * second corruption path and no atomic "cache + outbox" transaction later, while the cost of FULL
 * for the cache (one extra WAL fsync per put) is paid in the worker, off the event loop, and is
 * shared by group commit.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CacheKeys, loadOrCreateKey } from '../crypto.js';
import type { OpArgs, OpName } from '../protocol.js';
import { toStoreError } from '../sqlite-errors.js';
import type { CacheOptions, CallOptions, StoreAlert } from '../types.js';
import { AuditLog } from './audit-log.js';
import { AuthFailureStore } from './auth-failures.js';
import { BatchStore } from './batches.js';
import { EligibilityStore } from './eligibility.js';
import { DB_FILE, err, type StoreContext } from './inputs.js';
import { HistoryStore } from './history.js';
import { MetaStore, RevocationStore } from './meta.js';
import { OutboxStore } from './outbox.js';
import { RecheckStore } from './rechecks.js';
import { ReconciliationStore } from './reconciliation.js';
import { WriterChannel } from './writer-channel.js';

const DEFAULT_OUTBOX_MAX = 10_000;

export class GatewayStore {
  /** What happened at open: a corrupt file moved aside, a key created, inflight entries reset… */
  readonly startupAlerts: readonly StoreAlert[];
  readonly dbPath: string;
  readonly keyPath: string;
  readonly outboxMax: number;

  readonly eligibility: EligibilityStore;
  readonly outbox: OutboxStore;
  readonly reconciliation: ReconciliationStore;
  readonly rechecks: RecheckStore;
  readonly batches: BatchStore;
  readonly audit: AuditLog;
  readonly revocation: RevocationStore;
  readonly meta: MetaStore;
  readonly authFailures: AuthFailureStore;
  /** the admin page's graphs (5-minute rows) */
  readonly history: HistoryStore;

  private constructor(
    private readonly channel: WriterChannel,
    private readonly reader: Database.Database,
    keys: CacheKeys,
    init: { dbPath: string; keyPath: string; outboxMax: number; alerts: StoreAlert[] },
  ) {
    this.dbPath = init.dbPath;
    this.keyPath = init.keyPath;
    this.outboxMax = init.outboxMax;
    this.startupAlerts = Object.freeze(init.alerts);
    const ctx: StoreContext = {
      reader,
      keys,
      assertOpen: () => channel.assertOpen(),
      call: <K extends OpName>(op: K, args: OpArgs<K>, opts?: CallOptions) => channel.call(op, args, opts),
    };
    this.eligibility = new EligibilityStore(ctx);
    this.outbox = new OutboxStore(ctx, init.outboxMax);
    this.reconciliation = new ReconciliationStore(ctx);
    this.rechecks = new RecheckStore(ctx);
    this.batches = new BatchStore(ctx);
    this.audit = new AuditLog(ctx);
    this.revocation = new RevocationStore(ctx);
    this.meta = new MetaStore(ctx);
    this.authFailures = new AuthFailureStore(ctx);
    this.history = new HistoryStore(ctx);
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
    const { channel, alerts } = await WriterChannel.start({ dbPath, keyHex: key.key.toString('hex'), outboxMax });
    const init = { dbPath, keyPath: key.path, outboxMax, alerts: [...key.alerts, ...alerts] };
    let reader: Database.Database | undefined;
    try {
      reader = new Database(dbPath, { readonly: true, fileMustExist: true, timeout: 250 });
      return new GatewayStore(channel, reader, keys, init); // the facades prepare their reads here
    } catch (e) {
      reader?.close();
      await channel.terminate();
      throw toStoreError(e, 'opening the read connection');
    }
  }

  /** Lets queued writes finish, checkpoints the WAL into the file, stops the worker. Idempotent. */
  close(): Promise<void> {
    return this.channel.close(() => this.reader.close());
  }

  // ---- flat names, kept for existing callers: each delegates to its area's facade ----

  putEligibility(...a: Parameters<EligibilityStore['put']>) {
    return this.eligibility.put(...a);
  }
  eligibilityWrite(...a: Parameters<EligibilityStore['write']>) {
    return this.eligibility.write(...a);
  }
  getEligibility(...a: Parameters<EligibilityStore['get']>) {
    return this.eligibility.get(...a);
  }
  cacheEntries() {
    return this.eligibility.count();
  }

  enqueue(...a: Parameters<OutboxStore['enqueue']>) {
    return this.outbox.enqueue(...a);
  }
  nextDue(...a: Parameters<OutboxStore['nextDue']>) {
    return this.outbox.nextDue(...a);
  }
  settleOutbox(...a: Parameters<OutboxStore['settle']>) {
    return this.outbox.settle(...a);
  }
  complete(...a: Parameters<OutboxStore['complete']>) {
    return this.outbox.complete(...a);
  }
  outboxStats() {
    return this.outbox.stats();
  }
  overdueCount(before: Date) {
    return this.outbox.overdueCount(before);
  }
  pruneOutbox(before: Date) {
    return this.outbox.prune(before);
  }

  addReconciliation(...a: Parameters<ReconciliationStore['add']>) {
    return this.reconciliation.add(...a);
  }
  listReconciliation(...a: Parameters<ReconciliationStore['list']>) {
    return this.reconciliation.list(...a);
  }
  reconciliationFor(outboxId: number) {
    return this.reconciliation.forOutbox(outboxId);
  }
  openReconciliationCount() {
    return this.reconciliation.openCount();
  }
  markHandled(...a: Parameters<ReconciliationStore['markHandled']>) {
    return this.reconciliation.markHandled(...a);
  }

  addRecheck(...a: Parameters<RecheckStore['add']>) {
    return this.rechecks.add(...a);
  }
  updateRecheck(...a: Parameters<RecheckStore['update']>) {
    return this.rechecks.update(...a);
  }
  listRechecks(...a: Parameters<RecheckStore['list']>) {
    return this.rechecks.list(...a);
  }
  getRecheck(id: number) {
    return this.rechecks.get(id);
  }

  setRevocationList(...a: Parameters<RevocationStore['set']>) {
    return this.revocation.set(...a);
  }
  revocationListInfo() {
    return this.revocation.info();
  }
  isRevoked(serial: string) {
    return this.revocation.isRevoked(serial);
  }
  revocationAge(...a: Parameters<RevocationStore['age']>) {
    return this.revocation.age(...a);
  }

  appendAudit(...a: Parameters<AuditLog['append']>) {
    return this.audit.append(...a);
  }
  listAudit(...a: Parameters<AuditLog['list']>) {
    return this.audit.list(...a);
  }
  verifyAudit() {
    return this.audit.verify();
  }
  purgeAuditPersonal(...a: Parameters<AuditLog['purgePersonal']>) {
    return this.audit.purgePersonal(...a);
  }

  appendBatch(...a: Parameters<BatchStore['append']>) {
    return this.batches.append(...a);
  }
  startBatch(...a: Parameters<BatchStore['start']>) {
    return this.batches.start(...a);
  }
  pruneBatches(before: Date) {
    return this.batches.prune(before);
  }
  batchChunkSubmitted(...a: Parameters<BatchStore['chunkSubmitted']>) {
    return this.batches.chunkSubmitted(...a);
  }
  batchChunkError(...a: Parameters<BatchStore['chunkError']>) {
    return this.batches.chunkError(...a);
  }
  finishBatchChunk(...a: Parameters<BatchStore['finishChunk']>) {
    return this.batches.finishChunk(...a);
  }
  getBatch(batchId: string) {
    return this.batches.get(batchId);
  }
  runnableBatches() {
    return this.batches.runnable();
  }
  scheduledBatches() {
    return this.batches.scheduled();
  }
  batchChunks(batchId: string) {
    return this.batches.chunks(batchId);
  }
  batchChunkQueries(batchId: string, chunk: number) {
    return this.batches.chunkQueries(batchId, chunk);
  }
  batchEntries(batchId: string, fromSeq: number, limit: number) {
    return this.batches.entries(batchId, fromSeq, limit);
  }
  listBatches(...a: Parameters<BatchStore['list']>) {
    return this.batches.list(...a);
  }

  getMeta(key: string) {
    return this.meta.get(key);
  }
  setMeta(key: string, value: string) {
    return this.meta.set(key, value);
  }
}
