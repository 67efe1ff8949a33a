/**
 * The daemon's composition root. Checks the config and reads its files (nothing is running yet),
 * then starts the services in order — log ring, store, central, reader, checks, jobs, servers, API —
 * and tells systemd it is ready. A stop (SIGTERM) runs the list backwards: systemd hears "stopping",
 * the API answers what is in flight, then everything else closes. A failed start stops what had
 * started (lifecycle.ts) and rethrows the step's error.
 */
import { readFileSync } from 'node:fs';
import type { EligibilityWrite, GatewayStore } from '../cache/index.js';
import type { GatewayConfig } from '../core/config.js';
import { createLogger, type Logger } from '../core/logger.js';
import type { LinkMonitor } from '../sync/link.js';
import type { OutboxRelay } from '../sync/relay.js';
import { PinBroker } from '../checks/pin-broker.js';
import type { RecheckJob } from '../checks/rechecks.js';
import { inquireByNumbers } from '../checks/numbers.js';
import { EventHub } from '../protocol/events.js';
import { createHandlers } from '../api/handlers.js';
import type { GatewayMetrics } from '../ops/metrics.js';
import { createNotifier, type Notifier } from '../ops/sd-notify.js';
import type { DaemonStatus, StatusAlert } from '../ops/status.js';
import type { TlsIdentity } from '../ops/tls-identity.js';
import { AuditRecorder } from './audit.js';
import { CheckParts } from './check-parts.js';
import { createJobs, defineJobs } from './jobs.js';
import { Lifecycle } from './lifecycle.js';
import { createLine, reportLine } from './line.js';
import { centralPart, lifeAuditPart, logRingPart, readerPart, storePart, tokenAuditPart } from './parts.js';
import { prepare, type StartupErrorCode } from './prepare.js';
import {
  adminPart,
  apiPart,
  fileExchangePart,
  healthPart,
  kioskPart,
  metricsPart,
  readyPart,
  type Servers,
  tlsPart,
} from './servers.js';
import { buildStatus, centralCertificates } from './status.js';
import { KioskDesk } from '../kiosk/desk.js';

export type { StartupErrorCode };

export interface Gateway {
  readonly wsPort: number;
  /** the WebSocket API is wss:// (the gateway's own certificate) */
  readonly wsTls: boolean;
  readonly adminPort: number | undefined;
  readonly healthPort: number | undefined;
  /** the patient kiosk page's port (undefined when kiosk.enabled is false) */
  readonly kioskPort: number | undefined;
  /** the kiosks' staff side (pairing codes, last checks, faces to confirm) */
  readonly kiosks: KioskDesk;
  /** the gateway's own certificate (admin page, wss); undefined when neither needs it */
  readonly tls: TlsIdentity | undefined;
  readonly config: GatewayConfig;
  readonly store: GatewayStore;
  readonly link: LinkMonitor;
  readonly relay: OutboxRelay<EligibilityWrite>;
  readonly events: EventHub;
  readonly metrics: GatewayMetrics;
  readonly rechecks: RecheckJob;
  /** everything `status` reports, for the API, the CLI, health and the admin page */
  status(): DaemonStatus;
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  notifier?: Notifier;
  configFile?: string;
  /** tests only: fail right after the start step of this name (test/integration/daemon-failed-start) */
  failAt?: string;
  /**
   * The admin page's restart button: given when a supervisor (systemd) starts the daemon again
   * after it exits (cli/start.ts); the page offers no button without it.
   */
  onRestartRequest?: () => void;
}

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export async function startGateway(config: GatewayConfig, opts: StartOptions = {}): Promise<Gateway> {
  const logger = opts.logger ?? createLogger({ level: config.log.level });
  // Refusals first (an insecure listen address, a missing file, a bad schedule): nothing runs yet.
  const { secrets, clients } = prepare(config, logger);
  const jobs = createJobs(config, { logger, revocation: secrets.jpkiCas.length > 0 });
  const line = createLine(config, secrets);
  const notifier = opts.notifier ?? createNotifier();
  const events = new EventHub();
  const alerts: StatusAlert[] = [];
  const servers: Servers = {};
  const pins = new PinBroker();
  const kiosks = new KioskDesk(clients);
  const life = new Lifecycle({ logger, ...(opts.failAt ? { failAt: opts.failAt } : {}) });
  return life.boot(async () => {
    const logRing = await life.use(logRingPart(logger));
    const store = await life.use(storePart(config, { logger, events, alerts }));
    const central = await life.use(centralPart(config, secrets));
    const reader = await life.use(readerPart(config, { logger, events }));
    reportLine(line, { logger, events, store });
    await life.start(line);
    const parts = await life.start(new CheckParts({ config, store, central, events, logger, line }));
    const { rechecks, outage } = parts;
    await life.use(tokenAuditPart(clients, store, logger));
    const { centralCert, jpkiCas } = secrets;
    defineJobs(jobs, { ...parts, config, logger, store, central, centralCert, jpkiCas, alerts });
    await life.start(jobs);

    const certificates = centralCertificates(centralCert, secrets.centralCa);
    await life.use(lifeAuditPart(store, { version: VERSION, logger, certificates }));
    const snapshot = { version: VERSION, startedAt: new Date().toISOString(), config, store, central, reader };
    const status = {
      status: (): DaemonStatus => buildStatus({ ...snapshot, ...parts, line, jobs, certificates, alerts, servers }),
    };
    const metrics = await life.use(metricsPart(status, VERSION));
    await life.use(tlsPart(config, logger, servers));
    const health = await life.use(healthPart(config, { status, metrics, logger, servers }));
    const admin = await life.use(
      adminPart(config, {
        status,
        clients,
        store,
        events,
        logRing,
        logger,
        servers,
        kiosk: kiosks,
        configFile: opts.configFile,
        ...(opts.onRestartRequest ? { restart: opts.onRestartRequest } : {}),
      }),
    );
    const numbers = { central, institutionCode: config.institutionCode, outage };
    const fx = await life.use(
      fileExchangePart(config, { logger, central, inquire: (i) => inquireByNumbers(numbers, i) }),
    );

    const recorder = new AuditRecorder({ store, logger, metrics });
    const revocation = {
      isRevoked: (s: string) => store.revocation.isRevoked(s),
      revocationAge: () => store.revocation.age(),
      listInfo: () => store.revocation.info(),
      maxAgeMs: config.outage.revocationMaxAgeHours * 3600_000,
      graceMs: config.outage.revocationGraceHours * 3600_000,
    };
    const handlers = createHandlers({
      inquiry: { ...numbers, rechecks },
      card: { ...numbers, rechecks, reader, jpkiCas, pins, revocation },
      pins,
      store,
      events,
      recorder,
      logger,
      batches: parts.batchApi,
      status: status.status,
      ...(fx ? { onCardResult: async (r) => void (await fx.writeFaceResult(r)) } : {}),
    });
    const kiosk = await life.use(kioskPart(config, { desk: kiosks, clients, handlers, events, logger, servers }));
    const api = await life.use(apiPart(config, { clients, logger, events, handlers, recorder, servers, store }));
    await life.use(readyPart(config, { logger, notifier, servers }));

    let closing: Promise<void> | undefined;
    return {
      wsPort: api.port,
      wsTls: api.tls,
      adminPort: admin?.port,
      healthPort: health?.port,
      kioskPort: kiosk?.server.port,
      kiosks,
      get tls() {
        return servers.tls;
      },
      config,
      store,
      link: parts.link,
      relay: parts.relay,
      events,
      metrics,
      rechecks,
      status: status.status,
      close() {
        closing ??= (async () => {
          logger.info('stopping', { event: 'stopping' });
          await life.stop();
          logger.info('stopped', { event: 'stopped' });
        })();
        return closing;
      },
    };
  });
}
