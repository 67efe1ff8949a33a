/**
 * What the daemon reports about itself: one snapshot type shared by the health endpoints, the
 * metrics, the admin dashboard and `onshi status`. No personal data: states, counts and times only.
 */

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
  /** absent until the store is wired in */
  outbox?: { depth: number; oldestAt?: string };
  cache?: { entries: number; bytes?: number };
  clock: {
    /** gateway minus central, from central's Date header; absent until measured */
    skewMs?: number;
    checkedAt?: string;
  };
  certificates: CertificateExpiry[];
  tls?: { fingerprint: string; spkiSha256: string; notAfter: string };
  api: { listening: boolean; port?: number; connections: number };
}

/** The daemon implements this; health, metrics and the admin page only read through it. */
export interface StatusSource {
  status(): GatewayStatus | Promise<GatewayStatus>;
}
