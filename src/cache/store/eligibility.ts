/** The eligibility cache: answers central confirmed, sealed under an HMAC of the patient's identifiers. */
import { AAD } from '../aad.js';
import { toJson } from '../crypto.js';
import type { WireEligibility } from '../protocol.js';
import type { CallOptions, LookupInput } from '../types.js';
import { read, type StoreContext, validDate } from './inputs.js';

/** A prepared cache write (eligibility.write → outbox.settle). */
export type EligibilityWrite = WireEligibility;

export class EligibilityStore {
  private readonly s;

  constructor(private readonly ctx: StoreContext) {
    this.s = {
      get: ctx.reader.prepare('SELECT answer, verified_at, source FROM eligibility WHERE lookup = ?'),
      count: ctx.reader.prepare('SELECT entries FROM eligibility_count').pluck(), // kept by triggers (schema v8)
    };
  }

  /**
   * Stores an answer; an older `verifiedAt` never replaces a newer one already cached. `defer`: no
   * one waits for it (a live answer's copy for outages), it may share a later commit (CallOptions).
   */
  async put(
    lookup: LookupInput,
    answer: unknown,
    verifiedAt: Date,
    source = 'central',
    opts?: CallOptions,
  ): Promise<void> {
    await this.ctx.call('putEligibility', this.write(lookup, answer, verifiedAt, source), opts);
  }

  /** A cache write to commit later with outbox.settle (same checks and meaning as put). */
  write(lookup: LookupInput, answer: unknown, verifiedAt: Date, source = 'central'): EligibilityWrite {
    return {
      lookupHex: this.ctx.keys.lookupKey(lookup).toString('hex'),
      answerJson: toJson(answer),
      verifiedAt: validDate(verifiedAt, 'verifiedAt'),
      source,
    };
  }

  /** The cached answer if central confirmed it at most `maxAgeMs` ago. Throws STORE_CORRUPT if the row was tampered with. */
  get(
    lookup: LookupInput,
    maxAgeMs: number,
    now = new Date(),
  ): { answer: unknown; verifiedAt: Date; source: string } | undefined {
    this.ctx.assertOpen();
    const lookupKey = this.ctx.keys.lookupKey(lookup);
    const row = read(() => this.s.get.get(lookupKey)) as
      | { answer: Buffer; verified_at: number; source: string }
      | undefined;
    if (!row || now.getTime() - row.verified_at > maxAgeMs) return undefined;
    const answer = this.ctx.keys.openJson(
      row.answer,
      AAD.eligibility(lookupKey.toString('hex'), row.verified_at, row.source),
    );
    return { answer, verifiedAt: new Date(row.verified_at), source: row.source };
  }

  /** Entries in the cache (status and metrics). */
  count(): number {
    this.ctx.assertOpen();
    return read(() => this.s.count.get()) as number;
  }
}
