/**
 * マイナ保険証 use, the box's own count: successful checks (answered by central or the cache) per
 * day and month by method — card with PIN, card with visual check (資格確認限定型), numbers
 * (資格確認書・被保険者証) — and the distinct patients among them.
 *
 * Days and months are Japan's (JST, UTC+9, no daylight saving): the clinic's day, and the month
 * its claims are made for. A check at 23:30 UTC on 31 October counts for 1 November.
 *
 * Patients are counted by a keyed hash of who central's answer names (insurer number, 記号・番号,
 * 枝番, birthdate), with the month in the hash; nothing identifying is stored in clear. The hashes
 * are kept for USAGE_PATIENT_MONTHS months (this month and the ones before it); each month's and
 * day's distinct counts are kept after that.
 */
import { read, type StoreContext } from './inputs.js';

export type UsageMethod = 'card_pin' | 'card_visual' | 'numbers';

/** Months of patient hashes kept: the current month and the 12 before it (a year's comparison). */
export const USAGE_PATIENT_MONTHS = 13;

const JST_MS = 9 * 3_600_000;

/** The JST day (YYYY-MM-DD) of an instant. */
export function jstDay(ms: number): string {
  return new Date(ms + JST_MS).toISOString().slice(0, 10);
}

/** The JST month (YYYY-MM) of an instant. */
export const jstMonth = (ms: number): string => jstDay(ms).slice(0, 7);

/** `month` (YYYY-MM) moved by `delta` months. */
export function addMonths(month: string, delta: number): string {
  const [y, m] = month.split('-').map(Number) as [number, number];
  const i = y * 12 + (m - 1) + delta;
  return `${String(Math.floor(i / 12)).padStart(4, '0')}-${String((i % 12) + 1).padStart(2, '0')}`;
}

/** The days (YYYY-MM-DD) of a month. */
export function daysOf(month: string): string[] {
  const [y, m] = month.split('-').map(Number) as [number, number];
  const n = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return Array.from({ length: n }, (_, i) => `${month}-${String(i + 1).padStart(2, '0')}`);
}

/** Who a check's answer names, as central gave it (the first result). */
export interface UsagePatient {
  insurerNumber: string;
  symbol?: string;
  number?: string;
  branch?: string;
  birthdate?: string;
}

/** Spaces and widths as printed cards vary (NFKC, no spaces); the branch as two digits. */
function identity(p: UsagePatient): string[] | undefined {
  const squash = (v: string | undefined): string => (v ?? '').normalize('NFKC').replace(/\s+/g, '');
  const insurer = squash(p.insurerNumber);
  if (!insurer) return undefined;
  const branch = squash(p.branch);
  return [
    insurer,
    squash(p.symbol),
    squash(p.number),
    branch.length === 1 ? `0${branch}` : branch,
    squash(p.birthdate),
  ];
}

export interface UsageCounts {
  cardPin: number;
  cardVisual: number;
  numbers: number;
  /** distinct patients (checks whose answer named no one are not in it) */
  patients: number;
  /** of which checked by card at least once */
  cardPatients: number;
}

export interface UsageMonth extends UsageCounts {
  /** YYYY-MM (JST) */
  month: string;
}

export interface UsageDay extends UsageCounts {
  /** YYYY-MM-DD (JST) */
  day: string;
}

/** Card checks' share of all counted checks (0…1); undefined without any check. */
export function cardShare(c: UsageCounts): number | undefined {
  const all = c.cardPin + c.cardVisual + c.numbers;
  return all === 0 ? undefined : (c.cardPin + c.cardVisual) / all;
}

type DayRow = {
  day: string;
  card_pin: number;
  card_visual: number;
  numbers: number;
  patients: number;
  card_patients: number;
};

/** A JST day's strings, made once a day rather than on every check. */
interface DayStrings {
  /** days since the epoch, in JST */
  n: number;
  day: string;
  month: string;
  /** the first day whose patient hashes are kept, for this month */
  keepFromDay: string;
}

export class UsageStore {
  private readonly s;
  private today: DayStrings | undefined;
  /** the month whose old patient hashes are known pruned (committed) in this process */
  private prunedFor: string | undefined;

  constructor(private readonly ctx: StoreContext) {
    const db = ctx.reader;
    this.s = {
      months: db.prepare(
        `SELECT substr(day, 1, 7) AS month, SUM(card_pin) AS card_pin, SUM(card_visual) AS card_visual, SUM(numbers) AS numbers
         FROM usage_days GROUP BY 1 ORDER BY 1`,
      ),
      livePatients: db.prepare(
        `SELECT substr(day, 1, 7) AS month, COUNT(DISTINCT patient) AS patients,
           COUNT(DISTINCT CASE WHEN card = 1 THEN patient END) AS card_patients
         FROM usage_patients GROUP BY 1`,
      ),
      closedPatients: db.prepare('SELECT month, patients, card_patients FROM usage_months'),
      days: db.prepare(
        'SELECT day, card_pin, card_visual, numbers, patients, card_patients FROM usage_days WHERE day >= ? AND day < ? ORDER BY day',
      ),
    };
  }

  /**
   * Counts one successful check on its JST day. `patient` from central's answer (absent: counted
   * without a patient). No one waits for it: it shares a commit with the audit entry's.
   */
  async record(u: { method: UsageMethod; patient?: UsagePatient }, now = Date.now()): Promise<void> {
    this.ctx.assertOpen();
    const { day, month, keepFromDay } = this.dayOf(now);
    const id = u.patient ? identity(u.patient) : undefined;
    // Closing old months and pruning their hashes is needed once a month: the first count of a
    // month (in this process) asks for it, and so does every count until one such has committed.
    const prune = this.prunedFor !== month;
    await this.ctx.call(
      'usageRecord',
      {
        day,
        method: u.method,
        ...(id ? { patientHex: this.ctx.keys.usagePatientKey(month, id).toString('hex') } : {}),
        ...(prune ? { pruneBeforeDay: keepFromDay } : {}),
      },
      { defer: true },
    );
    if (prune) this.prunedFor = month;
  }

  private dayOf(now: number): DayStrings {
    const n = Math.floor((now + JST_MS) / 86_400_000);
    if (this.today?.n !== n) {
      const month = jstMonth(now);
      this.today = {
        n,
        day: jstDay(now),
        month,
        keepFromDay: `${addMonths(month, 1 - USAGE_PATIENT_MONTHS)}-01`,
      };
    }
    return this.today;
  }

  /** Every month with a counted check, oldest first. */
  months(): UsageMonth[] {
    this.ctx.assertOpen();
    type M = { month: string; card_pin: number; card_visual: number; numbers: number };
    type P = { month: string; patients: number; card_patients: number };
    const rows = read(() => this.s.months.all()) as M[];
    const patients = new Map<string, P>();
    for (const p of read(() => this.s.closedPatients.all()) as P[]) patients.set(p.month, p);
    for (const p of read(() => this.s.livePatients.all()) as P[]) patients.set(p.month, p);
    return rows.map((r) => {
      const p = patients.get(r.month);
      return {
        month: r.month,
        cardPin: r.card_pin,
        cardVisual: r.card_visual,
        numbers: r.numbers,
        patients: p?.patients ?? 0,
        cardPatients: p?.card_patients ?? 0,
      };
    });
  }

  /** Every day of `month` (YYYY-MM, JST), days without a check as zeros. */
  days(month: string): UsageDay[] {
    this.ctx.assertOpen();
    const all = daysOf(month);
    const next = `${addMonths(month, 1)}-01`;
    const rows = new Map((read(() => this.s.days.all(all[0], next)) as DayRow[]).map((r) => [r.day, r]));
    return all.map((day) => {
      const r = rows.get(day);
      return {
        day,
        cardPin: r?.card_pin ?? 0,
        cardVisual: r?.card_visual ?? 0,
        numbers: r?.numbers ?? 0,
        patients: r?.patients ?? 0,
        cardPatients: r?.card_patients ?? 0,
      };
    });
  }
}
