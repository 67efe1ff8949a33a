/**
 * The gateway's durable state: eligibility cache, outbox, reconciliation, revocation list, meta.
 * See docs/cache.md for the schema, durability and encryption choices.
 */
export { GatewayStore, DB_FILE, verifyAuditFile, type BatchListItem, type EligibilityWrite } from './store.js';
export { LATEST_VERSION } from './schema.js';
export type {
  AuditEntry,
  AuditFailure,
  AuditInput,
  AuditKind,
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
