/**
 * Brute-force guard for failed WebSocket authentications and admin logins, per source address.
 * Pure (no timers, no I/O): the caller passes `now` and does the logging.
 *
 * Fixed window: the first failure opens a window of `windowMs`; the `maxFailures`-th failure inside
 * it locks the address out for `lockoutMs` (every attempt is refused with a retry-after, even with
 * the right credentials, so guessing cannot continue). Counts decay with time only: a success does
 * not clear them, or a guesser holding one good token (or sharing an address with a client that
 * has one) could reset its count before every tenth guess. `record()`/`restore()` let the caller
 * keep the counts across a restart (the store's auth_failures table). Memory is
 * bounded by `maxEntries`: expired entries are swept first, then the oldest entry is dropped —
 * locked entries are dropped last, so flooding from many addresses does not free a locked one early.
 */

export interface RateLimitOptions {
  /** Failures inside one window that trigger the lockout (default 5). */
  maxFailures?: number;
  /** Length of the counting window (default 1 min). */
  windowMs?: number;
  /** How long a locked-out address is refused (default 5 min). */
  lockoutMs?: number;
  /** Addresses tracked at most (default 10 000). */
  maxEntries?: number;
}

export type RateDecision =
  | { allowed: true; failures: number }
  | { allowed: false; failures: number; retryAfterMs: number; lockedUntil: number };

/** The result of recording a failure; `justLocked` is true once per lockout (log it then). */
export type FailureResult = RateDecision & { justLocked: boolean };

/** One address's count as kept across restarts (`source` is its sourceKey; times in epoch ms). */
export interface FailureRecord {
  source: string;
  windowStart: number;
  failures: number;
  lockedUntil: number;
  /** when the record stops mattering: the end of its window, or of its lockout */
  expiresAt: number;
}

interface Entry {
  windowStart: number;
  failures: number;
  lockedUntil: number;
}

export class FailureLimiter {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly lockoutMs: number;
  readonly maxEntries: number;
  private readonly entries = new Map<string, Entry>();
  private lastSweep = -Infinity;

  constructor(o: RateLimitOptions = {}) {
    this.maxFailures = positiveInt(o.maxFailures ?? 5, 'maxFailures');
    this.windowMs = positiveInt(o.windowMs ?? 60_000, 'windowMs');
    this.lockoutMs = positiveInt(o.lockoutMs ?? 300_000, 'lockoutMs');
    this.maxEntries = positiveInt(o.maxEntries ?? 10_000, 'maxEntries');
  }

  get size(): number {
    return this.entries.size;
  }

  /** Before checking credentials: may this address try now? */
  check(source: string, now = Date.now()): RateDecision {
    const e = this.live(sourceKey(source), now);
    if (!e) return { allowed: true, failures: 0 };
    if (e.lockedUntil > now)
      return { allowed: false, failures: e.failures, retryAfterMs: e.lockedUntil - now, lockedUntil: e.lockedUntil };
    return { allowed: true, failures: e.failures };
  }

  /** Records a failed attempt. */
  fail(source: string, now = Date.now()): FailureResult {
    const key = sourceKey(source);
    let e = this.live(key, now);
    if (e && e.lockedUntil > now) {
      // Attempts while locked do not extend the lockout: a legitimate user behind the same NAT gets back in.
      return {
        allowed: false,
        failures: e.failures,
        retryAfterMs: e.lockedUntil - now,
        lockedUntil: e.lockedUntil,
        justLocked: false,
      };
    }
    if (!e) {
      e = { windowStart: now, failures: 0, lockedUntil: 0 };
      this.insert(key, e, now);
    }
    e.failures++;
    if (e.failures >= this.maxFailures) {
      e.lockedUntil = now + this.lockoutMs;
      return {
        allowed: false,
        failures: e.failures,
        retryAfterMs: this.lockoutMs,
        lockedUntil: e.lockedUntil,
        justLocked: true,
      };
    }
    return { allowed: true, failures: e.failures, justLocked: false };
  }

  /** The address's current count as a record to keep (undefined when nothing is counted at `now`). */
  record(source: string, now = Date.now()): FailureRecord | undefined {
    const key = sourceKey(source);
    const e = this.live(key, now);
    if (!e) return undefined;
    const expiresAt = e.lockedUntil > 0 ? e.lockedUntil : e.windowStart + this.windowMs;
    return { source: key, windowStart: e.windowStart, failures: e.failures, lockedUntil: e.lockedUntil, expiresAt };
  }

  /** Takes back records kept before a restart; those already expired at `now` are skipped. */
  restore(records: Iterable<FailureRecord>, now = Date.now()): number {
    let n = 0;
    for (const r of records) {
      const e: Entry = { windowStart: r.windowStart, failures: r.failures, lockedUntil: r.lockedUntil };
      if (this.expired(e, now) || this.entries.has(r.source)) continue;
      this.insert(r.source, e, now);
      n++;
    }
    return n;
  }

  /** The entry if it still matters at `now`; expired windows and lockouts are forgotten. */
  private live(key: string, now: number): Entry | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (this.expired(e, now)) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  private expired(e: Entry, now: number): boolean {
    return e.lockedUntil > 0 ? e.lockedUntil <= now : now - e.windowStart >= this.windowMs;
  }

  private insert(key: string, e: Entry, now: number): void {
    if (this.entries.size >= this.maxEntries) this.evict(now);
    this.entries.set(key, e);
  }

  private evict(now: number): void {
    // A full sweep is O(n): at most once a second, so a flood cannot make every failure pay for it.
    if (now - this.lastSweep >= 1000) {
      this.lastSweep = now;
      for (const [k, e] of this.entries) if (this.expired(e, now)) this.entries.delete(k);
      if (this.entries.size < this.maxEntries) return;
    }
    // Oldest unlocked entry first (Map iteration is insertion order); a locked one only if all are.
    let victim: string | undefined;
    let scanned = 0;
    for (const [k, e] of this.entries) {
      if (e.lockedUntil === 0) {
        victim = k;
        break;
      }
      if (++scanned >= 64) break;
    }
    this.entries.delete(victim ?? this.entries.keys().next().value!);
  }
}

function positiveInt(v: number, name: string): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer`);
  return v;
}

/**
 * The key an address is counted under. IPv4 (also IPv4-mapped IPv6) as is; IPv6 by its /64, since
 * one host controls a whole /64 and privacy addresses would otherwise give it endless fresh keys.
 */
export function sourceKey(address: string): string {
  const a = address.trim().toLowerCase().replace(/%.*$/, ''); // zone id (fe80::1%eth0)
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  if (mapped) return mapped[1]!;
  if (!a.includes(':')) return a;
  const groups = expandIpv6(a);
  return groups ? `${groups.slice(0, 4).join(':')}::/64` : a;
}

function expandIpv6(a: string): string[] | undefined {
  let s = a;
  const v4 = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (v4) {
    const b = v4.slice(1, 5).map(Number);
    if (b.some((x) => x > 255)) return undefined;
    s = s.slice(0, v4.index) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  if (!all.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined;
  return all.map((g) => g.replace(/^0+(?=.)/, ''));
}
