/**
 * Versioned, forward-only migrations. `PRAGMA user_version` is the schema version; the
 * `schema_migrations` table records when each step ran (for support). Each step runs in its own
 * transaction together with the version bump, so a crash leaves the database at a whole version.
 * Never edit a released step: add a new one.
 */
import type Database from 'better-sqlite3';
import { OnshiError } from '../core/errors.js';
import type { StoreErrorCode } from './types.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'meta, eligibility cache, outbox',
    sql: `
      CREATE TABLE schema_migrations (
        version    INTEGER PRIMARY KEY,
        name       TEXT NOT NULL,
        applied_at INTEGER NOT NULL
      );
      CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) WITHOUT ROWID;
      -- lookup = HMAC(normalized identifiers); answer = AES-GCM(JSON), AAD binds lookup, verified_at, source
      CREATE TABLE eligibility (
        lookup      BLOB PRIMARY KEY,
        answer      BLOB NOT NULL,
        verified_at INTEGER NOT NULL,
        source      TEXT NOT NULL,
        stored_at   INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        idempotency_key TEXT NOT NULL UNIQUE,
        kind            TEXT NOT NULL,
        payload         BLOB NOT NULL,
        created_at      INTEGER NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('pending', 'inflight', 'done', 'dead')),
        last_error      TEXT,
        updated_at      INTEGER NOT NULL
      );
      CREATE INDEX outbox_due ON outbox (state, next_attempt_at, id);
    `,
  },
  {
    version: 2,
    name: 'reconciliation, revocation list',
    sql: `
      CREATE TABLE reconciliation (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        outbox_id      INTEGER NOT NULL,
        before         BLOB,
        after          BLOB NOT NULL,
        changed_fields TEXT NOT NULL,
        created_at     INTEGER NOT NULL,
        handled_at     INTEGER
      );
      CREATE INDEX reconciliation_open ON reconciliation (handled_at, id);
      -- serial = HMAC(normalized serial); the list's fetched_at lives in meta
      CREATE TABLE revoked_serials (
        serial BLOB PRIMARY KEY
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 3,
    name: 'hash-chained audit log',
    sql: `
      -- hash = HMAC(prev, clear fields, personal_digest); personal = AES-GCM(JSON), NULL once purged;
      -- personal_digest = SHA-256(personal blob) stays, so a purged entry still verifies.
      -- The authenticated chain head (last seq and hash) lives in meta.store.audit_head.
      CREATE TABLE audit (
        seq             INTEGER PRIMARY KEY,
        at              INTEGER NOT NULL,
        kind            TEXT NOT NULL CHECK (kind IN ('check', 'admin', 'token')),
        actor           TEXT NOT NULL,
        action          TEXT NOT NULL,
        target          TEXT,
        remote          TEXT,
        mode            TEXT,
        outcome         TEXT,
        source          TEXT,
        personal        BLOB,
        personal_digest BLOB,
        purged_at       INTEGER,
        prev            BLOB NOT NULL,
        hash            BLOB NOT NULL
      );
      CREATE INDEX audit_retention ON audit (at) WHERE personal IS NOT NULL;
    `,
  },
  {
    version: 4,
    name: 'reconciliation by outbox entry, overdue outbox entries',
    sql: `
      -- a replay repeated after a crash finds the item it already filed
      CREATE INDEX reconciliation_outbox ON reconciliation (outbox_id);
      CREATE INDEX outbox_open_age ON outbox (created_at) WHERE state IN ('pending', 'inflight');
    `,
  },
  {
    version: 5,
    name: 'batch inquiry (batches, chunks, entries)',
    sql: `
      -- state: open (parts still arriving) → queued → running → done | failed
      CREATE TABLE batches (
        id                TEXT PRIMARY KEY,
        client            TEXT NOT NULL,
        confirmation_date TEXT NOT NULL,
        run               TEXT NOT NULL CHECK (run IN ('now', 'scheduled')),
        state             TEXT NOT NULL CHECK (state IN ('open', 'queued', 'running', 'done', 'failed')),
        total             INTEGER NOT NULL DEFAULT 0,
        finished          INTEGER NOT NULL DEFAULT 0, -- entries holding their one result
        errors            INTEGER NOT NULL DEFAULT 0, -- of which errors (per-person or the gateway's)
        chunks            INTEGER NOT NULL DEFAULT 0,
        submitted_at      INTEGER NOT NULL,
        started_at        INTEGER,
        finished_at       INTEGER
      ) WITHOUT ROWID;
      CREATE INDEX batches_state ON batches (state, submitted_at);
      -- one OQSmuquc01req each; reception_number is kept as soon as central gave it, so a restart
      -- fetches instead of submitting again
      CREATE TABLE batch_chunks (
        batch_id         TEXT NOT NULL,
        chunk            INTEGER NOT NULL,
        state            TEXT NOT NULL CHECK (state IN ('pending', 'submitted', 'done', 'failed')),
        idempotency_key  TEXT NOT NULL,
        reception_number TEXT,
        entries          INTEGER NOT NULL,
        last_error       TEXT,
        updated_at       INTEGER NOT NULL,
        PRIMARY KEY (batch_id, chunk)
      ) WITHOUT ROWID;
      -- id_key = HMAC(arbitraryId); query, result = AES-GCM(JSON), AAD binds batch and seq
      CREATE TABLE batch_entries (
        batch_id TEXT NOT NULL,
        seq      INTEGER NOT NULL,
        chunk    INTEGER,
        id_key   BLOB NOT NULL,
        query    BLOB NOT NULL,
        state    TEXT NOT NULL CHECK (state IN ('pending', 'answered', 'error')),
        result   BLOB,
        PRIMARY KEY (batch_id, seq)
      ) WITHOUT ROWID;
      CREATE UNIQUE INDEX batch_entries_id ON batch_entries (batch_id, id_key);
      CREATE INDEX batch_entries_chunk ON batch_entries (batch_id, chunk, seq);
    `,
  },
  {
    version: 6,
    name: 'outbox depth kept by triggers',
    sql: `
      -- Every enqueue checks the depth against outboxMax and every status shows it: a COUNT over the
      -- open entries grew with the queue (3 ms at 10 000 entries, 23 ms at 100 000, per enqueue).
      -- The triggers keep it in the same transaction as the change, so it cannot drift.
      CREATE TABLE outbox_depth (one INTEGER PRIMARY KEY CHECK (one = 1), depth INTEGER NOT NULL);
      INSERT INTO outbox_depth (one, depth) SELECT 1, COUNT(*) FROM outbox WHERE state IN ('pending', 'inflight');
      CREATE TRIGGER outbox_depth_insert AFTER INSERT ON outbox WHEN NEW.state IN ('pending', 'inflight')
        BEGIN UPDATE outbox_depth SET depth = depth + 1; END;
      CREATE TRIGGER outbox_depth_delete AFTER DELETE ON outbox WHEN OLD.state IN ('pending', 'inflight')
        BEGIN UPDATE outbox_depth SET depth = depth - 1; END;
      CREATE TRIGGER outbox_depth_update AFTER UPDATE OF state ON outbox
        WHEN (OLD.state IN ('pending', 'inflight')) <> (NEW.state IN ('pending', 'inflight'))
        BEGIN UPDATE outbox_depth SET depth = depth + (CASE WHEN NEW.state IN ('pending', 'inflight') THEN 1 ELSE -1 END); END;
    `,
  },
  {
    version: 7,
    name: 'time-lag rechecks',
    sql: `
      -- lookup = HMAC(normalized identifiers) of the patient, so one patient has one open recheck;
      -- personal = AES-GCM(JSON: the request to repeat, the client's patient reference, inquiry id);
      -- found = AES-GCM(JSON: the answer in which the new eligibility appeared). Validities are codes.
      CREATE TABLE rechecks (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        lookup         BLOB NOT NULL,
        client         TEXT NOT NULL,
        created_at     INTEGER NOT NULL,
        until_at       INTEGER NOT NULL,
        next_at        INTEGER,
        attempts       INTEGER NOT NULL DEFAULT 0,
        state          TEXT NOT NULL CHECK (state IN ('scheduled', 'found', 'expired')),
        first_validity TEXT NOT NULL,
        last_validity  TEXT,
        last_error     TEXT,
        personal       BLOB NOT NULL,
        found          BLOB,
        settled_at     INTEGER,
        updated_at     INTEGER NOT NULL
      );
      CREATE INDEX rechecks_state ON rechecks (state, id);
      CREATE INDEX rechecks_lookup ON rechecks (lookup) WHERE state = 'scheduled';
    `,
  },
  {
    version: 8,
    name: 'eligibility cache size kept by triggers',
    sql: `
      -- Every status (the admin page's live view each second, each /metrics scrape) shows the cache's
      -- size: a COUNT(*) over the cache on the event loop grew with it. Kept as the outbox depth is (v6).
      CREATE TABLE eligibility_count (one INTEGER PRIMARY KEY CHECK (one = 1), entries INTEGER NOT NULL);
      INSERT INTO eligibility_count (one, entries) SELECT 1, COUNT(*) FROM eligibility;
      CREATE TRIGGER eligibility_count_insert AFTER INSERT ON eligibility BEGIN UPDATE eligibility_count SET entries = entries + 1; END;
      CREATE TRIGGER eligibility_count_delete AFTER DELETE ON eligibility BEGIN UPDATE eligibility_count SET entries = entries - 1; END;
    `,
  },
  {
    version: 9,
    name: 'authentication failures per source address',
    sql: `
      -- The WebSocket API's brute-force counts (api/rate-limit.ts), kept so a restart does not clear
      -- a lockout. source = the address key (an IPv4 address or an IPv6 /64), not personal data.
      CREATE TABLE auth_failures (
        source       TEXT PRIMARY KEY,
        window_start INTEGER NOT NULL,
        failures     INTEGER NOT NULL,
        locked_until INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX auth_failures_expiry ON auth_failures (expires_at);
    `,
  },
  {
    version: 10,
    name: 'history for the admin page graphs',
    sql: `
      -- One row per 5 minutes: checks by source (from the audit chain), the outbox depth. No personal data.
      CREATE TABLE history (
        at      INTEGER PRIMARY KEY,
        central INTEGER NOT NULL,
        cache   INTEGER NOT NULL,
        none    INTEGER NOT NULL,
        outbox  INTEGER NOT NULL
      );
      CREATE INDEX audit_at ON audit (at);
    `,
  },
  {
    version: 11,
    name: "central's answer times in the history",
    sql: `
      -- Per 5 minutes: how long central took to answer (checks and re-verifications), as counts per
      -- fixed bucket (JSON array, bounds in store/history.ts); NULL when central answered nothing.
      ALTER TABLE history ADD COLUMN latency TEXT;
    `,
  },
  {
    version: 12,
    name: 'checks by method, マイナ保険証 use per day and month',
    sql: `
      -- Per 5 minutes: checks by method (card with PIN, card with visual check, numbers), counted
      -- from the audit chain's mode; NULL in rows sampled before the method was recorded.
      ALTER TABLE history ADD COLUMN card_pin INTEGER;
      ALTER TABLE history ADD COLUMN card_visual INTEGER;
      ALTER TABLE history ADD COLUMN numbers INTEGER;
      -- Successful checks (answered by central or the cache) per JST day and method, and the day's
      -- distinct patients (all, and those checked by card at least once that day). No personal data; kept.
      CREATE TABLE usage_days (
        day           TEXT PRIMARY KEY, -- YYYY-MM-DD in JST
        card_pin      INTEGER NOT NULL DEFAULT 0,
        card_visual   INTEGER NOT NULL DEFAULT 0,
        numbers       INTEGER NOT NULL DEFAULT 0,
        patients      INTEGER NOT NULL DEFAULT 0,
        card_patients INTEGER NOT NULL DEFAULT 0
      ) WITHOUT ROWID;
      -- patient = HMAC(key, ['usage', month, insurer, symbol, number, branch, birthdate]): the month
      -- is in the hash, so one patient's months cannot be linked. Pruned after the retention months
      -- (store/usage.ts); each month's distinct counts are kept in usage_months first.
      CREATE TABLE usage_patients (
        day     TEXT NOT NULL,
        patient BLOB NOT NULL,
        card    INTEGER NOT NULL CHECK (card IN (0, 1)),
        PRIMARY KEY (day, patient)
      ) WITHOUT ROWID;
      CREATE TABLE usage_months (
        month         TEXT PRIMARY KEY, -- YYYY-MM in JST
        patients      INTEGER NOT NULL,
        card_patients INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
  },
];

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Brings `db` to `target` (default: latest). Returns the versions applied. */
export function migrate(db: Database.Database, target = LATEST_VERSION, now = Date.now()): number[] {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > LATEST_VERSION) {
    throw new OnshiError<StoreErrorCode>(
      'STORE_SCHEMA_NEWER',
      `the database is at schema ${current}, newer than this build knows (${LATEST_VERSION}); refusing to downgrade`,
      {
        details: { current, latest: LATEST_VERSION },
      },
    );
  }
  const applied: number[] = [];
  for (const m of MIGRATIONS) {
    if (m.version <= current || m.version > target) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        m.version,
        m.name,
        now,
      );
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
    applied.push(m.version);
  }
  return applied;
}
