/**
 * Pairing a kiosk tablet: IT staff ask for a one-time code on the admin page, type it on the kiosk's
 * pairing screen, and the kiosk receives a token with the `kiosk` scope bound to one reader slot.
 * A code is 8 digits (typed on the kiosk's own pad: no keyboard), valid a few minutes, used once;
 * after too many wrong codes every outstanding code is void, so guessing one is hopeless.
 */
import { randomInt } from 'node:crypto';
import { OnshiError } from '../core/errors.js';
import type { ClientRecord, ClientStore } from '../api/tokens.js';

export type KioskPairingErrorCode = 'KIOSK_CODE_INVALID' | 'KIOSK_PAIRING_LOCKED';

export const PAIRING_TTL_MS = 5 * 60_000;
/** wrong codes (since the last code was issued) before every outstanding code is void */
export const PAIRING_MAX_FAILURES = 5;

interface Pending {
  reader: string;
  name: string;
  expiresAt: number;
}

export class KioskPairing {
  private readonly pending = new Map<string, Pending>();
  private failures = 0;

  constructor(
    private readonly clients: ClientStore,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new one-time code for a kiosk named `name` on reader slot `reader` (the admin page). */
  issue(reader: string, name: string): { code: string; expiresAt: string } {
    this.sweep();
    let code: string;
    do code = String(randomInt(0, 100_000_000)).padStart(8, '0');
    while (this.pending.has(code));
    const expiresAt = this.now() + PAIRING_TTL_MS;
    this.pending.set(code, { reader, name, expiresAt });
    this.failures = 0;
    return { code, expiresAt: new Date(expiresAt).toISOString() };
  }

  /** Redeems a code once: the kiosk's new token (shown to nobody but the kiosk), or a typed refusal. */
  redeem(code: string): { client: ClientRecord; token: string } {
    this.sweep();
    if (this.pending.size === 0 && this.failures >= PAIRING_MAX_FAILURES)
      throw new OnshiError<KioskPairingErrorCode>(
        'KIOSK_PAIRING_LOCKED',
        'too many wrong codes: ask for a new code on the admin page',
      );
    const p = /^\d{8}$/.test(code) ? this.pending.get(code) : undefined;
    if (!p) {
      if (++this.failures >= PAIRING_MAX_FAILURES) this.pending.clear();
      throw new OnshiError<KioskPairingErrorCode>('KIOSK_CODE_INVALID', 'the code is wrong, used or expired');
    }
    this.pending.delete(code);
    return this.clients.add(p.name, ['kiosk'], { reader: p.reader });
  }

  /** Outstanding codes (for the admin page: which reader waits for a kiosk, until when). */
  outstanding(): { reader: string; name: string; expiresAt: string }[] {
    this.sweep();
    return [...this.pending.values()].map((p) => ({ ...p, expiresAt: new Date(p.expiresAt).toISOString() }));
  }

  private sweep(): void {
    const now = this.now();
    for (const [c, p] of this.pending) if (p.expiresAt <= now) this.pending.delete(c);
  }
}
