/**
 * The hash-chained audit log (table `audit`, migration v3).
 *
 * Each entry's hash is an HMAC (key derived from the cache key, so holding only the database file
 * is not enough to re-chain it) over the previous entry's hash, the clear fields and the SHA-256 of
 * the sealed personal blob. Retention may later set the blob to NULL: the digest stays, so a purged
 * entry still verifies. The sequence number is not in the HMAC: the position of an entry is fixed
 * by the `prev` link, which is what lets verify tell a reordered entry from a changed one.
 *
 * A chain verifies from the genesis (32 zero bytes) forward, so deleting the last entries would
 * leave a valid chain; `meta.store.audit_head` therefore holds the last seq and hash under their
 * own HMAC, written in the same transaction as each entry. New entries chain from that head, never
 * from whatever row happens to be last, so a truncated tail stays visible after the next append.
 */
import type Database from 'better-sqlite3';
import { createHash, timingSafeEqual } from 'node:crypto';
import { OnshiError } from '../core/errors.js';
import type { Aad, CacheKeys } from './crypto.js';
import type { AuditFailure, AuditKind, AuditVerifyResult, StoreErrorCode } from './types.js';

export const META_AUDIT_HEAD = 'store.audit_head';
export const AUDIT_GENESIS: Readonly<Buffer> = Buffer.alloc(32);
const DOMAIN = 'onshi-audit/v1';

export const AUDIT_KINDS: readonly AuditKind[] = ['check', 'admin', 'token'];

export const auditAad = (seq: number): Aad => ({ table: 'audit', purpose: 'personal', row: String(seq) });

/** The clear fields, as stored (null for absent optional ones). */
export interface AuditFields {
  at: number;
  kind: string;
  actor: string;
  action: string;
  target: string | null;
  remote: string | null;
  mode: string | null;
  outcome: string | null;
  source: string | null;
}

export interface AuditRow extends AuditFields {
  seq: number;
  personal: Buffer | null;
  personal_digest: Buffer | null;
  purged_at: number | null;
  prev: Buffer;
  hash: Buffer;
}

export const AUDIT_COLUMNS =
  'seq, at, kind, actor, action, target, remote, mode, outcome, source, personal, personal_digest, purged_at, prev, hash';

export function entryMac(keys: CacheKeys, prev: Uint8Array, f: AuditFields, digest: Uint8Array | null): Buffer {
  // A JSON array: unambiguous field boundaries, whatever the strings hold.
  return keys.auditMac(
    JSON.stringify([
      DOMAIN,
      Buffer.from(prev).toString('hex'),
      f.at,
      f.kind,
      f.actor,
      f.action,
      f.target,
      f.remote,
      f.mode,
      f.outcome,
      f.source,
      digest === null ? null : Buffer.from(digest).toString('hex'),
    ]),
  );
}

export const personalDigest = (blob: Uint8Array): Buffer => createHash('sha256').update(blob).digest();

export interface AuditHead {
  seq: number;
  hash: Buffer;
}

export function headValue(keys: CacheKeys, seq: number, hash: Uint8Array): string {
  const hex = Buffer.from(hash).toString('hex');
  return JSON.stringify({
    seq,
    hash: hex,
    mac: keys.auditMac(JSON.stringify([`${DOMAIN}/head`, seq, hex])).toString('hex'),
  });
}

/** The authenticated head, or why it is not usable. */
export function parseHead(keys: CacheKeys, value: string | undefined): AuditHead | 'missing' | 'invalid' {
  if (value === undefined) return 'missing';
  try {
    const j = JSON.parse(value) as { seq?: unknown; hash?: unknown; mac?: unknown };
    if (
      !Number.isSafeInteger(j.seq) ||
      (j.seq as number) < 0 ||
      typeof j.hash !== 'string' ||
      !/^[0-9a-f]{64}$/.test(j.hash) ||
      typeof j.mac !== 'string'
    )
      return 'invalid';
    const want = keys.auditMac(JSON.stringify([`${DOMAIN}/head`, j.seq, j.hash]));
    const got = Buffer.from(j.mac, 'hex');
    if (got.length !== want.length || !timingSafeEqual(got, want)) return 'invalid';
    return { seq: j.seq as number, hash: Buffer.from(j.hash, 'hex') };
  } catch {
    return 'invalid';
  }
}

/** At open: a database without a head and without entries gets the genesis head. */
export function ensureAuditHead(db: Database.Database, keys: CacheKeys): void {
  const has = db.prepare('SELECT 1 FROM meta WHERE key = ?').pluck().get(META_AUDIT_HEAD) !== undefined;
  if (has) return;
  // Entries without a head: leave it missing, verify reports it (never paper over a deletion).
  if (db.prepare('SELECT 1 FROM audit LIMIT 1').pluck().get() !== undefined) return;
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(META_AUDIT_HEAD, headValue(keys, 0, AUDIT_GENESIS));
}

export interface WireAuditInput {
  kind: AuditKind;
  actor: string;
  action: string;
  target: string | null;
  remote: string | null;
  mode: string | null;
  outcome: string | null;
  source: string | null;
  personalJson: string | null;
  at: number;
}

const corrupt = (message: string, reason: string): OnshiError<StoreErrorCode> =>
  new OnshiError<StoreErrorCode>('STORE_CORRUPT', message, { details: { table: 'audit', reason } });

/** The writer's audit ops: run inside the worker's batch transaction, so seq follows commit order. */
export function createAuditOps(db: Database.Database, keys: CacheKeys) {
  const s = {
    head: db.prepare('SELECT value FROM meta WHERE key = ?').pluck(),
    setHead: db.prepare(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ),
    insert:
      db.prepare(`INSERT INTO audit (seq, at, kind, actor, action, target, remote, mode, outcome, source, personal, personal_digest, prev, hash)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    purge: db.prepare('UPDATE audit SET personal = NULL, purged_at = ? WHERE at < ? AND personal IS NOT NULL'),
  };
  return {
    appendAudit(a: WireAuditInput): { seq: number; hash: string } {
      const head = parseHead(keys, s.head.get(META_AUDIT_HEAD) as string | undefined);
      // Chaining from a forged or missing head would launder the tampering: refuse, loudly.
      if (head === 'missing')
        throw corrupt('the audit chain head is missing; run `onshi audit verify`', 'head-missing');
      if (head === 'invalid')
        throw corrupt('the audit chain head fails authentication; run `onshi audit verify`', 'head-invalid');
      const seq = head.seq + 1;
      const personal = a.personalJson === null ? null : keys.seal(Buffer.from(a.personalJson, 'utf8'), auditAad(seq));
      const digest = personal === null ? null : personalDigest(personal);
      const fields: AuditFields = {
        at: a.at,
        kind: a.kind,
        actor: a.actor,
        action: a.action,
        target: a.target,
        remote: a.remote,
        mode: a.mode,
        outcome: a.outcome,
        source: a.source,
      };
      const hash = entryMac(keys, head.hash, fields, digest);
      s.insert.run(
        seq,
        a.at,
        a.kind,
        a.actor,
        a.action,
        a.target,
        a.remote,
        a.mode,
        a.outcome,
        a.source,
        personal,
        digest,
        head.hash,
        hash,
      );
      s.setHead.run(META_AUDIT_HEAD, headValue(keys, seq, hash));
      return { seq, hash: hash.toString('hex') };
    },

    purgeAuditPersonal({ before, now }: { before: number; now: number }): { purged: number } {
      return { purged: s.purge.run(now, before).changes };
    },
  };
}

/** Read access the verifier needs; the store and the read-only CLI path each provide one. */
export interface AuditSource {
  headValue(): string | undefined;
  /** Rows with after < seq <= upTo, by seq, at most `limit`. */
  rows(after: number, upTo: number, limit: number): AuditRow[];
  seqOfHash(hash: Buffer): number | undefined;
  lastSeq(): number | undefined;
}

const CHUNK = 500;

/**
 * Walks the chain from seq 1 to the head, one chunk per step (the store yields to the event loop
 * between steps). The result names the first bad seq (0 = the head record itself) and why.
 */
export function* verifyAuditSteps(src: AuditSource, keys: CacheKeys): Generator<void, AuditVerifyResult> {
  const head = parseHead(keys, src.headValue());
  let checked = 0;
  const bad = (seq: number, reason: AuditFailure, message: string): AuditVerifyResult => ({
    ok: false,
    entries: checked,
    seq,
    reason,
    message,
  });
  if (head === 'missing') {
    const last = src.lastSeq();
    if (last === undefined) return { ok: true, entries: 0, head: { seq: 0, hash: AUDIT_GENESIS.toString('hex') } };
    return bad(0, 'removed', `the chain head record is missing (entries up to ${last} exist)`);
  }
  if (head === 'invalid') return bad(0, 'changed', 'the chain head record fails authentication');

  let expected = 1;
  let prev: Buffer = AUDIT_GENESIS;
  while (expected <= head.seq) {
    const rows = src.rows(expected - 1, head.seq, CHUNK);
    if (rows.length === 0) break;
    for (const r of rows) {
      if (r.seq !== expected) {
        return bad(
          expected,
          'removed',
          r.seq === expected + 1 ? `entry ${expected} is missing` : `entries ${expected}–${r.seq - 1} are missing`,
        );
      }
      const blob = (v: unknown): boolean => Buffer.isBuffer(v);
      if (
        !blob(r.prev) ||
        !blob(r.hash) ||
        (r.personal !== null && !blob(r.personal)) ||
        (r.personal_digest !== null && !blob(r.personal_digest))
      ) {
        return bad(r.seq, 'changed', `entry ${r.seq}: a hash column holds something other than bytes`);
      }
      if (
        r.personal !== null &&
        (r.personal_digest === null || !personalDigest(r.personal).equals(r.personal_digest))
      ) {
        return bad(r.seq, 'changed', `entry ${r.seq}: the personal fields do not match their digest`);
      }
      const mac = entryMac(keys, r.prev, r, r.personal_digest);
      if (r.hash.length !== mac.length || !timingSafeEqual(mac, r.hash)) {
        return bad(r.seq, 'changed', `entry ${r.seq}: its fields do not match its hash`);
      }
      if (!r.prev.equals(prev)) {
        // The entry is intact but not where it was written: find the entry it was chained to.
        const after = r.prev.equals(AUDIT_GENESIS) ? 0 : src.seqOfHash(r.prev);
        if (after === undefined) return bad(r.seq, 'removed', `the entry written before entry ${r.seq} is missing`);
        return bad(
          r.seq,
          'reordered',
          after === 0
            ? `entry ${r.seq} was written as the first entry`
            : `entry ${r.seq} was written after the entry now at ${after}`,
        );
      }
      prev = r.hash;
      expected++;
      checked++;
    }
    yield;
  }
  if (expected <= head.seq) {
    return bad(
      expected,
      'removed',
      expected === head.seq
        ? `entry ${expected} (the last) is missing`
        : `entries ${expected}–${head.seq} are missing (the head is at ${head.seq})`,
    );
  }
  if (!prev.equals(head.hash)) return bad(head.seq, 'changed', `entry ${head.seq} does not match the chain head`);
  return { ok: true, entries: checked, head: { seq: head.seq, hash: head.hash.toString('hex') } };
}

/** Runs the verifier to the end without yielding (CLI, tests). */
export function verifyAuditSync(src: AuditSource, keys: CacheKeys): AuditVerifyResult {
  const it = verifyAuditSteps(src, keys);
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
  }
}

/** The read statements over a connection (main-thread reader or a read-only CLI connection). */
export function auditSource(db: Database.Database): AuditSource {
  const head = db.prepare('SELECT value FROM meta WHERE key = ?').pluck();
  const rows = db.prepare(`SELECT ${AUDIT_COLUMNS} FROM audit WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`);
  const byHash = db.prepare('SELECT seq FROM audit WHERE hash = ? ORDER BY seq LIMIT 1').pluck();
  const last = db.prepare('SELECT MAX(seq) FROM audit').pluck();
  return {
    headValue: () => head.get(META_AUDIT_HEAD) as string | undefined,
    rows: (after, upTo, limit) => rows.all(after, upTo, limit) as AuditRow[],
    seqOfHash: (h) => byHash.get(h) as number | undefined,
    lastSeq: () => (last.get() as number | null) ?? undefined,
  };
}
