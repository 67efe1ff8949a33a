/** Maps SQLite / file-system failures to the store's typed errors. */
import { OnshiError, isOnshiError } from '../core/errors.js';
import type { StoreErrorCode } from './types.js';

const sqliteCode = (e: unknown): string | undefined => {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
};

/** "file is not a database" or a corrupt page: the file must be moved aside. */
export function isCorruption(e: unknown): boolean {
  const c = sqliteCode(e);
  return c === 'SQLITE_NOTADB' || c?.startsWith('SQLITE_CORRUPT') === true;
}

export function toStoreError(e: unknown, what: string): OnshiError {
  if (isOnshiError(e)) return e;
  const c = sqliteCode(e);
  const msg = e instanceof Error ? e.message : String(e);
  // ENOSPC surfaces as SQLITE_FULL from a write, or SQLITE_IOERR_SHMSIZE when the -shm cannot grow.
  if (c === 'SQLITE_FULL' || c === 'ENOSPC' || c === 'SQLITE_IOERR_SHMSIZE') {
    return new OnshiError<StoreErrorCode>('STORE_DISK_FULL', `${what}: the disk is full; nothing was stored`, {
      retryable: true,
      details: { sqlite: c },
      cause: e,
    });
  }
  if (isCorruption(e)) {
    return new OnshiError<StoreErrorCode>('STORE_CORRUPT', `${what}: the database is corrupt (${msg})`, {
      details: { sqlite: c ?? 'unknown' },
      cause: e,
    });
  }
  if (c?.startsWith('SQLITE_IOERR') || c === 'EIO') {
    return new OnshiError<StoreErrorCode>('STORE_IO', `${what}: I/O error (${msg})`, {
      retryable: true,
      details: { sqlite: c },
      cause: e,
    });
  }
  return new OnshiError<StoreErrorCode>('STORE_IO', `${what}: ${msg}`, {
    details: { sqlite: c ?? 'unknown' },
    cause: e,
  });
}
