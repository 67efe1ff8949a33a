/**
 * Public types of the gateway store (src/cache). Everything here is JSON-able; times are Dates at
 * the API and integer milliseconds since the epoch in the database.
 */

export interface CacheOptions {
  /** State directory: holds the database (`gateway.db`, `-wal`, `-shm`) and, by default, `cache.key`. */
  dir: string;
  /**
   * The 32-byte master key file. Default: `$CREDENTIALS_DIRECTORY/cache.key` when that file exists
   * (systemd `LoadCredential=`), else `<dir>/cache.key`, created 0600 on first start.
   */
  keyFile?: string;
  /** Refuse enqueue (OUTBOX_FULL) at this many pending + inflight entries. Default 10 000. */
  outboxMax?: number;
}

/** What the caller knows about a patient; normalized and hashed into the lookup key. */
export type LookupInput =
  | { kind: 'numbers'; insurerNumber: string; symbol?: string; number: string; branch?: string; birthdate: string }
  | { kind: 'card'; certSerial: string; issuer: string };

export type OutboxState = 'pending' | 'inflight' | 'done' | 'dead';

export interface OutboxEntry {
  id: number;
  idempotencyKey: string;
  kind: string;
  payload: unknown;
  createdAt: Date;
  /** Attempts started so far, including the one this entry was just handed out for. */
  attempts: number;
  lastError?: string;
}

export type CompleteOutcome = 'done' | { retryAt: Date; error: string } | { dead: string };

export interface OutboxStats {
  /** pending + inflight */
  depth: number;
  /** created_at of the oldest pending/inflight entry */
  oldestAt?: Date;
  /** dead entries kept for staff (not counted in depth) */
  dead: number;
  /** depth / outboxMax */
  fillRatio: number;
}

export interface ReconciliationInput {
  outboxId: number;
  /** What the counter was told (e.g. the cached answer); undefined when nothing was known. */
  before: unknown;
  /** What central answered on replay. */
  after: unknown;
  /** Names of the fields that differ (names only: stored in clear, never values). */
  changedFields: string[];
}

export interface ReconciliationEntry {
  id: number;
  outboxId: number;
  before: unknown;
  after: unknown;
  changedFields: string[];
  createdAt: Date;
  handledAt?: Date;
}

/** Something that happened at open that staff should see (corrupt file moved aside, loose key file mode…). */
export interface StoreAlert {
  code: string;
  message: string;
  details?: Record<string, string | number | boolean>;
}

export type StoreErrorCode =
  | 'STORE_DISK_FULL'
  | 'STORE_CORRUPT'
  | 'STORE_IO'
  | 'STORE_CLOSED'
  | 'STORE_KEY_INVALID'
  | 'STORE_SCHEMA_NEWER'
  | 'STORE_WORKER_FAILED'
  | 'STORE_INPUT_INVALID'
  | 'OUTBOX_FULL'
  | 'OUTBOX_NOT_FOUND'
  | 'OUTBOX_NOT_INFLIGHT'
  | 'RECONCILIATION_NOT_FOUND';
