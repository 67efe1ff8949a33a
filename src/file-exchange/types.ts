/** What the file exchange is given, its error codes, and what its parts share. */
import type { InquiryResult } from '../checks/result.js';
import type { FileExchangeConfig } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { BatchReceipt, BatchResult, BatchSubmitRequest } from '../oqs/index.js';
import type { NumbersQueryInput } from '../protocol/schema.js';

export type FileExchangeErrorCode =
  | 'FX_FOLDER_MISSING' // a configured folder does not exist (never created: spec §7)
  | 'FX_UNSUPPORTED' // a request kind the gateway does not answer (照会番号, 医療扶助, 薬剤/健診 …)
  | 'FX_INSTITUTION_MISMATCH' // the request names another 医療機関コード
  | 'FX_NOT_A_FILE'; // the request is a symbolic link (never followed) or not a regular file

export interface FileExchangeDeps {
  options: FileExchangeConfig;
  institutionCode: string;
  stateDir: string;
  logger: Logger;
  /** the inquiry flow of the WebSocket API (inquireByNumbers with the daemon's deps) */
  inquire(input: {
    query: NumbersQueryInput;
    confirmationDate: string;
    requestId: string;
    clientId: string;
    deadline: number;
    idempotencyKey: string;
  }): Promise<InquiryResult>;
  central: {
    submitBatch(req: BatchSubmitRequest, call: { deadline: number; idempotencyKey?: string }): Promise<BatchReceipt>;
    fetchBatch(receptionNumber: string, institutionCode: string, call: { deadline: number }): Promise<BatchResult>;
  };
  /** how long one call to central may take (config central.timeoutMs) */
  centralTimeoutMs: number;
}

/** An answer file's bytes and what the log says about it (no personal data). */
export interface Answer {
  bytes: Buffer;
  outcome: Record<string, unknown>;
}

/** Logs a warning once per key until the key is cleared (a folder that stays unreadable is not logged every scan). */
export interface WarnOnce {
  (key: string, message: string, meta: Record<string, unknown>): void;
  clear(key: string): void;
}

export function warnOnce(logger: Logger): WarnOnce {
  const warned = new Set<string>();
  const warn = (key: string, message: string, meta: Record<string, unknown>): void => {
    if (warned.has(key)) return;
    warned.add(key);
    logger.warn(message, meta);
  };
  return Object.assign(warn, { clear: (key: string) => void warned.delete(key) });
}

/** Thrown into work the shutdown abandons (a batch wait): such a request is answered after the restart. */
export class ShuttingDown extends Error {}

/** Waits `ms`, or rejects with ShuttingDown when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new ShuttingDown());
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new ShuttingDown());
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
