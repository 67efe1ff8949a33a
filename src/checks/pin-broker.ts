/**
 * Hands a PIN from a `pin.submit` request to the card inquiry waiting for it — on the same
 * connection only, at most once per prompt. The PIN becomes a Buffer the reader wipes after its
 * single VERIFY; nothing here keeps it.
 */
import { OnshiError } from '../core/errors.js';

export interface PinEntry {
  pin: Buffer;
  confirmLastTry: boolean;
}

interface Waiter {
  resolve(e: PinEntry): void;
  reject(e: unknown): void;
}

export class PinBroker {
  private readonly waiting = new Map<string, Waiter>();

  /** Waits for the next PIN for (connection, inquiry); rejects when the signal aborts. */
  wait(connectionId: string, inquiryId: string, signal: AbortSignal): Promise<PinEntry> {
    const key = `${connectionId}\u0000${inquiryId}`;
    return new Promise<PinEntry>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const onAbort = (): void => {
        this.waiting.delete(key);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.set(key, {
        resolve: (e) => {
          signal.removeEventListener('abort', onAbort);
          resolve(e);
        },
        reject,
      });
    });
  }

  /** Delivers a PIN; PIN_NOT_EXPECTED when that inquiry is not waiting for one on this connection. */
  submit(connectionId: string, inquiryId: string, pin: string, confirmLastTry: boolean): void {
    const key = `${connectionId}\u0000${inquiryId}`;
    const w = this.waiting.get(key);
    if (!w)
      throw new OnshiError('PIN_NOT_EXPECTED', `inquiry ${inquiryId} is not waiting for a PIN on this connection`);
    this.waiting.delete(key);
    w.resolve({ pin: Buffer.from(pin, 'ascii'), confirmLastTry });
  }
}
