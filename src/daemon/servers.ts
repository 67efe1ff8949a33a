/**
 * The daemon's faces, each a start step (lifecycle.ts: part): the metrics, the gateway's own
 * certificate, the health endpoints, the admin page, the official file exchange, the WebSocket API
 * and the "ready" announcement. A disabled one starts as undefined, so the list of steps is always
 * the same (the failed-start test goes through every one). The admin page, the kiosk and the file
 * exchange are imported only when enabled: a box without them does not load (or pay to start) them.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.js';
import type { GatewayConfig } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { CentralClient } from '../sync/central-client.js';
import { type CheckRecorder, type HandlerTable, routeRequests } from '../api/handlers.js';
import { type WsApiServer, WsApiServer as WsServer } from '../api/ws-server.js';
import type { FileExchange, FileExchangeDeps } from '../file-exchange/index.js';
import { HealthServer } from '../ops/health.js';
import { GatewayMetrics } from '../ops/metrics.js';
import type { ClientStore } from '../api/tokens.js';
import type { EventHub } from '../protocol/events.js';
import type { GatewayStore } from '../cache/index.js';
import type { AdminServer } from '../admin/index.js';
import type { KioskDesk, KioskFlows, KioskServer } from '../kiosk/index.js';
import type { StatusSource } from '../ops/status.js';
import type { LogRing } from '../ops/support-bundle.js';
import { type Part, part } from './lifecycle.js';
import { adminInitialSecret, apiUsesTls } from './prepare.js';
import { RUNTIME_FILE } from '../ops/runtime-file.js';
import type { Notifier } from '../ops/sd-notify.js';
import { loadOrCreateTlsIdentity, scheduleTlsRenewal, type TlsIdentity } from '../ops/tls-identity.js';

/** The servers' live handles, filled as their steps start (the status and a renewal read them). */
export interface Servers {
  tls?: TlsIdentity;
  api?: WsApiServer;
  admin?: AdminServer;
  kiosk?: KioskServer;
  health?: { port: number };
}

/**
 * The gateway's own certificate (made on first start, renewed with the same key): the admin page
 * always, the WebSocket API when it faces the LAN. Returns the renewal's stop, or undefined when
 * neither needs a certificate.
 */
function startTlsIdentity(config: GatewayConfig, logger: Logger, servers: Servers): (() => void) | undefined {
  if (!apiUsesTls(config) && !config.admin.enabled && !config.kiosk.enabled) return undefined;
  const opts = {
    stateDir: config.stateDir,
    hostnames: config.tls.hostnames,
    ips: config.tls.ips,
    validityDays: config.tls.validityDays,
    renewDaysBefore: config.tls.renewDaysBefore,
  };
  const tls = loadOrCreateTlsIdentity(opts);
  servers.tls = tls;
  logger.info(`gateway certificate ${tls.action}`, {
    event: 'tls_identity',
    action: tls.action,
    fingerprint: tls.fingerprint,
    notAfter: tls.notAfter.toISOString(),
    ...(tls.reason ? { reason: tls.reason } : {}),
  });
  return scheduleTlsRenewal(opts, (next) => {
    servers.tls = next;
    servers.api?.updateTls(next);
    servers.admin?.updateTls(next);
    servers.kiosk?.updateTls(next);
    logger.info('gateway certificate renewed', {
      event: 'tls_renewed',
      fingerprint: next.fingerprint,
      notAfter: next.notAfter.toISOString(),
    });
  });
}

interface ApiDeps {
  clients: ClientStore;
  logger: Logger;
  events: EventHub;
  handlers: HandlerTable;
  recorder: CheckRecorder;
  servers: Servers;
  store: GatewayStore;
}

async function startApi(config: GatewayConfig, o: ApiDeps): Promise<WsApiServer> {
  const api = await WsServer.start({
    ...config.api,
    tls: apiUsesTls(config) ? o.servers.tls : undefined,
    clients: o.clients,
    logger: o.logger,
    handle: routeRequests(o.handlers),
    events: o.events,
    authFailures: o.store.authFailures,
    onAuthFailure: (f) =>
      o.recorder.append({
        kind: 'token',
        actor: 'unknown',
        action: 'token.refused',
        remote: f.remote.slice(0, 64),
        outcome: f.reason,
      }),
  });
  o.servers.api = api;
  return api;
}

/** The admin page (undefined when admin.enabled is false). */
interface AdminDeps {
  status: StatusSource;
  clients: ClientStore;
  store: GatewayStore;
  events: EventHub;
  logRing: LogRing;
  configFile: string | undefined;
  logger: Logger;
  servers: Servers;
  kiosk: KioskDesk;
  /** the restart button: ends the daemon so that systemd starts it again (absent: not supervised) */
  restart?: () => void;
}

async function startAdminPage(config: GatewayConfig, o: AdminDeps): Promise<AdminServer | undefined> {
  if (!config.admin.enabled) return undefined;
  const [{ AdminAccounts, createAdminBackend, startAdmin }, { storeAdminViews }] = await Promise.all([
    import('../admin/index.js'),
    import('../admin/store-views.js'),
  ]);
  const credDir = process.env.CREDENTIALS_DIRECTORY;
  const initialSecret = adminInitialSecret();
  const backend = {
    ...createAdminBackend({
      status: o.status,
      clients: o.clients,
      configFile: o.configFile ?? join(config.stateDir, 'config.json'),
      stateDir: config.stateDir,
      ...(credDir ? { credentialsDir: credDir } : {}),
      logs: () => o.logRing.text(),
      config,
      // the API starts after the page: its clients' activity is read when the page asks
      clientActivity: () => o.servers.api?.clientActivity() ?? [],
      ...(o.restart ? { restart: o.restart } : {}),
    }),
    ...storeAdminViews(o.store, o.events),
  };
  o.servers.admin = await startAdmin({
    config,
    backend,
    accounts: new AdminAccounts(config.stateDir),
    tls: o.servers.tls!,
    logger: o.logger,
    kiosk: o.kiosk,
    ...(initialSecret ? { initialSecret } : {}),
  });
  return o.servers.admin;
}

/** Logs where the daemon listens, writes it for `onshi status`, tells systemd it is ready. */
async function announceReady(
  config: GatewayConfig,
  o: { logger: Logger; notifier: Notifier; servers: Servers },
): Promise<void> {
  const { api, admin, health, tls } = o.servers;
  if (!api) return;
  const wsTls = apiUsesTls(config);
  const urls = `serving ${wsTls ? 'wss' : 'ws'}://${config.api.host}:${api.port}${admin ? `, admin https://${config.admin.host}:${admin.port}` : ''}${health ? `, health http://127.0.0.1:${health.port}` : ''}`;
  o.logger.info('ready', {
    event: 'ready',
    wsPort: api.port,
    wsHost: config.api.host,
    wsTls,
    ...(admin ? { adminPort: admin.port } : {}),
    ...(health ? { healthPort: health.port } : {}),
    ...(o.servers.kiosk ? { kioskPort: o.servers.kiosk.port } : {}),
    ...(tls ? { fingerprint: tls.fingerprint } : {}),
    host: hostname(),
  });
  // Where the running daemon listens (ports may be 0 = chosen at start): `onshi status` reads it.
  writeFileAtomic(
    join(config.stateDir, RUNTIME_FILE),
    JSON.stringify({
      pid: process.pid,
      wsPort: api.port,
      wsTls,
      ...(admin ? { adminPort: admin.port } : {}),
      ...(health ? { healthPort: health.port } : {}),
      ...(o.servers.kiosk ? { kioskPort: o.servers.kiosk.port } : {}),
    }) + '\n',
    0o644,
  );
  await o.notifier.ready(urls);
  o.notifier.startWatchdog();
}

/** The first thing a stop does: systemd hears that the daemon is stopping, the watchdog ends. */
async function announceStopping(notifier: Notifier): Promise<void> {
  await notifier.stopping('answering in-flight requests');
  notifier.stopWatchdog();
}

export const tlsPart = (config: GatewayConfig, logger: Logger, servers: Servers): Part<(() => void) | undefined> =>
  part(
    'tls',
    () => startTlsIdentity(config, logger, servers),
    (stopRenewal) => stopRenewal?.(),
  );

export const metricsPart = (status: StatusSource, version: string): Part<GatewayMetrics> =>
  part(
    'metrics',
    () => new GatewayMetrics({ status, version }),
    (m) => m.close(),
  );

/** /healthz, /readyz, /status and /metrics on loopback (undefined when health.enabled is false). */
export const healthPart = (
  config: GatewayConfig,
  o: { status: StatusSource; metrics: GatewayMetrics; logger: Logger; servers: Servers },
): Part<HealthServer | undefined> =>
  part(
    'health',
    async () => {
      if (!config.health.enabled) return undefined;
      const { status, metrics, logger } = o;
      const health = await HealthServer.start({ port: config.health.port, status, metrics, logger });
      o.servers.health = health;
      return health;
    },
    (h) => h?.close(),
  );

export const adminPart = (config: GatewayConfig, o: AdminDeps): Part<AdminServer | undefined> =>
  part(
    'admin',
    () => startAdminPage(config, o),
    (a) => a?.close(),
  );

/** The official file exchange (undefined when fileExchange.enabled is false). */
export const fileExchangePart = (
  config: GatewayConfig,
  o: { logger: Logger; central: CentralClient; inquire: FileExchangeDeps['inquire'] },
): Part<FileExchange | undefined> =>
  part(
    'file-exchange',
    async () => {
      if (!config.fileExchange.enabled) return undefined;
      const { FileExchange } = await import('../file-exchange/index.js');
      return FileExchange.start({
        options: config.fileExchange,
        institutionCode: config.institutionCode,
        stateDir: config.stateDir,
        logger: o.logger,
        central: o.central,
        centralTimeoutMs: config.central.timeoutMs,
        inquire: o.inquire,
      });
    },
    (f) => f?.close(),
  );

/** The WebSocket API; its stop answers what is in flight (api.shutdownGraceMs) before it closes. */
export const apiPart = (config: GatewayConfig, o: ApiDeps): Part<WsApiServer> =>
  part(
    'api',
    () => startApi(config, o),
    (api) => api.close(config.api.shutdownGraceMs),
  );

/**
 * The patient kiosk (undefined when kiosk.enabled is false): its flows over the API's handler table,
 * its HTTPS server on its own port with the gateway's certificate.
 */
export const kioskPart = (
  config: GatewayConfig,
  o: {
    desk: KioskDesk;
    clients: ClientStore;
    handlers: HandlerTable;
    events: EventHub;
    logger: Logger;
    servers: Servers;
  },
): Part<{ flows: KioskFlows; server: KioskServer } | undefined> =>
  part(
    'kiosk',
    async () => {
      if (!config.kiosk.enabled) return undefined;
      const { KioskFlows, KioskServer } = await import('../kiosk/index.js');
      const flows = new KioskFlows({ ...o, idleMs: config.kiosk.idleSeconds * 1000 });
      flows.start();
      try {
        const server = await KioskServer.start({
          host: config.kiosk.host,
          port: config.kiosk.port,
          tls: o.servers.tls!,
          clients: o.clients,
          desk: o.desk,
          flows,
          logger: o.logger,
        });
        o.servers.kiosk = server;
        return { flows, server };
      } catch (e) {
        flows.stop();
        throw e;
      }
    },
    async (k) => {
      await k?.server.close();
      k?.flows.stop();
    },
  );

/** The last step: "ready" to systemd; its stop, the first thing a stop does, says "stopping". */
export const readyPart = (
  config: GatewayConfig,
  o: { logger: Logger; notifier: Notifier; servers: Servers },
): Part<void> =>
  part(
    'ready',
    () => announceReady(config, o),
    () => announceStopping(o.notifier),
  );
