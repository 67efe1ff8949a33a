/** The admin page: what the daemon wires in (see docs/operations.md, "The admin page"). */
export { AdminServer, startAdmin, type AdminServerOptions, type StartAdminOptions } from './server.js';
export {
  AdminAccounts,
  LoginLimiter,
  SessionStore,
  hashPassword,
  verifyPassword,
  passwordProblem,
  newInitialSecret,
  ADMIN_USER,
} from './auth.js';
export type { AdminAccount, AdminSession, InitialSecretResult, AdminAuthErrorCode } from './auth.js';
export { createAdminBackend, notAvailable, AuditFile } from './backend.js';
export type {
  AdminBackend,
  AdminBackendErrorCode,
  AdminClient,
  AuditEntry,
  BatchItem,
  ReconciliationItem,
  RecheckItem,
  SettingsView,
  BasicBackendOptions,
} from './backend.js';
