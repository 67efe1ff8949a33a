/**
 * The write operations, run by the writer worker inside its batch transaction (see writer-worker.ts):
 * one module per area under ops/, composed here into the worker's handler table. Each op is
 * synchronous and throws OnshiError for refusals; the caller wraps it in a savepoint.
 */
import type Database from 'better-sqlite3';
import { createAuditOps } from './audit.js';
import { createAuthFailureOps } from './ops/auth-failures.js';
import type { CacheKeys } from './crypto.js';
import { createBatchOps } from './ops/batches.js';
import { createEligibilityOps } from './ops/eligibility.js';
import { createHistoryOps } from './ops/history.js';
import { createMetaOps } from './ops/meta.js';
import type { Op } from './ops/op.js';
import { createOutboxOps } from './ops/outbox.js';
import { createRecheckOps } from './ops/rechecks.js';
import { createReconciliationOps } from './ops/reconciliation.js';
import { createUsageOps } from './ops/usage.js';
import type { OpName } from './protocol.js';

export { AAD, KEY_CHECK_PLAIN, META_REVOCATION_FETCHED_AT } from './aad.js';

type Handlers = { [K in OpName]: Op<K> };

export function createWriterOps(db: Database.Database, keys: CacheKeys, outboxMax: number): Handlers {
  const eligibility = createEligibilityOps(db, keys);
  const audit = createAuditOps(db, keys);
  return {
    ...eligibility,
    ...createOutboxOps(db, keys, outboxMax, eligibility),
    ...createReconciliationOps(db, keys),
    ...createRecheckOps(db, keys),
    ...createMetaOps(db, keys),
    ...createAuthFailureOps(db),
    ...createHistoryOps(db),
    ...createUsageOps(db),
    appendAudit: audit.appendAudit,
    purgeAuditPersonal: audit.purgeAuditPersonal,
    ...createBatchOps(db, keys),
    close: () => null,
  };
}
