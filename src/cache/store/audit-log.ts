/**
 * The audit log: a hash chain of who did what, its clear fields short codes kept forever, its
 * personal fields sealed and purged after the retention period. The chain itself is in ../audit.ts.
 */
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { AAD } from '../aad.js';
import {
  AUDIT_COLUMNS,
  AUDIT_KINDS,
  type AuditRow,
  type AuditSource,
  auditAad,
  auditSource,
  verifyAuditSteps,
  verifyAuditSync,
} from '../audit.js';
import { CacheKeys, loadOrCreateKey, toJson } from '../crypto.js';
import type { OpArgs } from '../protocol.js';
import { toStoreError } from '../sqlite-errors.js';
import {
  AUDIT_MODES,
  type AuditEntry,
  type AuditMode,
  type AuditInput,
  type AuditVerifyResult,
  type CallOptions,
} from '../types.js';
import { CODE_RE, DB_FILE, err, read, type StoreContext, validDate } from './inputs.js';

export class AuditLog {
  private readonly s;

  constructor(private readonly ctx: StoreContext) {
    const db = ctx.reader;
    this.s = {
      list: db.prepare(`SELECT ${AUDIT_COLUMNS} FROM audit WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?`),
      listDesc: db.prepare(`SELECT ${AUDIT_COLUMNS} FROM audit WHERE seq > ? AND seq < ? ORDER BY seq DESC LIMIT ?`),
      chain: auditSource(db),
    };
  }

  /** Prepared filter statements by their SQL (a handful of shapes: which filters are set). */
  private readonly filtered = new Map<string, Database.Statement>();

  /**
   * Appends one entry; the worker assigns seq and chains it in commit order. Resolves after the
   * commit. STORE_CORRUPT when the chain head was tampered with (nothing is appended then).
   * `defer` (CallOptions): no one waits for it; it may share a later commit. Its time is `now`.
   */
  async append(entry: AuditInput, now = new Date(), opts?: CallOptions): Promise<{ seq: number; hash: string }> {
    return this.ctx.call('appendAudit', auditArgs(entry, now), opts);
  }

  /**
   * Entries with after < seq < before, oldest first (`newestFirst` for a log page). Personal fields
   * are decrypted unless `personal: false`.
   */
  list(
    o: { after?: number; before?: number; limit?: number; newestFirst?: boolean; personal?: boolean } = {},
  ): AuditEntry[] {
    this.ctx.assertOpen();
    const stmt = o.newestFirst ? this.s.listDesc : this.s.list;
    const rows = read(() => stmt.all(o.after ?? 0, o.before ?? Number.MAX_SAFE_INTEGER, o.limit ?? 100)) as AuditRow[];
    return this.entries(rows, o.personal !== false);
  }

  /**
   * Entries matching `f`, newest first, seq < `f.before` (the page's cursor), at most `f.limit`;
   * filtered in SQL (the `audit_at` index serves the date range). Personal fields are not read.
   */
  query(f: AuditFilter): AuditEntry[] {
    this.ctx.assertOpen();
    const { sql, args } = auditFilterSql(f);
    let stmt = this.filtered.get(sql);
    if (!stmt) {
      stmt = this.ctx.reader.prepare(sql);
      this.filtered.set(sql, stmt);
    }
    const rows = read(() => stmt.all(...args)) as AuditRow[];
    return this.entries(rows, false);
  }

  private entries(rows: AuditRow[], personal: boolean): AuditEntry[] {
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
      if (r.mode !== null) e.mode = r.mode as AuditMode;
      if (r.outcome !== null) e.outcome = r.outcome;
      if (r.source !== null) e.source = r.source as 'central' | 'cache';
      if (r.purged_at !== null) e.purgedAt = new Date(r.purged_at);
      if (r.personal !== null && personal) e.personal = this.ctx.keys.openJson(r.personal, auditAad(r.seq));
      return e;
    });
  }

  /**
   * Walks the whole chain (in chunks, yielding to the event loop) up to the head as it was when the
   * walk started. Never throws for tampering: the result names the first bad seq and why.
   */
  async verify(): Promise<AuditVerifyResult> {
    this.ctx.assertOpen();
    const chain = this.s.chain;
    const src: AuditSource = {
      headValue: () => read(() => chain.headValue()),
      rows: (a, u, l) => read(() => chain.rows(a, u, l)),
      seqOfHash: (h) => read(() => chain.seqOfHash(h)),
      lastSeq: () => read(() => chain.lastSeq()),
    };
    const it = verifyAuditSteps(src, this.ctx.keys);
    for (;;) {
      const r = it.next();
      if (r.done) return r.value;
      await yieldToLoop();
      this.ctx.assertOpen();
    }
  }

  /**
   * Retention: drops the personal fields of entries written before `before` (the clear fields and
   * the chain stay). Returns how many entries were purged. Checkpoint afterwards so that the old
   * pages leave the WAL too.
   */
  async purgePersonal(before: Date, now = new Date()): Promise<number> {
    const r = await this.ctx.call('purgeAuditPersonal', {
      before: validDate(before, 'before'),
      now: validDate(now, 'now'),
    });
    return r.purged;
  }
}

/** What the audit page filters by; every field optional. */
export interface AuditFilter {
  kinds?: readonly AuditEntry['kind'][];
  /** ok: no outcome, ok, a validity or a per-person status; refused; failed: any other code */
  outcome?: 'ok' | 'refused' | 'failed';
  /** actions starting with one of these (e.g. `line.state.`) */
  actionPrefixes?: readonly string[];
  /** a substring of the action, the actor or the target, or one of `actors` (ids found by name) */
  search?: string;
  actors?: readonly string[];
  /** or one of these actions (codes whose words match the search on the page) */
  actions?: readonly string[];
  /** at >= from, at < to (ms) */
  from?: number;
  to?: number;
  /** seq < before */
  before?: number;
  limit?: number;
}

const likeEscape = (s: string): string => s.replace(/[\\%_]/g, (c) => `\\${c}`);

/** The filter as one SELECT; `at` bounds first so that SQLite can use the audit_at index. */
export function auditFilterSql(f: AuditFilter): { sql: string; args: (string | number)[] } {
  const where: string[] = [];
  const args: (string | number)[] = [];
  if (f.from !== undefined) {
    where.push('at >= ?');
    args.push(f.from);
  }
  if (f.to !== undefined) {
    where.push('at < ?');
    args.push(f.to);
  }
  if (f.before !== undefined) {
    where.push('seq < ?');
    args.push(f.before);
  }
  if (f.kinds?.length) {
    where.push(`kind IN (${f.kinds.map(() => '?').join(', ')})`);
    args.push(...f.kinds);
  }
  if (f.actionPrefixes?.length) {
    where.push(`(${f.actionPrefixes.map(() => "action LIKE ? ESCAPE '\\'").join(' OR ')})`);
    args.push(...f.actionPrefixes.map((p) => `${likeEscape(p)}%`));
  }
  if (f.outcome === 'ok')
    where.push("(outcome IS NULL OR outcome = 'ok' OR outcome LIKE 'validity:%' OR outcome LIKE 'status:%')");
  else if (f.outcome === 'refused') where.push("outcome = 'refused'");
  else if (f.outcome === 'failed')
    where.push(
      "(outcome IS NOT NULL AND outcome NOT IN ('ok', 'refused') AND outcome NOT LIKE 'validity:%' AND outcome NOT LIKE 'status:%')",
    );
  const search = f.search?.trim();
  if (search || f.actors?.length || f.actions?.length) {
    const or: string[] = [];
    if (search) {
      const like = `%${likeEscape(search)}%`;
      or.push("action LIKE ? ESCAPE '\\'", "actor LIKE ? ESCAPE '\\'", "target LIKE ? ESCAPE '\\'");
      args.push(like, like, like);
    }
    if (f.actors?.length) {
      or.push(`actor IN (${f.actors.map(() => '?').join(', ')})`);
      args.push(...f.actors);
    }
    if (f.actions?.length) {
      or.push(`action IN (${f.actions.map(() => '?').join(', ')})`);
      args.push(...f.actions);
    }
    where.push(`(${or.join(' OR ')})`);
  }
  args.push(Math.max(1, Math.min(f.limit ?? 100, 100_000)));
  return {
    sql: `SELECT ${AUDIT_COLUMNS} FROM audit${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`,
    args,
  };
}

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
  if (a.mode !== undefined && !AUDIT_MODES.includes(a.mode))
    throw err('STORE_INPUT_INVALID', `audit mode must be one of ${AUDIT_MODES.join(', ')}`);
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
