/**
 * The additional authenticated data each encrypted column is sealed with: it binds a blob to its
 * table, purpose and row, so a blob copied to another row or column fails to open. Shared by the
 * writer (which seals) and the readers (which open).
 */
export const AAD = {
  eligibility: (lookupHex: string, verifiedAt: number, source: string) => ({
    table: 'eligibility',
    purpose: 'answer',
    row: `${lookupHex}|${verifiedAt}|${source}`,
  }),
  outbox: (id: number) => ({ table: 'outbox', purpose: 'payload', row: String(id) }),
  reconBefore: (id: number) => ({ table: 'reconciliation', purpose: 'before', row: String(id) }),
  reconAfter: (id: number) => ({ table: 'reconciliation', purpose: 'after', row: String(id) }),
  recheckPersonal: (id: number) => ({ table: 'rechecks', purpose: 'personal', row: String(id) }),
  recheckFound: (id: number) => ({ table: 'rechecks', purpose: 'found', row: String(id) }),
  keyCheck: { table: 'meta', purpose: 'key_check', row: 'store.key_check' },
} as const;

export const BATCH_AAD = {
  query: (batchId: string, seq: number) => ({ table: 'batch_entries', purpose: 'query', row: `${batchId}|${seq}` }),
  result: (batchId: string, seq: number) => ({ table: 'batch_entries', purpose: 'result', row: `${batchId}|${seq}` }),
} as const;

export const KEY_CHECK_PLAIN = 'onshi-cache key check';
export const META_REVOCATION_FETCHED_AT = 'store.revocation_fetched_at';
/** The held list's thisUpdate/nextUpdate (ms) and CRL number, so an older list is refused after a restart too. */
export const META_REVOCATION_INFO = 'store.revocation_info';
