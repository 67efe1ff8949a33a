/**
 * Everything the admin page shows or changes goes through AdminBackend, which the daemon
 * implements. createAdminBackend() gives the parts that exist today (status, clients, settings,
 * an admin audit file, backup/restore of state files, the support bundle); the daemon overrides the
 * rest (reconciliation, rechecks, batches, the store's audit log) as the store is wired in.
 */
import type { RecheckItem } from '../checks/rechecks.js';
import { appendFileSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.js';
import { OnshiError } from '../core/errors.js';
import {
  type BackupPlan,
  backupFileName,
  collectBackupFiles,
  packBackup,
  restoreFiles,
  unpackBackup,
} from '../ops/backup.js';
import type { BatchListItem, HistoryRow, UsageDay, UsageMonth } from '../cache/index.js';
import type { ClientRecord, ClientStore } from '../api/tokens.js';
import { effectiveScopes, type Scope, SCOPES } from '../protocol/scopes.js';
import { type GatewayConfig, validateConfig } from '../core/config.js';
import { buildSupportBundle } from '../ops/support-bundle.js';
import { withoutDefaults } from './settings-diff.js';
import type { GatewayStatus, StatusSource } from '../ops/status.js';

export type AdminBackendErrorCode =
  | 'ADMIN_NOT_AVAILABLE'
  | 'ADMIN_NOT_FOUND'
  | 'ADMIN_SETTINGS_READONLY'
  | 'CLIENT_SCOPE_INVALID';

/**
 * A check whose answer changed when it was re-verified with central, with what staff need to find
 * the patient and act: the name and insurance as answered (decrypted on the box, shown only to a
 * logged-in admin) and the receipt computer's own reference.
 */
export interface ReconciliationItem {
  id: string;
  checkedAt: string;
  reverifiedAt: string;
  kind: 'card' | 'numbers';
  /** the receipt computer that asked */
  client: string;
  /** its reference for the patient or visit (as it sent it), if any */
  patientRef?: string;
  /** the patient as the answers named them, so staff can find them */
  patient?: { name: string; nameKana?: string; birthdate?: string; insurerNumber?: string; symbolNumber?: string };
  /** e.g. "有効" → "無効" */
  before: string;
  after: string;
  handledAt?: string;
  handledBy?: string;
}

export type { RecheckItem };

/** One row of the batches page: the store gives it as it is (GatewayStore.listBatches). */
export type BatchItem = BatchListItem;

export interface AuditEntry {
  /** where the next page starts (older entries): opaque to the page */
  cursor?: string;
  at: string;
  /** "admin", a client name, "system" */
  actor: string;
  action: string;
  /** what the store keeps beside a check's action: its mode, source and result code */
  detail?: string[];
  target?: string;
  outcome: 'ok' | 'refused' | 'failed';
  remote?: string;
}

/** What the audit page selects: every field optional but the page size. */
export interface AuditQuery {
  limit: number;
  /** a cursor from an entry of the previous page: entries older than it */
  before?: string;
  kind?: 'check' | 'admin' | 'token';
  outcome?: AuditEntry['outcome'];
  /** a substring of the action, actor or target */
  q?: string;
  /** receipt computers' ids whose names match `q` (the chain keeps their ids) */
  actors?: string[];
  /** actions whose words (on the page) match `q` */
  actions?: string[];
  /** at >= from, at < to (ms) */
  from?: number;
  to?: number;
}

/** What the event log shows (event-log.ts says which audit entries are which). */
export type EventKind = 'outage' | 'tunnel' | 'restart' | 'cert' | 'store' | 'dead';

export interface EventItem {
  cursor: string;
  kind: EventKind;
  at: string;
  /** the audit action (line.state.down, gateway.start…) or `outbox.dead` */
  action: string;
  /** the reason, version, alert code, certificate or error code, as recorded */
  target?: string;
  /** an outage's end (absent while it lasts) */
  endedAt?: string;
}

export interface EventQuery {
  limit: number;
  before?: string;
  kind?: EventKind;
  from?: number;
  to?: number;
}

export interface AdminClient {
  id: string;
  name: string;
  createdAt: string;
  revokedAt?: string;
  /** what the token may do (src/protocol/scopes.ts); tokens from before scopes are full */
  scopes: Scope[];
  /** open WebSocket connections now; undefined when the API's activity is not known */
  connections?: number;
  /** when it last connected or sent a request, since the gateway started */
  lastSeenAt?: string;
}

/** The scopes a token made on the page may hold: kiosk tokens are made by pairing (the kiosks page). */
export const PAGE_SCOPES: readonly Scope[] = SCOPES.filter((s) => s !== 'kiosk');

/** One change of the line's state or of its tunnel, from the audit chain. */
export interface LineEvent {
  at: number;
  kind: 'state' | 'tunnel';
  state: 'up' | 'degraded' | 'down';
  /** the link monitor's or strongSwan's reason, as they gave it */
  reason?: string;
}

export interface SettingsView {
  config: GatewayConfig;
  /** the file the settings are saved to */
  file: string;
  writable: boolean;
}

/** マイナ保険証 use (the /usage page): every month counted, and the days of the chosen one. */
export interface UsageData {
  months: UsageMonth[];
  days: UsageDay[];
}

export interface AdminBackend {
  status(): Promise<GatewayStatus>;
  listReconciliation(opts: { includeHandled: boolean }): Promise<ReconciliationItem[]>;
  markHandled(id: string, by: string): Promise<void>;
  listRechecks(): Promise<RecheckItem[]>;
  listBatches(): Promise<BatchItem[]>;
  listClients(): Promise<AdminClient[]>;
  /** the 5-minute history rows since `since` (ms), oldest first */
  listHistory(since: number): Promise<HistoryRow[]>;
  /** the line's state changes and tunnel ups and downs since `since`, led by the state before it */
  listLineEvents(since: number): Promise<LineEvent[]>;
  /** マイナ保険証 use: every month counted, and the days of `month` (YYYY-MM, JST) */
  listUsage(month: string): Promise<UsageData>;
  /**
   * The token is returned once, to be shown once. The name follows ClientStore.newClientName (the
   * CLI's rule too): trimmed; blank (CLIENT_NAME_INVALID) and the name of an active client
   * (CLIENT_NAME_TAKEN) are refused. Scopes default to inquiry.
   */
  addClient(name: string, scopes?: readonly string[]): Promise<{ client: AdminClient; token: string }>;
  revokeClient(id: string): Promise<AdminClient>;
  listAudit(query: AuditQuery): Promise<AuditEntry[]>;
  /** the event log, newest first: outages (with their end), tunnel changes, starts and stops, alerts, dead letters */
  listEvents(query: EventQuery): Promise<EventItem[]>;
  recordAudit(entry: Omit<AuditEntry, 'at'>): Promise<void>;
  getSettings(): Promise<SettingsView>;
  /** validated by the config schema; CONFIG_INVALID names each bad key. Applied at the next start. */
  putSettings(input: unknown): Promise<{ config: GatewayConfig; restartRequired: boolean }>;
  createBackup(passphrase: string | undefined): Promise<{ filename: string; data: Buffer; skipped: string[] }>;
  restoreBackup(
    data: Buffer,
    passphrase: string | undefined,
  ): Promise<{ restored: string[]; skipped: string[]; restartRequired: boolean }>;
  supportBundle(): Promise<{ filename: string; data: Buffer }>;
  /**
   * Ends the daemon so that its supervisor starts it again (systemd: exit code 75 under
   * Restart=on-failure, see cli/start.ts); absent when nothing would start it again.
   */
  restart?: () => void;
}

export const notAvailable = (what: string): OnshiError<AdminBackendErrorCode> =>
  new OnshiError<AdminBackendErrorCode>(
    'ADMIN_NOT_AVAILABLE',
    `${what} is not available in this version of the gateway`,
  );

export interface BasicBackendOptions {
  status: StatusSource;
  clients: ClientStore;
  /** the config file the daemon was started with */
  configFile: string;
  stateDir: string;
  /** credentials to include in a backup made from the page (the daemon's $CREDENTIALS_DIRECTORY) */
  credentialsDir?: string;
  /** recent log text for the support bundle (e.g. a LogRing) */
  logs?: () => string;
  /** the running config, for the support bundle */
  config: GatewayConfig;
  /** the WebSocket API's clients seen since start (connections now, last seen) */
  clientActivity?: () => { id: string; connections: number; lastSeenAt: string }[];
  /** see AdminBackend.restart */
  restart?: () => void;
}

/** The parts that exist now; spread overrides over it: `{ ...createAdminBackend(o), listRechecks: … }`. */
export function createAdminBackend(o: BasicBackendOptions): AdminBackend {
  const audit = new AuditFile(join(o.stateDir, 'admin-audit.jsonl'));
  const plan: BackupPlan = {
    configFile: o.configFile,
    stateDir: o.stateDir,
    ...(o.credentialsDir ? { credentialsDir: o.credentialsDir } : {}),
  };
  const publicClient = ({ hash: _h, reader: _r, ...c }: ClientRecord): AdminClient => ({
    ...c,
    scopes: effectiveScopes(c.scopes),
  });
  const withActivity = (list: AdminClient[]): AdminClient[] => {
    if (!o.clientActivity) return list;
    const seen = new Map(o.clientActivity().map((a) => [a.id, a]));
    return list.map((c) => {
      const a = seen.get(c.id);
      return { ...c, connections: a?.connections ?? 0, ...(a ? { lastSeenAt: a.lastSeenAt } : {}) };
    });
  };
  return {
    status: async () => o.status.status(),
    listReconciliation: () => Promise.reject(notAvailable('the reconciliation list')),
    markHandled: () => Promise.reject(notAvailable('the reconciliation list')),
    listRechecks: () => Promise.reject(notAvailable('the recheck list')),
    listBatches: () => Promise.reject(notAvailable('the batch list')),
    listHistory: () => Promise.reject(notAvailable('the history')),
    listLineEvents: () => Promise.reject(notAvailable("the line's history")),
    listUsage: () => Promise.reject(notAvailable('the use counts')),
    listClients: async () => withActivity(o.clients.list().map(publicClient)),
    addClient: async (raw, scopes = ['inquiry']) => {
      const name = o.clients.newClientName(raw);
      const bad = scopes.filter((s) => !(PAGE_SCOPES as readonly string[]).includes(s));
      if (bad.length > 0 || scopes.length === 0)
        throw new OnshiError<AdminBackendErrorCode>(
          'CLIENT_SCOPE_INVALID',
          `choose one or more of ${PAGE_SCOPES.join(', ')} (kiosks are paired on the kiosks page)`,
        );
      const { client, token } = o.clients.add(name, scopes);
      return { client: publicClient(client), token };
    },
    revokeClient: async (id) => publicClient(o.clients.revoke(id)),
    listAudit: async (q) => audit.list(q),
    listEvents: () => Promise.reject(notAvailable('the event log')),
    recordAudit: async (e) => audit.append(e),
    getSettings: async () => ({
      config: readConfigFile(o.configFile),
      file: o.configFile,
      writable: isWritable(o.configFile),
    }),
    putSettings: async (input) => {
      const config = validateConfig(input);
      try {
        // Only what differs from the defaults: a default frozen into the file would never change again.
        writeFileAtomic(o.configFile, JSON.stringify(withoutDefaults(config), null, 2) + '\n', 0o644);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new OnshiError<AdminBackendErrorCode>(
          'ADMIN_SETTINGS_READONLY',
          `cannot write ${o.configFile} (${code ?? 'error'}): edit it as root and restart the gateway`,
          { details: { file: o.configFile } },
        );
      }
      return { config, restartRequired: true };
    },
    createBackup: async (passphrase) => {
      const { files, skipped } = collectBackupFiles(plan);
      return {
        filename: backupFileName(),
        data: await packBackup(files, passphrase),
        skipped: skipped.map((s) => `${s.path} (${s.reason})`),
      };
    },
    restoreBackup: async (data, passphrase) => {
      // From the page only the state directory is written: the config and the credentials are
      // root's (read-only to the service); `sudo onshi restore` puts those back.
      const archive = await unpackBackup(data, passphrase);
      const r = restoreFiles(archive, plan, { areas: ['state'] });
      return {
        restored: r.restored,
        skipped: r.skipped.map((s) => `${s.name} (${s.reason})`),
        restartRequired: r.restored.length > 0,
      };
    },
    supportBundle: async () =>
      buildSupportBundle({
        config: o.config,
        status: await o.status.status(),
        ...(o.logs ? { logs: o.logs() } : {}),
      }),
    ...(o.restart ? { restart: o.restart } : {}),
  };
}

/** The config file as written (without defaults filled), validated; a missing file is all defaults. */
function readConfigFile(file: string): GatewayConfig {
  let raw: unknown = {};
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return validateConfig(raw);
}

function isWritable(file: string): boolean {
  try {
    const st = statSync(file);
    const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
    return uid === 0 || (st.uid === uid && (st.mode & 0o200) !== 0) || (st.mode & 0o002) !== 0;
  } catch {
    return true; // absent: it will be created
  }
}

/**
 * Admin actions (logins, token changes, settings) as JSON lines in the state directory, rotated at
 * 1 MiB (one old file kept). The store's audit log replaces this once it is wired in.
 */
export class AuditFile {
  constructor(
    readonly path: string,
    private readonly maxBytes = 1 << 20,
  ) {}

  append(e: Omit<AuditEntry, 'at'>): void {
    try {
      if (statSync(this.path).size > this.maxBytes) renameSync(this.path, `${this.path}.1`);
    } catch {
      /* not there yet */
    }
    appendFileSync(this.path, JSON.stringify({ at: new Date().toISOString(), ...e }) + '\n', { mode: 0o600 });
  }

  /** The file holds admin actions only, a few MiB at most: filtered here, the store filters in SQL. */
  list(q: AuditQuery): AuditEntry[] {
    const read = (p: string): AuditEntry[] => {
      try {
        return readFileSync(p, 'utf8')
          .split('\n')
          .filter(Boolean)
          .flatMap((l) => {
            try {
              return [JSON.parse(l) as AuditEntry];
            } catch {
              return [];
            }
          });
      } catch {
        return [];
      }
    };
    const text = q.q?.trim().toLowerCase();
    const kindOf = (e: AuditEntry): string => (e.action.startsWith('client.') ? 'token' : 'admin');
    return [...read(`${this.path}.1`), ...read(this.path)]
      .reverse()
      .filter(
        (e) =>
          (q.before === undefined || e.at < q.before) &&
          (q.kind === undefined || kindOf(e) === q.kind) &&
          (q.outcome === undefined || e.outcome === q.outcome) &&
          (q.from === undefined || Date.parse(e.at) >= q.from) &&
          (q.to === undefined || Date.parse(e.at) < q.to) &&
          (!text || [e.action, e.actor, e.target ?? ''].some((f) => f.toLowerCase().includes(text))),
      )
      .slice(0, q.limit)
      .map((e) => ({ ...e, cursor: e.at }));
  }
}
