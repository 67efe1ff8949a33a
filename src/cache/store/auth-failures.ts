/**
 * Failed authentications per source address, kept for the WebSocket API's brute-force limiter
 * (api/rate-limit.ts) so that a restart does not clear a count or a lockout. Clear text: a source
 * is an address key, never personal data.
 */
import type { WireAuthFailure } from '../protocol.js';
import { err, read, type StoreContext } from './inputs.js';

export type AuthFailureRecord = WireAuthFailure;

/** Rows loaded at most (the limiter keeps no more addresses than this by default either). */
const MAX_LOADED = 10_000;

export class AuthFailureStore {
  private readonly s;

  constructor(private readonly ctx: StoreContext) {
    this.s = {
      live: ctx.reader.prepare(
        `SELECT source, window_start AS windowStart, failures, locked_until AS lockedUntil, expires_at AS expiresAt
         FROM auth_failures WHERE expires_at > ? ORDER BY expires_at DESC LIMIT ?`,
      ),
    };
  }

  /** The rows that still matter at `now` (the latest-expiring first). */
  live(now = Date.now(), limit = MAX_LOADED): AuthFailureRecord[] {
    this.ctx.assertOpen();
    return read(() => this.s.live.all(now, limit)) as AuthFailureRecord[];
  }

  /** Stores an address's current count (replacing the previous one) and drops the expired rows. */
  async put(r: AuthFailureRecord, now = Date.now()): Promise<void> {
    const ints = [r.windowStart, r.failures, r.lockedUntil, r.expiresAt, now];
    if (!r.source || r.source.length > 80 || !ints.every(Number.isSafeInteger))
      throw err('STORE_INPUT_INVALID', 'an authentication failure record needs a short source and integer times');
    await this.ctx.call('putAuthFailure', {
      source: r.source,
      windowStart: r.windowStart,
      failures: r.failures,
      lockedUntil: r.lockedUntil,
      expiresAt: r.expiresAt,
      now,
    });
  }
}
