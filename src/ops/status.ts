/**
 * What the daemon reports about itself: one snapshot type shared by the health endpoints, the
 * metrics, the admin dashboard and `onshi status`. No personal data: states, counts and times only.
 */
import type { JobStatus } from '../sync/jobs.js';

export type { JobStatus };

export type LinkState = 'up' | 'degraded' | 'down' | 'unknown';
export type ReaderState = 'ready' | 'no_reader' | 'pcscd_down' | 'disabled' | 'unknown';

export interface CertificateExpiry {
  /** e.g. "gateway-tls", "central-client", "central-ca" */
  name: string;
  notAfter: string;
  fingerprint?: string;
}

export interface GatewayStatus {
  version: string;
  startedAt: string;
  /** the gateway's clock when the snapshot was taken (ISO) */
  now: string;
  /** ready to serve: every entry in `checks` is true */
  ready: boolean;
  /** readiness parts, e.g. { store: true, api: true } */
  checks: Record<string, boolean>;
  reader: {
    enabled: boolean;
    state: ReaderState;
    readers: { name: string; cardPresent: boolean }[];
  };
  card: {
    present: boolean;
    /** what the card flow is doing, e.g. "idle", "reading", "pin", "signing" */
    stage?: string;
  };
  line: {
    state: LinkState;
    since?: string;
    lastOkAt?: string;
    /** an error code (e.g. CENTRAL_TIMEOUT), never a message with data in it */
    lastError?: string;
  };
  /** absent in a snapshot made without the store (e.g. `onshi status` with the daemon stopped) */
  outbox?: { depth: number; oldestAt?: string } & Partial<OutboxStatus>;
  cache?: { entries: number; bytes?: number };
  clock: {
    /** gateway minus central, from central's Date header; absent until measured */
    skewMs?: number;
    checkedAt?: string;
  };
  certificates: CertificateExpiry[];
  tls?: { fingerprint: string; spkiSha256: string; notAfter: string };
  /** the scheduled jobs: next run and last result (absent without the daemon) */
  jobs?: JobStatus[];
  /** what staff must see (certificate expiring, store moved aside…); the daemon always sends it */
  alerts?: StatusAlert[];
  api: {
    listening: boolean;
    port?: number /** wss:// */;
    tls?: boolean;
    connections: number;
    /** flow control since start: topic events dropped above the high-water mark, connections closed 1013 at the hard limit */
    droppedEvents?: number;
    overflowCloses?: number;
  };
}

export interface OutboxStatus {
  depth: number;
  oldestAt?: string;
  /** refused by central on replay: kept, listed, counted */
  dead: number;
  fillRatio: number;
  max: number;
  inFlight: number;
  /** older than outage.outboxTtlHours and still waiting */
  overdue: number;
}

/** Something staff must see (store moved aside, certificate expiring…): a code and a sentence. */
export interface StatusAlert {
  code: string;
  message: string;
  details?: Record<string, string | number | boolean>;
}

/** What the running daemon reports: the snapshot plus the outage machinery's own figures. */
export interface DaemonStatus extends GatewayStatus {
  outbox: OutboxStatus;
  cache: { entries: number };
  /** the line monitor's full view (reason, failures in a row, Retry-After…) */
  link: {
    state: Exclude<LinkState, 'unknown'>;
    since: string;
    reason: string;
    consecutiveFailures: number;
    lastSuccessAt?: string;
    lastFailureAt?: string;
    lastFailureCode?: string;
    lastLatencyMs?: number;
    retryAfterUntil?: string;
    nextProbeAt?: string;
  };
  reconciliation: { open: number };
  /** the JPKI revocation list: its age and, from its own dates, whether offline card proofs may use it */
  revocation: {
    ageMs?: number;
    fetchedAt?: string;
    state: 'none' | 'current' | 'stale' | 'expired';
    thisUpdate?: string;
    nextUpdate?: string;
    refuseAfter?: string;
    staleForMs?: number;
  };
  retryBudget: { requests: number; retries: number; refused: number; tokens: number };
  /** the scheduled jobs (sync/jobs.ts): schedule, next run, last result */
  jobs: JobStatus[];
  alerts: StatusAlert[];
}

/** The daemon implements this; health, metrics and the admin page only read through it. */
export interface StatusSource {
  status(): GatewayStatus | Promise<GatewayStatus>;
}
