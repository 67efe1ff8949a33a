/**
 * The daemon's status snapshot (ops/status.ts: DaemonStatus), built from its parts each time it is
 * asked for: the API, the CLI, health, metrics and the admin page all read this one.
 */
import { type RevocationFreshness, revocationFreshness } from '../sync/crl.js';
import { X509Certificate } from 'node:crypto';
import type { EligibilityWrite, GatewayStore } from '../cache/index.js';
import type { GatewayConfig } from '../core/config.js';
import type { CentralClient } from '../sync/central-client.js';
import type { JobsService } from '../sync/jobs.js';
import type { LinkMonitor, LinkStatus } from '../sync/link.js';
import type { LineService } from '../sync/line/service.js';
import type { OutboxRelay } from '../sync/relay.js';
import type { RetryBudget } from '../sync/retry-budget.js';
import type { ReaderManager } from '../reader/index.js';
import type { WsApiServer } from '../api/ws-server.js';
import type { CertificateExpiry, DaemonStatus, ReaderState, StatusAlert } from '../ops/status.js';
import type { TlsIdentity } from '../ops/tls-identity.js';

const iso = (d: Date | undefined): string | undefined => d?.toISOString();

function linkView(l: LinkStatus): DaemonStatus['link'] {
  const out: DaemonStatus['link'] = {
    state: l.state,
    since: l.since.toISOString(),
    reason: l.reason,
    consecutiveFailures: l.consecutiveFailures,
  };
  const opt = {
    lastSuccessAt: iso(l.lastSuccessAt),
    lastFailureAt: iso(l.lastFailureAt),
    lastFailureCode: l.lastFailureCode,
    lastLatencyMs: l.lastLatencyMs,
    retryAfterUntil: iso(l.retryAfterUntil),
    nextProbeAt: iso(l.nextProbeAt),
  };
  for (const [k, v] of Object.entries(opt)) if (v !== undefined) (out as unknown as Record<string, unknown>)[k] = v;
  return out;
}

function certificateOf(name: string, pem: Buffer): CertificateExpiry | undefined {
  try {
    const c = new X509Certificate(pem);
    return { name, notAfter: new Date(c.validTo).toISOString(), fingerprint: c.fingerprint256 };
  } catch {
    return undefined;
  }
}

/** central's certificates as the status lists them (unparsable ones are left out). */
export function centralCertificates(cert: Buffer, ca: Buffer): CertificateExpiry[] {
  return [certificateOf('central-client', cert), certificateOf('central-ca', ca)].filter(
    (c): c is CertificateExpiry => c !== undefined,
  );
}

function readerState(reader: ReaderManager | undefined): {
  state: ReaderState;
  readers: { name: string; cardPresent: boolean }[];
} {
  if (!reader) return { state: 'disabled', readers: [] };
  const st = reader.status();
  const readers = st.readers.map((r) => ({ name: r.name, cardPresent: r.cardPresent }));
  return { state: st.pcsc === 'down' ? 'pcscd_down' : readers.length === 0 ? 'no_reader' : 'ready', readers };
}

export interface StatusParts {
  version: string;
  startedAt: string;
  config: GatewayConfig;
  store: GatewayStore;
  central: CentralClient;
  reader: ReaderManager | undefined;
  link: LinkMonitor;
  line: LineService;
  relay: OutboxRelay<EligibilityWrite>;
  budget: RetryBudget;
  jobs: JobsService;
  certificates: CertificateExpiry[];
  alerts: StatusAlert[];
  /** the servers that start after the status is first needed (health, admin): read at each call */
  servers: { api?: WsApiServer; tls?: TlsIdentity };
}

/** A revocation list past its nextUpdate is an alert: offline card proofs say so, then are refused. */
function revocationAlerts(crl: RevocationFreshness): StatusAlert[] {
  if (crl.state === 'stale')
    return [
      {
        code: 'REVOCATION_LIST_STALE',
        message: `The JPKI revocation list is past its nextUpdate (${crl.nextUpdate}) and could not be renewed; offline card checks are refused after ${crl.refuseAfter}. Check the line to central.`,
        details: { nextUpdate: crl.nextUpdate!, refuseAfter: crl.refuseAfter! },
      },
    ];
  if (crl.state === 'expired')
    return [
      {
        code: 'REVOCATION_LIST_EXPIRED',
        message: `The JPKI revocation list expired (${crl.nextUpdate}, grace until ${crl.refuseAfter}): offline card checks are refused until it is renewed. Check the line to central.`,
        details: { nextUpdate: crl.nextUpdate!, refuseAfter: crl.refuseAfter! },
      },
    ];
  return [];
}

export function buildStatus(p: StatusParts): DaemonStatus {
  const { store, servers } = p;
  const ws = servers.api;
  const tls = servers.tls;
  const ob = store.outbox.stats();
  const age = store.revocation.age();
  const crl = revocationFreshness(store.revocation.info(), new Date(), p.config.outage.revocationGraceHours * 3600_000);
  const l = p.link.status();
  const rd = readerState(p.reader);
  const clock = p.central.clock();
  const checks = {
    store: true,
    api: ws !== undefined,
    ...(p.config.reader.enabled ? { reader: rd.state === 'ready' } : {}),
  };
  return {
    version: p.version,
    startedAt: p.startedAt,
    now: new Date().toISOString(),
    ready: Object.values(checks).every(Boolean),
    checks,
    reader: { enabled: p.config.reader.enabled, ...rd },
    card: { present: rd.readers.some((r) => r.cardPresent) },
    line: {
      state: l.state,
      since: l.since.toISOString(),
      ...(l.lastSuccessAt ? { lastOkAt: l.lastSuccessAt.toISOString() } : {}),
      ...(l.lastFailureCode ? { lastError: l.lastFailureCode } : {}),
      ...p.line.report(),
    },
    link: linkView(l),
    outbox: {
      depth: ob.depth,
      ...(ob.oldestAt ? { oldestAt: ob.oldestAt.toISOString() } : {}),
      dead: ob.dead,
      fillRatio: ob.fillRatio,
      max: store.outboxMax,
      inFlight: p.relay.inFlight,
      overdue: store.outbox.overdueCount(new Date(Date.now() - p.config.outage.outboxTtlHours * 3600_000)),
    },
    cache: { entries: store.eligibility.count() },
    clock: {
      ...(clock.skewMs !== undefined ? { skewMs: clock.skewMs } : {}),
      ...(clock.checkedAt ? { checkedAt: clock.checkedAt.toISOString() } : {}),
    },
    certificates: p.certificates,
    ...(tls
      ? { tls: { fingerprint: tls.fingerprint, spkiSha256: tls.spkiSha256, notAfter: tls.notAfter.toISOString() } }
      : {}),
    api: {
      listening: ws !== undefined,
      ...(ws ? { port: ws.port, tls: ws.tls } : {}),
      connections: ws?.clientCount ?? 0,
      ...(ws?.stats() ?? { droppedEvents: 0, overflowCloses: 0 }),
    },
    reconciliation: { open: store.reconciliation.openCount() },
    revocation: {
      ...(age === undefined ? {} : { ageMs: age, fetchedAt: new Date(Date.now() - age).toISOString() }),
      ...crl,
    },
    retryBudget: p.budget.stats(),
    jobs: p.jobs.status(),
    alerts: [...p.alerts, ...revocationAlerts(crl)],
  };
}
