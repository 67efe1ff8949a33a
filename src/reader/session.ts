/**
 * One connection to a My Number card. Knows the JPKI protocol and keeps the APDU count minimal:
 * it tracks which AP/EF is current so that nothing is re-selected without need, sizes certificate
 * reads from the DER header and reads in 256-byte chunks starting with the first one.
 * Every transmit is bounded by a deadline; a pulled card becomes READER_CARD_REMOVED.
 */
import { createHash, X509Certificate } from 'node:crypto';
import {
  EF,
  MAX_READ,
  assertAllowedApdu,
  isValidPin,
  computeSignature,
  derHeaderBytesNeeded,
  derTotalLength,
  expectOk,
  parseResponse,
  readBinary,
  selectEf,
  selectJpkiAp,
  sha256DigestInfo,
  triesFromSw,
  verifyTriesLeft,
  type ApduResponse,
} from './apdu.js';
import { ReaderError, errorFromSw, isReaderError, type SwContext } from './errors.js';
import { runPinVerify, type PinOptions } from './pin.js';
import type { PcscCard } from './pcsc.js';

export interface CardSessionOptions {
  /** Upper bound for one APDU round trip (default 5 s; a real card signs in well under 1 s). */
  apduTimeoutMs?: number;
  /** Absolute deadline (ms since epoch) for everything done in this session. */
  deadline?: number;
  signal?: AbortSignal;
  /** Observer for tests and the benchmark: command and response as sent/received (VERIFY data redacted). */
  onApdu?: (command: Buffer, response: Buffer | undefined) => void;
}

export interface AuthCertificate {
  der: Buffer;
  certificate: X509Certificate;
}
export interface AuthenticateResult {
  signature: Buffer;
  triesLeftBefore: number;
}
export interface SessionCounters {
  apdus: number;
  verifies: number;
  reads: number;
}

export class CardSession {
  readonly counters: SessionCounters = { apdus: 0, verifies: 0, reads: 0 };
  private apSelected = false;
  /** A VERIFY succeeded since the last SELECT AP on this connection. */
  private pinVerified = false;
  private currentEf: number | undefined;
  private broken: ReaderError | undefined;
  private pending: Promise<unknown> = Promise.resolve();
  private readonly apduTimeoutMs: number;

  constructor(
    private readonly card: PcscCard,
    private readonly opts: CardSessionOptions = {},
  ) {
    this.apduTimeoutMs = opts.apduTimeoutMs ?? 5000;
  }

  get apduCount(): number {
    return this.counters.apdus;
  }

  /** Settles when no native transmit is in flight (a timed-out one may still be pending). */
  idle(): Promise<void> {
    return this.pending.then(
      () => undefined,
      () => undefined,
    );
  }

  /** The 利用者証明用電子証明書 (EF 000A), no PIN needed. */
  async readAuthCertificate(opts: { checkToken?: boolean } = {}): Promise<AuthCertificate> {
    await this.ensureAp();
    if (opts.checkToken) await this.checkToken();
    await this.selectEfOnce(EF.AUTH_CERT);
    // First read takes a full chunk: it holds the DER header, so no separate 4-byte header read.
    const first = await this.read(0, MAX_READ);
    if (first.length < derHeaderBytesNeeded(first))
      throw new ReaderError('CARD_BAD_CERTIFICATE', 'Certificate EF too short');
    const total = derTotalLength(first);
    const parts = [first.subarray(0, Math.min(total, first.length))];
    let got = parts[0]!.length;
    // A card returns fewer bytes than asked only at the end of the EF: a short chunk before the end
    // of the DER object means the EF is too small. Refusing it keeps the read at ⌈total/256⌉ READs;
    // following short chunks let a hostile card hold the reader for up to 32 768 APDUs.
    if (got < total && first.length < MAX_READ)
      throw new ReaderError('CARD_BAD_CERTIFICATE', 'Certificate EF ended early');
    while (got < total) {
      const want = Math.min(MAX_READ, total - got);
      const chunk = await this.read(got, want);
      if (chunk.length < want) throw new ReaderError('CARD_BAD_CERTIFICATE', 'Certificate EF ended early');
      parts.push(chunk.subarray(0, want));
      got += want;
    }
    const der = Buffer.concat(parts);
    try {
      return { der, certificate: new X509Certificate(der) };
    } catch (e) {
      throw new ReaderError('CARD_BAD_CERTIFICATE', 'EF 000A does not hold a valid X.509 certificate', { cause: e });
    }
  }

  /** Tries left on the user-authentication PIN (0–3), without spending one. */
  async triesLeft(): Promise<number> {
    await this.ensureAp();
    await this.selectEfOnce(EF.AUTH_PIN);
    const res = await this.transmit(verifyTriesLeft(), 'verify');
    const n = triesFromSw(res.sw);
    if (n === undefined)
      throw res.sw === 0x9000
        ? new ReaderError('CARD_BAD_RESPONSE', 'Empty VERIFY answered 9000, expected 63Cx')
        : errorFromSw(res.sw, 'verify');
    return n;
  }

  /**
   * One VERIFY of the user-authentication PIN, under the rules of pin.ts. The buffer is wiped.
   * Does not select the AP again, so that a following sign() keeps the verified state.
   */
  async verifyPin(pin: Buffer, opts: PinOptions = {}): Promise<{ triesLeftBefore: number }> {
    try {
      // No ensureAp() here: the format check in runPinVerify must come before any APDU.
      const r = await runPinVerify(pin, opts, {
        triesLeft: () => this.triesLeft(),
        sendVerify: async (apdu) => {
          this.counters.verifies++;
          return this.transmit(apdu, 'verify', true);
        },
      });
      this.pinVerified = true;
      return r;
    } finally {
      pin.fill(0);
    }
  }

  /** Signs SHA-256(data) with the user-authentication key; needs a verified PIN on this connection. */
  async sign(data: Buffer): Promise<Buffer> {
    const di = sha256DigestInfo(createHash('sha256').update(data).digest());
    // Without a VERIFY on this connection the card can only answer 6982: do not spend APDUs on it.
    if (!this.pinVerified)
      throw new ReaderError('CARD_SECURITY_STATUS', 'Verify the PIN on this connection before signing');
    await this.selectEfOnce(EF.AUTH_KEY);
    const res = await this.transmit(computeSignature(di), 'sign');
    const sig = expectOk(res, 'sign');
    if (sig.length !== 256)
      throw new ReaderError('CARD_BAD_RESPONSE', `Signature of ${sig.length} bytes, expected 256`);
    return sig;
  }

  /**
   * SELECT AP → tries left → VERIFY → SELECT 0017 → SIGN, on this connection and inside one PC/SC
   * transaction, so that no other client can come between the VERIFY and the signature.
   */
  async authenticate(pin: Buffer, challenge: Buffer, opts: PinOptions = {}): Promise<AuthenticateResult> {
    let began = false;
    try {
      if (!Buffer.isBuffer(pin) || !isValidPin(pin))
        throw new ReaderError('CARD_PIN_FORMAT', 'The PIN must be exactly 4 digits', { retryable: true });
      this.check();
      try {
        await this.bounded(this.card.beginTransaction(), 'begin transaction');
      } catch (e) {
        // pcsc-lite keeps retrying a sharing violation: a timeout here means another application
        // holds the card. Nothing was sent to the card, so the caller may simply try again.
        if (isReaderError(e, 'READER_TIMEOUT'))
          throw new ReaderError('READER_BUSY', 'Another application is using the card', { cause: e });
        throw e;
      }
      began = true;
      this.apSelected = false; // always start from a fresh SELECT: the verified state must be ours
      const { triesLeftBefore } = await this.verifyPin(pin, opts);
      const signature = await this.sign(challenge);
      return { signature, triesLeftBefore };
    } finally {
      pin.fill(0);
      if (began && !this.broken) await this.card.endTransaction().catch(() => undefined);
    }
  }

  private async ensureAp(): Promise<void> {
    if (this.apSelected) return;
    const res = await this.transmit(selectJpkiAp(), 'select-ap');
    this.pinVerified = false;
    expectOk(res, 'select-ap');
    this.apSelected = true;
    this.currentEf = undefined;
  }

  private async selectEfOnce(fid: number): Promise<void> {
    if (this.currentEf === fid) return;
    this.currentEf = undefined;
    expectOk(await this.transmit(selectEf(fid), 'select-ef'), 'select-ef');
    this.currentEf = fid;
  }

  private async checkToken(): Promise<void> {
    await this.selectEfOnce(EF.TOKEN_INFO);
    const label = (await this.read(0, 32)).toString('latin1').trimEnd();
    if (!label.startsWith('JPKIAP'))
      throw new ReaderError('CARD_NOT_JPKI', 'Token info is not a JPKI token', { details: { label } });
  }

  private async read(offset: number, le: number): Promise<Buffer> {
    this.counters.reads++;
    return expectOk(await this.transmit(readBinary(offset, le), 'read'), 'read');
  }

  private check(): void {
    if (this.broken) throw this.broken;
    if (this.opts.signal?.aborted) throw new ReaderError('READER_ABORTED', 'Cancelled');
    if (this.opts.deadline !== undefined && Date.now() >= this.opts.deadline) {
      throw this.fail(new ReaderError('READER_TIMEOUT', 'Deadline reached before the card answered'));
    }
  }

  private fail(e: ReaderError): ReaderError {
    this.broken ??= e;
    return e;
  }

  /** Races an operation with the APDU timeout, the session deadline and the abort signal. */
  private bounded<T>(p: Promise<T>, what: string): Promise<T> {
    this.pending = p.catch(() => undefined);
    const limit = Math.min(
      this.apduTimeoutMs,
      this.opts.deadline !== undefined ? Math.max(0, this.opts.deadline - Date.now()) : Infinity,
    );
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(
          this.fail(
            new ReaderError('READER_TIMEOUT', `The card did not answer (${what}) within ${limit} ms`, {
              details: { op: what, ms: limit },
            }),
          ),
        );
      }, limit);
      const onAbort = () => {
        cleanup();
        reject(this.fail(new ReaderError('READER_ABORTED', 'Cancelled')));
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.opts.signal?.removeEventListener('abort', onAbort);
      };
      this.opts.signal?.addEventListener('abort', onAbort, { once: true });
      p.then(
        (v) => {
          cleanup();
          resolve(v);
        },
        (e: unknown) => {
          cleanup();
          reject(e);
        },
      );
    });
  }

  private async transmit(apdu: Buffer, ctx: SwContext, secret = false): Promise<ApduResponse> {
    this.check();
    assertAllowedApdu(apdu);
    this.counters.apdus++;
    let raw: Buffer;
    try {
      raw = await this.bounded(this.card.transmit(apdu), ctx);
    } catch (e) {
      throw this.fail(this.classify(e));
    }
    this.opts.onApdu?.(secret ? Buffer.concat([apdu.subarray(0, 5), Buffer.alloc(apdu.length - 5, 0x2a)]) : apdu, raw);
    if (raw.length < 2) {
      // vpcd (and some readers) hand back an empty answer when the card goes away mid-command;
      // the reader notices the removal a poll later, so give it a moment before calling it garbage.
      if (await this.goneWithin(1200)) throw this.fail(new ReaderError('READER_CARD_REMOVED', 'The card was removed'));
      throw this.fail(new ReaderError('CARD_BAD_RESPONSE', `Response too short (${raw.length} bytes)`));
    }
    return parseResponse(raw);
  }

  private async goneWithin(ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    for (;;) {
      try {
        if (!this.card.status().present) return true;
      } catch (e) {
        if (isReaderError(e, 'READER_CARD_REMOVED') || isReaderError(e, 'READER_PCSC_UNAVAILABLE')) return true;
      }
      if (Date.now() >= end) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** A failed transmit on a card that is no longer there is a removal, whatever the driver said. */
  private classify(e: unknown): ReaderError {
    const err = isReaderError(e)
      ? e
      : new ReaderError('READER_IO', `Transmit failed: ${String((e as Error)?.message ?? e)}`, { cause: e });
    if (
      err.code === 'READER_TIMEOUT' ||
      err.code === 'READER_ABORTED' ||
      err.code === 'READER_CARD_REMOVED' ||
      err.code === 'READER_PCSC_UNAVAILABLE'
    )
      return err;
    try {
      if (!this.card.status().present)
        return new ReaderError('READER_CARD_REMOVED', 'The card was removed', { cause: err });
    } catch (s) {
      if (isReaderError(s, 'READER_CARD_REMOVED'))
        return new ReaderError('READER_CARD_REMOVED', 'The card was removed', { cause: err });
    }
    return err;
  }
}
