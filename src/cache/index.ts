/**
 * The gateway's durable state: eligibility cache, outbox, reconciliation, rechecks, batches, audit
 * log, revocation list, meta. The main thread's side is in store/ (one facade per area over the
 * writer channel), the writer thread's in writer-worker.ts and ops/. See docs/cache.md for the
 * schema, durability and encryption choices.
 */
export { GatewayStore } from './store/gateway-store.js';
export { DB_FILE } from './store/inputs.js';
export { verifyAuditFile, AuditLog, type AuditFilter } from './store/audit-log.js';
export { AuthFailureStore, type AuthFailureRecord } from './store/auth-failures.js';
export { BatchStore, type BatchListItem } from './store/batches.js';
export { EligibilityStore, type EligibilityWrite } from './store/eligibility.js';
export { MetaStore, RevocationStore } from './store/meta.js';
export {
  HISTORY_STEP_MS,
  type HistoryRow,
  HistoryStore,
  LATENCY_BOUNDS_MS,
  type LineEventRow,
} from './store/history.js';
export { OutboxStore, type DeadLetter } from './store/outbox.js';
export { RecheckStore } from './store/rechecks.js';
export { ReconciliationStore } from './store/reconciliation.js';
export {
  addMonths,
  cardShare,
  daysOf,
  jstDay,
  jstMonth,
  USAGE_PATIENT_MONTHS,
  type UsageDay,
  type UsageMethod,
  type UsageMonth,
  type UsagePatient,
  UsageStore,
} from './store/usage.js';
export { LATEST_VERSION } from './schema.js';
export type {
  AuditEntry,
  AuditFailure,
  AuditInput,
  AuditKind,
  AuditMode,
  AuditVerifyResult,
  BatchChunkRecord,
  BatchChunkState,
  BatchEntryInput,
  BatchEntryRecord,
  BatchEntryResultInput,
  BatchRecord,
  BatchState,
  CacheOptions,
  CompleteOutcome,
  LookupInput,
  OutboxEntry,
  OutboxState,
  OutboxStats,
  RecheckEntry,
  RecheckInput,
  RecheckState,
  RecheckUpdate,
  ReconciliationEntry,
  ReconciliationInput,
  StoreAlert,
  StoreErrorCode,
} from './types.js';
