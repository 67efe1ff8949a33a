/**
 * The admin page's pictures of the past: every 5 minutes, checks answered by central, from the
 * cache and with nothing, and by method (card with PIN, card with visual check, numbers; both counted
 * from the audit chain's clear fields: `source` and `mode`), the outbox depth and how
 * long central took to answer (counts per fixed bucket). No personal data; kept for
 * `retentionDays`. The line's ups and downs are in the audit chain (`line.state.*`,
 * `line.tunnel.*`); `lineEvents` reads them for the same pictures.
 */
import { read, type StoreContext } from './inputs.js';

export const HISTORY_STEP_MS = 5 * 60_000;

/** Upper bounds (ms) of the answer-time buckets; one more bucket counts everything slower. */
export const LATENCY_BOUNDS_MS: readonly number[] = [
  100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10_000, 20_000, 30_000,
];

export interface HistoryRow {
  /** start of the interval (ms) */
  at: number;
  central: number;
  cache: number;
  none: number;
  outbox: number;
  /** checks by method (card with PIN, card with visual check, numbers); absent in rows sampled before they were recorded */
  methods?: { cardPin: number; cardVisual: number; numbers: number };
  /** central's answer times in the interval, counts per LATENCY_BOUNDS_MS bucket (+ one slower); absent when it answered nothing */
  latency?: number[];
}

/** One `line.state.*` or `line.tunnel.*` entry of the audit chain. */
export interface LineEventRow {
  at: number;
  /** e.g. line.state.down, line.tunnel.up */
  action: string;
  /** the reason as the link monitor or strongSwan gave it */
  target?: string;
}

export class HistoryStore {
  private readonly s;
  /** answer times of the intervals not sampled yet (in memory: a restart loses at most ~5 minutes) */
  private readonly pending = new Map<number, number[]>();

  constructor(private readonly ctx: StoreContext) {
    this.s = {
      checks: ctx.reader.prepare(
        "SELECT COALESCE(source, 'none') AS source, COUNT(*) AS n FROM audit WHERE kind = 'check' AND at >= ? AND at < ? GROUP BY 1",
      ),
      methods: ctx.reader.prepare(
        "SELECT mode, COUNT(*) AS n FROM audit WHERE kind = 'check' AND at >= ? AND at < ? GROUP BY 1",
      ),
      list: ctx.reader.prepare(
        'SELECT at, central, cache, none, outbox, latency, card_pin, card_visual, numbers FROM history WHERE at >= ? ORDER BY at',
      ),
      lineSince: ctx.reader.prepare(
        "SELECT at, action, target FROM audit WHERE at >= ? AND action LIKE 'line.%' ORDER BY at, seq",
      ),
      lineBefore: ctx.reader.prepare(
        "SELECT at, action, target FROM audit WHERE at < ? AND at >= ? AND action LIKE 'line.state.%' ORDER BY at DESC, seq DESC LIMIT 1",
      ),
    };
  }

  /** One answer from central that took `ms`, counted in the interval it arrived in. */
  observeLatency(ms: number, now = Date.now()): void {
    const at = Math.floor(now / HISTORY_STEP_MS) * HISTORY_STEP_MS;
    let counts = this.pending.get(at);
    if (!counts) {
      counts = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
      this.pending.set(at, counts);
      // never more than an hour of intervals waiting (the sampler runs every 5 minutes)
      for (const k of this.pending.keys()) if (k < at - 12 * HISTORY_STEP_MS) this.pending.delete(k);
    }
    const i = LATENCY_BOUNDS_MS.findIndex((b) => ms <= b);
    counts[i < 0 ? LATENCY_BOUNDS_MS.length : i]!++;
  }

  /** Records the interval that ended at or before `now` (sampling it again replaces it). */
  async sample(outboxDepth: number, now = Date.now(), retentionDays = 30): Promise<HistoryRow> {
    this.ctx.assertOpen();
    const at = Math.floor(now / HISTORY_STEP_MS) * HISTORY_STEP_MS - HISTORY_STEP_MS;
    const counts = read(() => this.s.checks.all(at, at + HISTORY_STEP_MS)) as { source: string; n: number }[];
    const by = (k: string): number => counts.find((c) => c.source === k)?.n ?? 0;
    const modes = read(() => this.s.methods.all(at, at + HISTORY_STEP_MS)) as { mode: string | null; n: number }[];
    const byMode = (k: string): number => modes.find((c) => c.mode === k)?.n ?? 0;
    const methods = { cardPin: byMode('card'), cardVisual: byMode('card-visual'), numbers: byMode('numbers') };
    const latency = this.pending.get(at);
    for (const k of this.pending.keys()) if (k < at) this.pending.delete(k);
    const row: HistoryRow = {
      at,
      central: by('central'),
      cache: by('cache'),
      none: by('none'),
      outbox: outboxDepth,
      methods,
      ...(latency ? { latency: [...latency] } : {}),
    };
    await this.ctx.call('historyPut', {
      at,
      central: row.central,
      cache: row.cache,
      none: row.none,
      outbox: row.outbox,
      card_pin: methods.cardPin,
      card_visual: methods.cardVisual,
      numbers: methods.numbers,
      latency: latency ? JSON.stringify(latency) : null,
      pruneBefore: now - retentionDays * 86_400_000,
    });
    return row;
  }

  list(since: number): HistoryRow[] {
    this.ctx.assertOpen();
    type Raw = Omit<HistoryRow, 'latency' | 'methods'> & {
      latency: string | null;
      card_pin: number | null;
      card_visual: number | null;
      numbers: number | null;
    };
    const rows = read(() => this.s.list.all(since)) as Raw[];
    return rows.map(({ latency, card_pin, card_visual, numbers, ...r }) => ({
      ...r,
      ...(card_pin !== null && card_visual !== null && numbers !== null
        ? { methods: { cardPin: card_pin, cardVisual: card_visual, numbers } }
        : {}),
      ...(latency ? { latency: parseCounts(latency) } : {}),
    }));
  }

  /**
   * The line's entries of the audit chain since `since`, oldest first, led by the last
   * `line.state.*` before it (within 30 days): the state the line was in when the period began.
   */
  lineEvents(since: number): LineEventRow[] {
    this.ctx.assertOpen();
    type Raw = { at: number; action: string; target: string | null };
    const clean = ({ target, ...r }: Raw): LineEventRow => (target === null ? r : { ...r, target });
    const before = read(() => this.s.lineBefore.get(since, since - 30 * 86_400_000)) as Raw | undefined;
    const rows = read(() => this.s.lineSince.all(since)) as Raw[];
    return [...(before ? [before] : []), ...rows].map(clean);
  }
}

function parseCounts(json: string): number[] {
  try {
    const v = JSON.parse(json) as unknown;
    return Array.isArray(v) ? v.map((n) => (typeof n === 'number' && n >= 0 ? n : 0)) : [];
  } catch {
    return [];
  }
}
