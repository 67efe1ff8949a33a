/**
 * The daemon: starts its parts in order (state → central client → API), tells systemd when it is
 * ready, and on SIGTERM answers what is in flight before it stops.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OnshiError } from '../errors.js';
import { institutionCodeWarning } from '../oqs/index.js';
import { GatewayStore, type StoreAlert } from '../cache/index.js';
import { CentralClient } from '../sync/central-client.js';
import { LinkMonitor, type LinkStatus } from '../sync/link.js';
import { OutboxRelay } from '../sync/relay.js';
import { RetryBudget } from '../sync/retry-budget.js';
import { refreshRevocationList, scheduleRevocationRefresh } from '../sync/revocation.js';
import { EventHub } from './events.js';
import { OutagePath } from './outage.js';
import { createReplay } from './replay.js';
import type { ApiRequest } from './api-schema.js';
import { ClientStore } from './clients.js';
import type { GatewayConfig } from './config.js';
import { inquireByNumbers } from './inquiry.js';
import { inquireByCard } from './card-inquiry.js';
import { loadCaBundle } from './card-cert.js';
import { PinBroker } from './pin-broker.js';
import { RecheckJob, toRecheckView } from './rechecks.js';
import type { CheckContext } from './inquiry.js';
import type { CheckContextInput } from './api-schema.js';
import { ReaderManager } from '../reader/index.js';
import { createLogger, type Logger } from './logger.js';
import { createNotifier, type Notifier } from './sd-notify.js';
import { type RequestContext, WsApiServer } from './ws-server.js';

export interface Gateway {
  readonly wsPort: number;
  readonly config: GatewayConfig;
  readonly store: GatewayStore;
  readonly link: LinkMonitor;
  readonly relay: OutboxRelay;
  readonly events: EventHub;
  readonly rechecks: RecheckJob;
  /** everything `status` reports, for the API, the CLI and the admin page */
  status(): GatewayStatus;
  close(): Promise<void>;
}

export interface GatewayStatus {
  link: LinkStatus;
  outbox: { depth: number; oldestAt?: string; dead: number; fillRatio: number; max: number; inFlight: number; overdue: number };
  reconciliation: { open: number };
  revocation: { ageMs?: number; fetchedAt?: string };
  retryBudget: ReturnType<RetryBudget['stats']>;
  alerts: StoreAlert[];
}

export type StartupErrorCode = 'STARTUP_FILE_MISSING' | 'STARTUP_INSECURE_LISTEN';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/**
 * A secret file named in the config, or — under systemd — a credential passed with LoadCredential=
 * (preferred: the key never sits in a world-readable path and is not in the unit's environment).
 */
function readSecret(configured: string, credentialName: string, what: string): Buffer {
  const credDir = process.env.CREDENTIALS_DIRECTORY;
  if (!configured && credDir && existsSync(join(credDir, credentialName))) return readFileSync(join(credDir, credentialName));
  if (!configured) throw new OnshiError<StartupErrorCode>('STARTUP_FILE_MISSING', `${what} is not configured (set it in the config file or pass the ${credentialName} credential)`);
  try {
    return readFileSync(configured);
  } catch (e) {
    throw new OnshiError<StartupErrorCode>('STARTUP_FILE_MISSING', `cannot read ${what} at ${configured}: ${(e as NodeJS.ErrnoException).code}`);
  }
}

export async function startGateway(config: GatewayConfig, opts: { logger?: Logger; notifier?: Notifier } = {}): Promise<Gateway> {
  const logger = opts.logger ?? createLogger({ level: config.log.level });
  // Tokens (and, with the card flow, PINs) must not cross the clinic LAN in clear: until the API
  // serves TLS, it listens on loopback only.
  if (!LOOPBACK.test(config.api.host)) {
    throw new OnshiError<StartupErrorCode>('STARTUP_INSECURE_LISTEN', `api.host ${config.api.host} is not a loopback address; the WebSocket API has no TLS yet, so it only listens on loopback`);
  }
  const notifier = opts.notifier ?? createNotifier();
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  // spec §9: the institution code's check-digit rule is unconfirmed, so a mismatch warns, never stops.
  const codeWarning = institutionCodeWarning(config.institutionCode);
  if (codeWarning) logger.warn(codeWarning, { event: 'institution_code_warning' });

  const clients = new ClientStore(config.stateDir);
  clients.list(); // fail now, not at the first connection, if the file is corrupt

  const passwordFile = config.central.passwordFile;
  const central = new CentralClient({
    url: config.central.url,
    ca: readSecret(config.central.caFile, 'central-ca.pem', 'the central CA bundle (central.caFile)'),
    cert: readSecret(config.central.certFile, 'central-client.pem', 'the client certificate (central.certFile)'),
    key: readSecret(config.central.keyFile, 'central-client.key', 'the client key (central.keyFile)'),
    ...(config.central.servername ? { servername: config.central.servername } : {}),
    userId: config.central.userId,
    ...(passwordFile ? { password: readFileSync(passwordFile, 'utf8').trim() } : {}),
    timeoutMs: config.central.timeoutMs,
  });

  // The reader manager recovers by itself when pcscd comes and goes, so the daemon starts without it.
  let reader: ReaderManager | undefined;
  if (config.reader.enabled) {
    const wanted = config.reader.readerName;
    reader = new ReaderManager(wanted ? { readerFilter: (name) => name.includes(wanted) } : {});
    reader.on('state', (st) => logger.info('reader state', { event: 'reader_state', pcsc: st.pcsc, readers: st.readers.map((r) => ({ name: r.name, card: r.cardPresent })) }));
    await reader.start();
  }
  const jpkiCas = loadCaBundle(config.reader.jpkiCaFile);
  if (config.reader.enabled && jpkiCas.length === 0) {
    logger.warn('no JPKI CA bundle configured: card certificates are checked by central only', { event: 'jpki_ca_missing' });
  }
  const pins = new PinBroker();
  const events = new EventHub();
  const o = config.outage;

  // The store first: the outage path cannot promise anything without it. A corrupt file is moved
  // aside and a fresh one created (startupAlerts says so); only an unusable state dir stops us.
  const store = await GatewayStore.open({ dir: config.stateDir, outboxMax: o.outboxMax });
  const alerts = [...store.startupAlerts];
  for (const a of alerts) {
    logger.error(a.message, { event: 'store_alert', code: a.code, ...(a.details ?? {}) });
    events.publish('outbox', 'store.alert', { ...a }, { retain: true });
  }

  const backoff = { baseMs: o.backoffBaseMs, capMs: o.backoffCapMs };
  const link = new LinkMonitor({
    probe: (deadline) => central.probe({ deadline }),
    failureThreshold: o.failureThreshold, slowMs: o.slowMs, probeIntervalMs: o.probeIntervalMs, probeTimeoutMs: o.probeTimeoutMs, backoff,
  });
  link.on('state', (st) => {
    logger.warn(`line ${st.state}: ${st.reason}`, { event: 'line_state', state: st.state, reason: st.reason });
    events.publish('line', 'line.state', { ...st }, { retain: true });
  });
  events.publish('line', 'line.state', { ...link.status() }, { retain: true });

  const rechecks = new RecheckJob({
    ...config.rechecks, store, central, events, logger, institutionCode: config.institutionCode, timeoutMs: config.central.timeoutMs,
  });
  const budget = new RetryBudget({ ratio: o.retryBudgetRatio });
  const relay = new OutboxRelay({
    store, link, budget, maxInFlight: o.relayConcurrency, ttlMs: o.outboxTtlHours * 3600_000, backoff,
    replay: createReplay({ central, store, events, logger, timeoutMs: config.central.timeoutMs, rechecks }),
  });
  relay.on('replayed', (i) => logger.info('re-verified an outage check', { event: 'outbox_replayed', ...i }));
  relay.on('retry', (i) => logger.info('replay will be retried', { event: 'outbox_retry', id: i.id, code: i.code, attempts: i.attempts, retryAt: i.retryAt.toISOString() }));
  relay.on('dead', (i) => {
    logger.error('central refused a replay: moved to the dead-letter list', { event: 'outbox_dead', ...i });
    events.publish('outbox', 'outbox.dead', { ...i });
  });
  relay.on('drained', (i) => {
    logger.info('outbox drained', { event: 'outbox_drained', ...i });
    events.publish('outbox', 'outbox.drained', { ...i });
  });
  relay.on('overdue', (i) => {
    const message = `${i.count ?? 'Some'} outage check(s) older than ${Math.round(i.ttlMs / 3600_000)} h are still waiting to be re-verified (oldest from ${i.oldestAt.toISOString()}); they are kept and replayed when the line allows.`;
    logger.error(message, { event: 'outbox_overdue', oldestAt: i.oldestAt.toISOString(), count: i.count });
    events.publish('outbox', 'outbox.alert', { code: 'OUTBOX_OVERDUE', oldestAt: i.oldestAt.toISOString(), count: i.count, message }, { retain: true });
  });
  relay.on('error', (e) => logger.error('the relay could not use the store', { event: 'relay_store_error', code: (e as OnshiError).code ?? 'INTERNAL', error: e.message }));

  const outage = new OutagePath({
    store, link, events, logger, cacheMaxAgeMs: o.cacheMaxAgeHours * 3600_000, offlineReserveMs: o.offlineReserveMs,
    onQueued: () => relay.kick(),
  });
  const revocation = { isRevoked: (s: string) => store.isRevoked(s), revocationAge: () => store.revocationAge(), maxAgeMs: o.revocationMaxAgeHours * 3600_000 };
  const revocationTask = jpkiCas.length > 0
    ? scheduleRevocationRefresh(o.revocationSchedule, async () => {
      const r = await refreshRevocationList({ central, cas: jpkiCas, sink: store, timeoutMs: config.central.timeoutMs });
      logger.info('revocation list refreshed', { event: 'revocation_refreshed', count: r.count, thisUpdate: r.thisUpdate.toISOString() });
    }, (e) => logger.warn('could not refresh the revocation list', { event: 'revocation_refresh_failed', code: (e as OnshiError).code ?? 'INTERNAL', error: (e as Error).message }))
    : undefined;

  const checkContext = (r: CheckContextInput): CheckContext => ({
    changedInsurer: r.changedInsurer, consent: r.consent, nameTarget: r.nameTarget, ...(r.knownFacts ? { knownFacts: r.knownFacts } : {}),
  });

  const status = (): GatewayStatus => {
    const ob = store.outboxStats();
    const age = store.revocationAge();
    return {
      link: link.status(),
      outbox: {
        depth: ob.depth, ...(ob.oldestAt ? { oldestAt: ob.oldestAt.toISOString() } : {}), dead: ob.dead, fillRatio: ob.fillRatio, max: store.outboxMax, inFlight: relay.inFlight,
        overdue: store.overdueCount(new Date(Date.now() - o.outboxTtlHours * 3600_000)),
      },
      reconciliation: { open: store.openReconciliationCount() },
      revocation: age === undefined ? {} : { ageMs: age, fetchedAt: new Date(Date.now() - age).toISOString() },
      retryBudget: budget.stats(),
      alerts,
    };
  };

  const handle = async (req: ApiRequest, ctx: RequestContext): Promise<Record<string, unknown> & { type: string }> => {
    switch (req.type) {
      case 'ping':
        return { type: 'pong' };
      case 'inquiry.numbers': {
        const input = {
          query: req.query, requestId: req.id, clientId: ctx.client.id, deadline: ctx.deadline, context: checkContext(req),
          ...(req.confirmationDate ? { confirmationDate: req.confirmationDate } : {}),
        };
        return { type: 'inquiry.result', result: await inquireByNumbers({ central, institutionCode: config.institutionCode, outage, rechecks }, input) };
      }
      case 'inquiry.card': {
        if (!reader) throw new OnshiError('READER_DISABLED', 'this gateway has no card reader enabled (reader.enabled is false)');
        const result = await inquireByCard({ reader, central, institutionCode: config.institutionCode, jpkiCas, pins, outage, revocation, rechecks }, {
          mode: req.mode, limitConsent: req.limitConsent, inquiryId: req.id, clientId: ctx.client.id, connectionId: ctx.connectionId, context: checkContext(req),
          deadline: ctx.deadline, signal: ctx.signal, progress: ctx.progress,
          ...(req.confirmationDate ? { confirmationDate: req.confirmationDate } : {}),
          ...(req.readerName ? { readerName: req.readerName } : {}),
        });
        return { type: 'inquiry.result', result };
      }
      case 'pin.submit':
        pins.submit(ctx.connectionId, req.inquiryId, req.pin, req.confirmLastTry);
        return { type: 'pin.accepted', inquiryId: req.inquiryId };
      case 'status':
        return { type: 'status', status: status() };
      case 'reconciliation.list':
        return { type: 'reconciliation.items', items: store.listReconciliation({ includeHandled: req.includeHandled, limit: req.limit }) };
      case 'reconciliation.handle': {
        await store.markHandled(req.itemId);
        events.publish('reconciliation', 'reconciliation.handled', { itemId: req.itemId, by: ctx.client.id });
        return { type: 'reconciliation.handled', itemId: req.itemId };
      }
      case 'rechecks.list':
        return { type: 'rechecks.items', items: store.listRechecks({ ...(req.state ? { state: req.state } : {}), limit: req.limit }).map(toRecheckView) };
      case 'rechecks.run':
        return { type: 'rechecks.ran', ...(await rechecks.run()) };
      case 'inquiry.cancel':
      case 'subscribe':
      case 'unsubscribe':
        throw new OnshiError('INTERNAL', `${req.type} is handled by the WebSocket server`);
    }
  };

  const stopBackground = async (): Promise<void> => {
    await revocationTask?.destroy();
    await rechecks.stop();
    link.stop();
    await relay.stop();
  };
  link.start();
  relay.start();
  rechecks.start();

  let ws: WsApiServer;
  try {
    ws = await WsApiServer.start({ ...config.api, clients, logger, handle, events });
  } catch (e) {
    await stopBackground();
    central.close();
    await reader?.stop();
    await store.close();
    throw e;
  }
  logger.info('ready', { event: 'ready', wsPort: ws.port, wsHost: config.api.host });
  await notifier.ready(`serving on ${config.api.host}:${ws.port}`);
  notifier.startWatchdog();

  let closing: Promise<void> | undefined;
  return {
    wsPort: ws.port,
    config,
    store,
    link,
    relay,
    events,
    rechecks,
    status,
    close() {
      closing ??= (async () => {
        logger.info('stopping', { event: 'stopping' });
        await notifier.stopping('answering in-flight requests');
        notifier.stopWatchdog();
        await ws.close(config.api.shutdownGraceMs);
        await stopBackground();
        await reader?.stop();
        central.close();
        await store.close();
        logger.info('stopped', { event: 'stopped' });
      })();
      return closing;
    },
  };
}
