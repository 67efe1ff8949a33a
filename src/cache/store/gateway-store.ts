/**
 * GatewayStore: the gateway's durable state (eligibility cache, outbox, reconciliation, rechecks,
 * batches, audit log, revocation list, meta, authentication failures, history, use counts) in one SQLite file in WAL mode, one facade per area.
 *
 * Callers use the facades: `store.outbox.enqueue(…)`, `store.eligibility.get(…)`, `store.audit.append(…)`;
 * a part that needs one area takes that facade (the relay takes `store.outbox`, the revocation
 * refresh `store.revocation`).
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
import { UsageStore } from './usage.js';
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
  /** マイナ保険証 use per day and month (the admin page's usage page) */
  readonly usage: UsageStore;

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
    this.usage = new UsageStore(ctx);
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
}
