/** The time-lag rechecks: a 無効 answer checked again later, one open recheck per patient. */
import { AAD } from '../aad.js';
import { toJson } from '../crypto.js';
import type { RecheckEntry, RecheckInput, RecheckState, RecheckUpdate } from '../types.js';
import { CODE_RE, err, read, type StoreContext, validDate } from './inputs.js';

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

export class RecheckStore {
  private readonly s;

  constructor(private readonly ctx: StoreContext) {
    const db = ctx.reader;
    this.s = {
      all: db.prepare('SELECT * FROM rechecks ORDER BY id DESC LIMIT ?'),
      byState: db.prepare('SELECT * FROM rechecks WHERE state = ? ORDER BY id LIMIT ?'),
      byId: db.prepare('SELECT * FROM rechecks WHERE id = ?'),
    };
  }

  /** Schedules a recheck; the same patient's open recheck is returned instead (`duplicate: true`). */
  async add(r: RecheckInput, now = new Date()): Promise<{ id: number; duplicate: boolean }> {
    if (typeof r.client !== 'string' || r.client.length === 0 || r.client.length > 128)
      throw err('STORE_INPUT_INVALID', 'recheck client must be 1–128 characters');
    if (typeof r.validity !== 'string' || !CODE_RE.test(r.validity))
      throw err('STORE_INPUT_INVALID', 'recheck validity must be a code');
    return this.ctx.call('addRecheck', {
      lookupHex: this.ctx.keys.lookupKey(r.lookup).toString('hex'),
      client: r.client,
      validity: r.validity,
      until: validDate(r.until, 'until'),
      nextAt: validDate(r.nextAt, 'nextAt'),
      personalJson: toJson(r.personal),
      now: validDate(now, 'now'),
    });
  }

  /** Records one attempt (or the window's end). A recheck already found or expired is left as it is. */
  async update(id: number, u: RecheckUpdate, now = new Date()): Promise<void> {
    const validity = u.state === 'expired' ? null : (u.validity ?? null);
    if (validity !== null && !CODE_RE.test(validity))
      throw err('STORE_INPUT_INVALID', 'recheck validity must be a code');
    await this.ctx.call('updateRecheck', {
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
  list(o: { state?: RecheckState; limit?: number } = {}): RecheckEntry[] {
    this.ctx.assertOpen();
    const limit = o.limit ?? 1000;
    const rows = read(() => (o.state ? this.s.byState.all(o.state, limit) : this.s.all.all(limit))) as RecheckRow[];
    return rows.map((row) => this.entry(row));
  }

  get(id: number): RecheckEntry | undefined {
    this.ctx.assertOpen();
    const row = read(() => this.s.byId.get(id)) as RecheckRow | undefined;
    return row ? this.entry(row) : undefined;
  }

  private entry(row: RecheckRow): RecheckEntry {
    const keys = this.ctx.keys;
    const e: RecheckEntry = {
      id: row.id,
      client: row.client,
      createdAt: new Date(row.created_at),
      until: new Date(row.until_at),
      attempts: row.attempts,
      state: row.state,
      firstValidity: row.first_validity,
      personal: keys.openJson(row.personal, AAD.recheckPersonal(row.id)),
    };
    if (row.next_at !== null) e.nextAt = new Date(row.next_at);
    if (row.last_validity !== null) e.lastValidity = row.last_validity;
    if (row.last_error !== null) e.lastError = row.last_error;
    if (row.found !== null) e.found = keys.openJson(row.found, AAD.recheckFound(row.id));
    if (row.settled_at !== null) e.settledAt = new Date(row.settled_at);
    return e;
  }
}
