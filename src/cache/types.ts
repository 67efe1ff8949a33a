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

/**
 * How an inflight entry settles. `unsent`: it was taken but never sent to central (the relay
 * stopped, or the retry budget said wait), so its attempt is given back and its last error kept.
 */
export type CompleteOutcome = 'done' | { retryAt: Date; error: string; unsent?: true } | { dead: string };

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

export type RecheckState = 'scheduled' | 'found' | 'expired';

/** A time-lag recheck to schedule: the patient's keyed lookup, the request to repeat, the window. */
export interface RecheckInput {
  lookup: LookupInput;
  /** the receipt computer that asked (a client id: stored in clear) */
  client: string;
  /** 資格有効性 of the answer that started it (a code: stored in clear) */
  validity: string;
  until: Date;
  nextAt: Date;
  /** sealed: the request to repeat, the client's patient reference, the inquiry id… */
  personal: unknown;
}

export interface RecheckEntry {
  id: number;
  client: string;
  createdAt: Date;
  until: Date;
  nextAt?: Date;
  attempts: number;
  state: RecheckState;
  firstValidity: string;
  lastValidity?: string;
  lastError?: string;
  personal: unknown;
  /** the answer in which the new eligibility appeared (state found) */
  found?: unknown;
  settledAt?: Date;
}

/** The outcome of one recheck attempt. */
export type RecheckUpdate =
  | { state: 'scheduled'; validity?: string; error?: string; nextAt: Date }
  | { state: 'found'; validity: string; found: unknown }
  | { state: 'expired' };

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
  | 'RECONCILIATION_NOT_FOUND'
  | 'AUDIT_UNAVAILABLE'
  | 'RECHECK_NOT_FOUND'
  | 'BATCH_EXISTS'
  | 'BATCH_NOT_FOUND'
  | 'BATCH_NOT_OPEN'
  | 'BATCH_TOO_LARGE'
  | 'BATCH_ENTRY_INVALID';

// ---- audit log ----

export type AuditKind = 'check' | 'admin' | 'token';

export const AUDIT_MODES = ['card', 'card-visual', 'numbers'] as const;
export type AuditMode = (typeof AUDIT_MODES)[number];

/**
 * One audit entry as the caller gives it. Everything but `personal` is stored in clear and kept
 * forever (it must never hold patient data); `personal` is sealed like the rest of the store and
 * purged by retention, while the chain stays verifiable.
 */
export interface AuditInput {
  kind: AuditKind;
  /** Who: the client id for checks and token use, the admin user name, or `cli`/`system`. */
  actor: string;
  /** What, as a short code: `inquiry.card`, `login`, `login.failed`, `token.add`, `token.revoke`… */
  action: string;
  /** What the action was on, when not personal: a client id or name, a setting key… */
  target?: string;
  /** The source address of the request (LAN address of a receipt computer or an admin browser). */
  remote?: string;
  /**
   * How a check was made: `card` = card with PIN, `card-visual` = card with visual check
   * (資格確認限定型), `numbers` = by numbers. Entries written before `card-visual` existed say `card`
   * for either card method.
   */
  mode?: AuditMode;
  /** A short code: `ok`, `valid`, an error code such as `CENTRAL_TIMEOUT`… never free text. */
  outcome?: string;
  source?: 'central' | 'cache';
  /** Anything that identifies the patient (request id, names, numbers, certificate serial…). */
  personal?: unknown;
}

export interface AuditEntry extends Omit<AuditInput, 'personal'> {
  seq: number;
  at: Date;
  /** The decrypted personal fields; undefined when there were none, they were purged, or not asked for. */
  personal?: unknown;
  /** When retention removed the personal fields. */
  purgedAt?: Date;
  /** This entry's chain hash (hex). */
  hash: string;
}

export type AuditFailure = 'changed' | 'removed' | 'reordered';

export type AuditVerifyResult =
  | { ok: true; entries: number; head: { seq: number; hash: string } }
  | { ok: false; entries: number; seq: number; reason: AuditFailure; message: string };

// ---- batch inquiry ----

/** open: parts still arriving; queued: complete, waiting for its run; running; done; failed (a chunk failed as a whole). */
export type BatchState = 'open' | 'queued' | 'running' | 'done' | 'failed';

export interface BatchRecord {
  id: string;
  /** the client id that submitted it: only that client sees it over the API */
  client: string;
  confirmationDate: string;
  run: 'now' | 'scheduled';
  state: BatchState;
  total: number;
  /** entries holding their one result (central's answer or the gateway's typed error) */
  finished: number;
  /** of which errors (a per-person error from central, or the gateway's typed error) */
  errors: number;
  chunks: number;
  submittedAt: Date;
  startedAt?: Date;
  finishedAt?: Date;
}

export type BatchChunkState = 'pending' | 'submitted' | 'done' | 'failed';

export interface BatchChunkRecord {
  batchId: string;
  chunk: number;
  state: BatchChunkState;
  /** the same key for every submit of this chunk: central replays its receipt instead of starting a second batch */
  idempotencyKey: string;
  receptionNumber?: string;
  entries: number;
  lastError?: string;
}

export interface BatchEntryInput {
  arbitraryId: string;
  query: unknown;
}

export interface BatchEntryResultInput {
  seq: number;
  /** answered: central's answer for this entry; error: a typed error (its code counts the entry in `errors`) */
  state: 'answered' | 'error';
  /** counted in `errors` even when answered (a per-person error from central) */
  isError: boolean;
  result: unknown;
}

export interface BatchEntryRecord {
  seq: number;
  arbitraryId: string;
  state: 'pending' | 'answered' | 'error';
  query: unknown;
  result?: unknown;
}

/** How a write goes to the writer thread. */
export interface CallOptions {
  /**
   * The caller does not wait for this write's commit (nothing was promised on it): it may wait up
   * to DEFER_MS (store/writer-channel.ts) to share a commit with others. Never for an outbox entry
   * or anything acknowledged.
   */
  defer?: boolean;
}
