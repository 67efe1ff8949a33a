/** What the facades share: typed refusals, the checks on their inputs, and the view of the store they work on. */
import type Database from 'better-sqlite3';
import { OnshiError } from '../../core/errors.js';
import type { CacheKeys } from '../crypto.js';
import type { OpArgs, OpName, OpResult } from '../protocol.js';
import { toStoreError } from '../sqlite-errors.js';
import type { CallOptions, StoreErrorCode } from '../types.js';

export const DB_FILE = 'gateway.db';

export const err = (
  code: StoreErrorCode,
  message: string,
  details?: Record<string, unknown>,
): OnshiError<StoreErrorCode> => new OnshiError<StoreErrorCode>(code, message, details ? { details } : {});

export function validDate(d: Date, name: string): number {
  const ms = d instanceof Date ? d.getTime() : NaN;
  if (!Number.isFinite(ms)) throw err('STORE_INPUT_INVALID', `${name} must be a valid Date`);
  return ms;
}

/** A short code kept in clear (an audit action or outcome, a recheck's validity). */
export const CODE_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * What every facade works on: writes go to the writer thread (`call`), reads run on the main
 * thread's read-only connection (`reader`, through `read`), blobs open with `keys`.
 */
export interface StoreContext {
  readonly reader: Database.Database;
  readonly keys: CacheKeys;
  /** Throws STORE_CLOSED after close, or the writer's failure. */
  assertOpen(): void;
  call<K extends OpName>(op: K, args: OpArgs<K>, opts?: CallOptions): Promise<OpResult<K>>;
}

/** A read on the reader connection, its SQLite errors as typed store errors. */
export function read<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw toStoreError(e, 'reading');
  }
}
