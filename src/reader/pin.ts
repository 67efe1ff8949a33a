/**
 * PIN safety as a small state machine, pure apart from the injected I/O:
 *  - the PIN is validated (4 ASCII digits) before anything is sent; a bad format costs no try;
 *  - the tries left are read first and reported; at 0 nothing is sent (CARD_PIN_BLOCKED);
 *    at 1 an explicit confirmation is required (CARD_PIN_CONFIRM_REQUIRED);
 *  - exactly one VERIFY is sent per call, never a retry;
 *  - the caller's PIN buffer and the APDU holding it are wiped in `finally`, whatever happens.
 * The PIN never appears in an error, a log line or a return value.
 */
import { isValidPin, verifyPin as buildVerify, type ApduResponse } from './apdu.js';
import { ReaderError, errorFromSw } from './errors.js';

export interface PinOptions {
  /** Required when only one try is left: the user confirmed the last attempt. */
  confirmLastTry?: boolean;
}

export type PinState = 'new' | 'validated' | 'authorized' | 'sent' | 'done' | 'refused';

export interface PinIo {
  /** Empty VERIFY (63Cx): tries left, without spending one. */
  triesLeft(): Promise<number>;
  /** Sends one APDU. Called at most once, with the VERIFY. */
  sendVerify(apdu: Buffer): Promise<ApduResponse>;
}

export interface PinVerifyResult {
  triesLeftBefore: number;
}

export class PinAttempt {
  private state: PinState = 'new';
  private apdu: Buffer | undefined;

  constructor(private readonly pin: Buffer) {}

  get current(): PinState {
    return this.state;
  }

  validate(): void {
    this.expect('new');
    if (!Buffer.isBuffer(this.pin) || !isValidPin(this.pin)) {
      this.state = 'refused';
      throw new ReaderError('CARD_PIN_FORMAT', 'The PIN must be exactly 4 digits', { retryable: true });
    }
    this.state = 'validated';
  }

  authorize(triesLeft: number, opts: PinOptions): void {
    this.expect('validated');
    if (triesLeft <= 0) {
      this.state = 'refused';
      throw new ReaderError('CARD_PIN_BLOCKED', 'The PIN is blocked; it can only be reset at the municipal office', {
        details: { triesLeft: 0 },
      });
    }
    if (triesLeft === 1 && opts.confirmLastTry !== true) {
      this.state = 'refused';
      throw new ReaderError(
        'CARD_PIN_CONFIRM_REQUIRED',
        'Only one try is left: a wrong PIN will block the card. Confirm to continue.',
        { retryable: true, details: { triesLeft: 1 } },
      );
    }
    this.state = 'authorized';
  }

  /** The single VERIFY APDU; a second call throws. */
  takeApdu(): Buffer {
    this.expect('authorized');
    this.state = 'sent';
    this.apdu = buildVerify(this.pin);
    return this.apdu;
  }

  /** Interprets the VERIFY answer: resolves on 9000, throws the typed error otherwise. */
  finish(res: ApduResponse): void {
    this.expect('sent');
    this.state = 'done';
    if (res.sw === 0x9000) return;
    // 63Cx → CARD_PIN_WRONG {triesLeft} (63C0 = now blocked); 6983/6984 → CARD_PIN_BLOCKED.
    throw errorFromSw(res.sw, 'verify');
  }

  wipe(): void {
    if (Buffer.isBuffer(this.pin)) this.pin.fill(0);
    this.apdu?.fill(0);
  }

  private expect(s: PinState): void {
    if (this.state !== s) throw new ReaderError('READER_IO', `PIN state machine misuse: ${this.state}, expected ${s}`);
  }
}

/** Runs one PIN attempt end to end. Always wipes `pin`. */
export async function runPinVerify(pin: Buffer, opts: PinOptions, io: PinIo): Promise<PinVerifyResult> {
  const attempt = new PinAttempt(pin);
  try {
    attempt.validate();
    const triesLeftBefore = await io.triesLeft();
    attempt.authorize(triesLeftBefore, opts);
    attempt.finish(await io.sendVerify(attempt.takeApdu()));
    return { triesLeftBefore };
  } finally {
    attempt.wipe();
  }
}
