/**
 * The daemon: starts its parts in order (state → central client → API → health and admin page),
 * tells systemd when it is ready, and on SIGTERM answers what is in flight before it stops.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import cron from 'node-cron';
import winston from 'winston';
import { writeFileAtomic } from '../core/atomic-file.js';
import { OnshiError } from '../core/errors.js';
import { institutionCodeWarning } from '../oqs/index.js';
import { type AuditInput, type EligibilityWrite, GatewayStore } from '../cache/index.js';
import { CentralClient } from '../sync/central-client.js';
import { LinkMonitor, type LinkStatus } from '../sync/link.js';
import { OutboxRelay } from '../sync/relay.js';
import { RetryBudget } from '../sync/retry-budget.js';
import { refreshRevocationList, scheduleRevocationRefresh } from '../sync/revocation.js';
import { assertCronSchedule, scheduleJob } from '../sync/schedule.js';
import { BatchApi } from '../api/batch-api.js';
import { BatchRunner } from '../checks/batch-runner.js';
import { EventHub } from '../protocol/events.js';
import { OutagePath } from '../checks/outage.js';
import { createReplay } from '../checks/replay.js';
import type { ApiRequest } from '../protocol/schema.js';
import { ClientStore } from '../api/tokens.js';
import type { GatewayConfig } from '../core/config.js';
import { inquireByNumbers } from '../checks/numbers.js';
import { inquireByCard } from '../checks/card.js';
import { FileExchange } from '../file-exchange/index.js';
import { loadCaBundle } from '../checks/card-cert.js';
import { PinBroker } from '../checks/pin-broker.js';
import { RecheckJob, toRecheckView } from '../checks/rechecks.js';
import type { CheckContext } from '../checks/result.js';
import type { CheckContextInput } from '../protocol/schema.js';
import { ReaderManager } from '../reader/index.js';
import { createLogger, type Logger } from '../core/logger.js';
import { createNotifier, type Notifier } from '../ops/sd-notify.js';
import { type RequestContext, WsApiServer } from '../api/ws-server.js';
import { AdminAccounts, type AdminServer, createAdminBackend, startAdmin } from '../admin/index.js';
import { storeAdminViews } from '../admin/store-views.js';
import { checkCertExpiry } from '../ops/cert-expiry.js';
import { HealthServer } from '../ops/health.js';
import { type CheckKind, type CheckSource, GatewayMetrics } from '../ops/metrics.js';
import type { CertificateExpiry, DaemonStatus, ReaderState, StatusAlert } from '../ops/status.js';
import { LogRing } from '../ops/support-bundle.js';
import { RUNTIME_FILE } from '../ops/runtime-file.js';
import { watchTokenChanges } from '../api/token-audit.js';
import { loadOrCreateTlsIdentity, scheduleTlsRenewal, type TlsIdentity } from '../ops/tls-identity.js';

export interface Gateway {
  readonly wsPort: number;
  /** the WebSocket API is wss:// (the gateway's own certificate) */
  readonly wsTls: boolean;
  readonly adminPort: number | undefined;
  readonly healthPort: number | undefined;
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

export type StartupErrorCode = 'STARTUP_FILE_MISSING' | 'STARTUP_INSECURE_LISTEN';

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
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

/** What a check's audit entry records as its outcome: a validity, a per-person error, or an error code. */
function checkOutcome(result: { status?: string; validity?: string } | undefined, error: unknown): string {
  if (error) return (error as OnshiError).code ?? 'INTERNAL';
  if (result?.status === '2') return 'status:2';
  return result?.validity ? `validity:${result.validity}` : 'ok';
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/**
 * A secret file named in the config, or — under systemd — a credential passed with LoadCredential=
 * (preferred: the key never sits in a world-readable path and is not in the unit's environment).
 */
function readSecret(configured: string, credentialName: string, what: string): Buffer {
  const credDir = process.env.CREDENTIALS_DIRECTORY;
  if (!configured && credDir && existsSync(join(credDir, credentialName)))
    return readFileSync(join(credDir, credentialName));
  if (!configured)
    throw new OnshiError<StartupErrorCode>(
      'STARTUP_FILE_MISSING',
      `${what} is not configured (set it in the config file or pass the ${credentialName} credential)`,
    );
  try {
    return readFileSync(configured);
  } catch (e) {
    throw new OnshiError<StartupErrorCode>(
      'STARTUP_FILE_MISSING',
      `cannot read ${what} at ${configured}: ${(e as NodeJS.ErrnoException).code}`,
    );
  }
}

export async function startGateway(
  config: GatewayConfig,
  opts: { logger?: Logger; notifier?: Notifier; configFile?: string } = {},
): Promise<Gateway> {
  const logger = opts.logger ?? createLogger({ level: config.log.level });
  // Tokens and PINs must not cross the clinic LAN in clear: plain ws only on loopback.
  const apiLoopback = LOOPBACK.test(config.api.host);
  const apiTls = config.api.tls === 'on' || (config.api.tls === 'auto' && !apiLoopback);
  if (!apiTls && !apiLoopback) {
    throw new OnshiError<StartupErrorCode>(
      'STARTUP_INSECURE_LISTEN',
      `api.host ${config.api.host} is not a loopback address and api.tls is off; tokens and PINs would cross the LAN in clear (set api.tls to auto or on)`,
    );
  }
  // Before anything is opened or scheduled, so that a refusal leaves nothing running.
  assertCronSchedule('batch.schedule', config.batch.schedule);
  // The support bundle's recent log lines (the service user may not read the journal).
  const logRing = new LogRing();
  const ringTransport = new winston.transports.Stream({ stream: logRing, level: 'info' });
  logger.add(ringTransport);
  const notifier = opts.notifier ?? createNotifier();
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  // spec §9: the institution code's check-digit rule is unconfirmed, so a mismatch warns, never stops.
  const codeWarning = institutionCodeWarning(config.institutionCode);
  if (codeWarning) logger.warn(codeWarning, { event: 'institution_code_warning' });

  const clients = new ClientStore(config.stateDir);
  clients.list(); // fail now, not at the first connection, if the file is corrupt

  const passwordFile = config.central.passwordFile;
  const centralCa = readSecret(config.central.caFile, 'central-ca.pem', 'the central CA bundle (central.caFile)');
  const centralCert = readSecret(
    config.central.certFile,
    'central-client.pem',
    'the client certificate (central.certFile)',
  );
  const alerts: StatusAlert[] = [];
  // Central refuses an expired client certificate: say so a month ahead, at start and every day.
  const certAlert = (): void => {
    let r: ReturnType<typeof checkCertExpiry>;
    try {
      r = checkCertExpiry(centralCert);
    } catch (e) {
      logger.error((e as Error).message, { event: 'central_cert_invalid' });
      return;
    }
    const i = alerts.findIndex((a) => a.code.startsWith('CENTRAL_CERT_'));
    if (i >= 0) alerts.splice(i, 1);
    if (r.level === 'ok') return;
    alerts.push({
      code: r.code!,
      message: r.message,
      details: { notAfter: r.notAfter.toISOString(), daysLeft: r.daysLeft },
    });
    logger[r.level === 'error' ? 'error' : 'warn'](r.message, {
      event: 'central_cert_expiry',
      code: r.code,
      daysLeft: r.daysLeft,
    });
  };
  certAlert();
  const certificates = [certificateOf('central-client', centralCert), certificateOf('central-ca', centralCa)].filter(
    (c): c is CertificateExpiry => c !== undefined,
  );
  const central = new CentralClient({
    url: config.central.url,
    ca: centralCa,
    cert: centralCert,
    key: readSecret(config.central.keyFile, 'central-client.key', 'the client key (central.keyFile)'),
    ...(config.central.servername ? { servername: config.central.servername } : {}),
    userId: config.central.userId,
    ...(passwordFile ? { password: readFileSync(passwordFile, 'utf8').trim() } : {}),
    timeoutMs: config.central.timeoutMs,
  });

  const events = new EventHub();
  // The reader manager recovers by itself when pcscd comes and goes, so the daemon starts without it.
  let reader: ReaderManager | undefined;
  if (config.reader.enabled) {
    const wanted = config.reader.readerName;
    reader = new ReaderManager(wanted ? { readerFilter: (name) => name.includes(wanted) } : {});
    reader.on('state', (st) => {
      const readers = st.readers.map((r) => ({ name: r.name, card: r.cardPresent }));
      logger.info('reader state', { event: 'reader_state', pcsc: st.pcsc, readers });
      events.publish('reader', 'reader.state', { pcsc: st.pcsc, readers }, { retain: true });
    });
    await reader.start();
  }
  const jpkiCas = loadCaBundle(config.reader.jpkiCaFile);
  if (config.reader.enabled && jpkiCas.length === 0) {
    logger.warn('no JPKI CA bundle configured: card certificates are checked by central only', {
      event: 'jpki_ca_missing',
    });
  }
  const pins = new PinBroker();
  const o = config.outage;

  // The store first: the outage path cannot promise anything without it. A corrupt file is moved
  // aside and a fresh one created (startupAlerts says so); only an unusable state dir stops us.
  const store = await GatewayStore.open({ dir: config.stateDir, outboxMax: o.outboxMax });
  alerts.push(...store.startupAlerts);
  for (const a of store.startupAlerts) {
    logger.error(a.message, { event: 'store_alert', code: a.code, ...(a.details ?? {}) });
    events.publish('outbox', 'store.alert', { ...a }, { retain: true });
  }

  const backoff = { baseMs: o.backoffBaseMs, capMs: o.backoffCapMs };
  const link = new LinkMonitor({
    probe: (deadline) => central.probe({ deadline }),
    failureThreshold: o.failureThreshold,
    slowMs: o.slowMs,
    probeIntervalMs: o.probeIntervalMs,
    probeTimeoutMs: o.probeTimeoutMs,
    backoff,
  });
  link.on('state', (st) => {
    logger.warn(`line ${st.state}: ${st.reason}`, { event: 'line_state', state: st.state, reason: st.reason });
    events.publish('line', 'line.state', { ...st }, { retain: true });
  });
  events.publish('line', 'line.state', { ...link.status() }, { retain: true });

  const rechecks = new RecheckJob({
    ...config.rechecks,
    store,
    central,
    events,
    logger,
    institutionCode: config.institutionCode,
    timeoutMs: config.central.timeoutMs,
  });
  const budget = new RetryBudget({ ratio: o.retryBudgetRatio });
  const relay = new OutboxRelay({
    store,
    link,
    budget,
    maxInFlight: o.relayConcurrency,
    ttlMs: o.outboxTtlHours * 3600_000,
    backoff,
    replay: createReplay({ central, store, events, logger, timeoutMs: config.central.timeoutMs, rechecks }),
  });
  relay.on('replayed', (i) => logger.info('re-verified an outage check', { event: 'outbox_replayed', ...i }));
  relay.on('retry', (i) =>
    logger.info('replay will be retried', {
      event: 'outbox_retry',
      id: i.id,
      code: i.code,
      attempts: i.attempts,
      retryAt: i.retryAt.toISOString(),
    }),
  );
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
    events.publish(
      'outbox',
      'outbox.alert',
      { code: 'OUTBOX_OVERDUE', oldestAt: i.oldestAt.toISOString(), count: i.count, message },
      { retain: true },
    );
  });
  relay.on('error', (e) =>
    logger.error('the relay could not use the store', {
      event: 'relay_store_error',
      code: (e as OnshiError).code ?? 'INTERNAL',
      error: e.message,
    }),
  );

  const outage = new OutagePath({
    store,
    link,
    events,
    logger,
    cacheMaxAgeMs: o.cacheMaxAgeHours * 3600_000,
    offlineReserveMs: o.offlineReserveMs,
    onQueued: () => relay.kick(),
  });
  const revocation = {
    isRevoked: (s: string) => store.isRevoked(s),
    revocationAge: () => store.revocationAge(),
    maxAgeMs: o.revocationMaxAgeHours * 3600_000,
  };
  const revocationTask =
    jpkiCas.length > 0
      ? scheduleRevocationRefresh(
          o.revocationSchedule,
          async () => {
            const r = await refreshRevocationList({
              central,
              cas: jpkiCas,
              sink: store,
              timeoutMs: config.central.timeoutMs,
            });
            logger.info('revocation list refreshed', {
              event: 'revocation_refreshed',
              count: r.count,
              thisUpdate: r.thisUpdate.toISOString(),
            });
          },
          (e) =>
            logger.warn('could not refresh the revocation list', {
              event: 'revocation_refresh_failed',
              code: (e as OnshiError).code ?? 'INTERNAL',
              error: (e as Error).message,
            }),
        )
      : undefined;

  // Batch inquiry: chunks toward central with bounded concurrency; resumes what a restart interrupted.
  const bc = config.batch;
  const batchRunner = new BatchRunner({
    store,
    central,
    institutionCode: config.institutionCode,
    concurrency: bc.concurrency,
    pollMs: bc.pollMs,
    pollMaxMs: bc.pollMaxMs,
    timeoutMs: config.central.timeoutMs,
    allowRequest: () => link.allowRequest(),
  });
  batchRunner.on('error', (e: Error) =>
    logger.error('the batch runner could not use the store', {
      event: 'batch_store_error',
      code: (e as OnshiError).code ?? 'INTERNAL',
      error: e.message,
    }),
  );
  batchRunner.on('done', (p: { batchId: string; state: string; total: number; errors: number }) =>
    logger.info('batch finished', {
      event: 'batch_done',
      batchId: p.batchId,
      state: p.state,
      total: p.total,
      errors: p.errors,
    }),
  );
  const batchApi = new BatchApi({
    store,
    runner: batchRunner,
    events,
    chunkSize: bc.chunkSize,
    maxEntries: bc.maxEntries,
    onError: (e) =>
      logger.error('could not mark a batch running (it runs anyway)', {
        event: 'batch_start_failed',
        code: (e as OnshiError).code ?? 'INTERNAL',
      }),
  });
  const pruneBatches = (): Promise<void> =>
    store.pruneBatches(new Date(Date.now() - bc.retentionDays * 86_400_000)).then(
      (r) => {
        if (r.batches > 0)
          logger.info('old batches deleted', { event: 'batch_pruned', batches: r.batches, entries: r.entries });
      },
      (e: Error) => {
        logger.error('could not delete old batches', {
          event: 'batch_prune_failed',
          code: (e as OnshiError).code ?? 'INTERNAL',
          error: e.message,
        });
      },
    );
  const batchTask = cron.schedule(
    bc.schedule,
    async () => {
      await pruneBatches();
      await batchRunner.runScheduled().then(
        (n) => {
          if (n > 0) logger.info('scheduled batches started', { event: 'batch_scheduled', count: n });
        },
        (e: Error) => {
          logger.error('could not start the scheduled batches', {
            event: 'batch_schedule_failed',
            code: (e as OnshiError).code ?? 'INTERNAL',
            error: e.message,
          });
        },
      );
    },
    { timezone: 'Asia/Tokyo', name: 'batch-schedule', noOverlap: true },
  );
  void pruneBatches();

  const startedAt = new Date().toISOString();
  let ws: WsApiServer | undefined;
  let tls: TlsIdentity | undefined;
  const readerState = (): { state: ReaderState; readers: { name: string; cardPresent: boolean }[] } => {
    if (!reader) return { state: 'disabled', readers: [] };
    const st = reader.status();
    const readers = st.readers.map((r) => ({ name: r.name, cardPresent: r.cardPresent }));
    return { state: st.pcsc === 'down' ? 'pcscd_down' : readers.length === 0 ? 'no_reader' : 'ready', readers };
  };
  const checkContext = (r: CheckContextInput): CheckContext => ({
    changedInsurer: r.changedInsurer,
    consent: r.consent,
    nameTarget: r.nameTarget,
    ...(r.knownFacts ? { knownFacts: r.knownFacts } : {}),
  });

  const status = (): DaemonStatus => {
    const ob = store.outboxStats();
    const age = store.revocationAge();
    const l = link.status();
    const rd = readerState();
    const clock = central.clock();
    const checks = {
      store: true,
      api: ws !== undefined,
      ...(config.reader.enabled ? { reader: rd.state === 'ready' } : {}),
    };
    return {
      version: VERSION,
      startedAt,
      now: new Date().toISOString(),
      ready: Object.values(checks).every(Boolean),
      checks,
      reader: { enabled: config.reader.enabled, ...rd },
      card: { present: rd.readers.some((r) => r.cardPresent) },
      line: {
        state: l.state,
        since: l.since.toISOString(),
        ...(l.lastSuccessAt ? { lastOkAt: l.lastSuccessAt.toISOString() } : {}),
        ...(l.lastFailureCode ? { lastError: l.lastFailureCode } : {}),
      },
      link: linkView(l),
      outbox: {
        depth: ob.depth,
        ...(ob.oldestAt ? { oldestAt: ob.oldestAt.toISOString() } : {}),
        dead: ob.dead,
        fillRatio: ob.fillRatio,
        max: store.outboxMax,
        inFlight: relay.inFlight,
        overdue: store.overdueCount(new Date(Date.now() - o.outboxTtlHours * 3600_000)),
      },
      cache: { entries: store.cacheEntries() },
      clock: {
        ...(clock.skewMs !== undefined ? { skewMs: clock.skewMs } : {}),
        ...(clock.checkedAt ? { checkedAt: clock.checkedAt.toISOString() } : {}),
      },
      certificates,
      ...(tls
        ? { tls: { fingerprint: tls.fingerprint, spkiSha256: tls.spkiSha256, notAfter: tls.notAfter.toISOString() } }
        : {}),
      api: {
        listening: ws !== undefined,
        ...(ws ? { port: ws.port, tls: ws.tls } : {}),
        connections: ws?.clientCount ?? 0,
        ...(ws?.stats() ?? { droppedEvents: 0, overflowCloses: 0 }),
      },
      reconciliation: { open: store.openReconciliationCount() },
      revocation: age === undefined ? {} : { ageMs: age, fetchedAt: new Date(Date.now() - age).toISOString() },
      retryBudget: budget.stats(),
      alerts,
    };
  };
  const metrics = new GatewayMetrics({ status: { status }, version: VERSION });

  // The audit trail: every check, admin action and token change, hash-chained in the store. A
  // failed append is logged loudly but never turns an answer the counter needs into an error.
  const audit = (entry: AuditInput): void => {
    store.appendAudit(entry).catch(
      (e: unknown) =>
        void logger.error('could not append to the audit log', {
          event: 'audit_failed',
          code: (e as OnshiError).code ?? 'INTERNAL',
          action: entry.action,
        }),
    );
  };
  const recordCheck = (
    kind: CheckKind,
    req: { id: string },
    ctx: RequestContext,
    started: number,
    result: { source?: string; status?: string; validity?: string } | undefined,
    error?: unknown,
  ): void => {
    const source = (result?.source ?? 'none') as CheckSource;
    const outcome = checkOutcome(result, error);
    metrics.recordCheck({ kind, outcome: error ? outcome : 'ok', source, seconds: (Date.now() - started) / 1000 });
    // The audit append (hash, encryption, hand-off to the writer) after the answer has been sent:
    // it was never awaited, so nothing changes for the trail but the counter's wait.
    setImmediate(audit, {
      kind: 'check',
      actor: ctx.client.id,
      action: `inquiry.${kind}`,
      remote: ctx.remote.slice(0, 64),
      mode: kind,
      outcome,
      ...(source === 'central' || source === 'cache' ? { source } : {}),
      personal: { requestId: req.id },
    });
  };
  const checked = async <R extends { source?: string; status?: string; validity?: string }>(
    kind: CheckKind,
    req: { id: string },
    ctx: RequestContext,
    run: () => Promise<R>,
  ): Promise<R> => {
    const started = Date.now();
    try {
      const result = await run();
      recordCheck(kind, req, ctx, started, result);
      return result;
    } catch (e) {
      recordCheck(kind, req, ctx, started, undefined, e);
      throw e;
    }
  };

  const handle = async (req: ApiRequest, ctx: RequestContext): Promise<Record<string, unknown> & { type: string }> => {
    switch (req.type) {
      case 'ping':
        return { type: 'pong' };
      case 'inquiry.numbers': {
        const input = {
          query: req.query,
          requestId: req.id,
          clientId: ctx.client.id,
          deadline: ctx.deadline,
          context: checkContext(req),
          ...(req.confirmationDate ? { confirmationDate: req.confirmationDate } : {}),
        };
        return {
          type: 'inquiry.result',
          result: await checked('numbers', req, ctx, () =>
            inquireByNumbers({ central, institutionCode: config.institutionCode, outage, rechecks }, input),
          ),
        };
      }
      case 'inquiry.card': {
        if (!reader)
          throw new OnshiError('READER_DISABLED', 'this gateway has no card reader enabled (reader.enabled is false)');
        const result = await checked('card', req, ctx, () =>
          inquireByCard(
            {
              reader: reader!,
              central,
              institutionCode: config.institutionCode,
              jpkiCas,
              pins,
              outage,
              revocation,
              rechecks,
            },
            {
              mode: req.mode,
              limitConsent: req.limitConsent,
              inquiryId: req.id,
              clientId: ctx.client.id,
              connectionId: ctx.connectionId,
              context: checkContext(req),
              deadline: ctx.deadline,
              signal: ctx.signal,
              progress: ctx.progress,
              ...(req.confirmationDate ? { confirmationDate: req.confirmationDate } : {}),
              ...(req.readerName ? { readerName: req.readerName } : {}),
            },
          ),
        );
        // The official file exchange's face-reader result: never delays or fails the counter's answer.
        fx?.writeFaceResult(result).catch((e: unknown) =>
          logger.error('could not write the face result file', {
            event: 'fx_face_failed',
            code: (e as OnshiError).code ?? (e as NodeJS.ErrnoException).code ?? 'INTERNAL',
          }),
        );
        return { type: 'inquiry.result', result };
      }
      case 'pin.submit':
        pins.submit(ctx.connectionId, req.inquiryId, req.pin, req.confirmLastTry);
        return { type: 'pin.accepted', inquiryId: req.inquiryId };
      case 'status':
        return { type: 'status', status: status() };
      case 'reconciliation.list':
        return {
          type: 'reconciliation.items',
          items: store.listReconciliation({ includeHandled: req.includeHandled, limit: req.limit }),
        };
      case 'reconciliation.handle': {
        await store.markHandled(req.itemId);
        audit({
          kind: 'admin',
          actor: ctx.client.id,
          action: 'reconciliation.handle',
          target: String(req.itemId),
          remote: ctx.remote.slice(0, 64),
          outcome: 'ok',
        });
        events.publish('reconciliation', 'reconciliation.handled', { itemId: req.itemId, by: ctx.client.id });
        return { type: 'reconciliation.handled', itemId: req.itemId };
      }
      case 'rechecks.list':
        return {
          type: 'rechecks.items',
          items: store
            .listRechecks({ ...(req.state ? { state: req.state } : {}), limit: req.limit })
            .map(toRecheckView),
        };
      case 'rechecks.run':
        return { type: 'rechecks.ran', ...(await rechecks.run()) };
      case 'batch.submit':
        return batchApi.submit(req, ctx.client.id);
      case 'batch.status':
        return batchApi.status(req, ctx.client.id);
      case 'batch.results':
        return batchApi.results(req, ctx.client.id);
      case 'hello':
      case 'inquiry.cancel':
      case 'subscribe':
      case 'unsubscribe':
        throw new OnshiError('INTERNAL', `${req.type} is handled by the WebSocket server`);
    }
  };

  // Retention: the personal fields of old audit entries go; the chain and its clear fields stay.
  const purgeTask = scheduleJob({
    name: 'audit-retention',
    setting: 'audit.purgeSchedule',
    schedule: config.audit.purgeSchedule,
    run: async () => {
      const n = await store.purgeAuditPersonal(new Date(Date.now() - config.audit.retentionDays * 86_400_000));
      if (n > 0)
        logger.info('purged personal fields of old audit entries', {
          event: 'audit_purged',
          count: n,
          retentionDays: config.audit.retentionDays,
        });
    },
    onError: (e) => {
      logger.error('audit retention purge failed', {
        event: 'audit_purge_failed',
        code: (e as OnshiError).code ?? 'INTERNAL',
      });
    },
  });
  const certTask = cron.schedule('7 9 * * *', certAlert, { timezone: 'Asia/Tokyo', name: 'central-cert-expiry' });
  const stopTokenAudit = watchTokenChanges({
    clients,
    getMeta: (k) => store.getMeta(k),
    setMeta: (k, v) => store.setMeta(k, v),
    append: (e) => store.appendAudit(e),
    onError: (e) =>
      logger.error('could not audit token changes', {
        event: 'token_audit_failed',
        code: (e as OnshiError).code ?? 'INTERNAL',
      }),
  });

  const stopBackground = async (): Promise<void> => {
    await revocationTask?.destroy();
    await purgeTask.destroy();
    await certTask.destroy();
    stopTokenAudit();
    await batchTask.destroy();
    await rechecks.stop();
    link.stop();
    await relay.stop();
    await batchRunner.stop();
  };
  link.start();
  relay.start();
  batchRunner.start();
  rechecks.start();

  // The gateway's own certificate (made on first start, renewed with the same key): the admin page
  // always, the WebSocket API when it faces the LAN.
  let stopRenewal: (() => void) | undefined;
  let admin: AdminServer | undefined;
  let health: HealthServer | undefined;
  const tlsOptions = {
    stateDir: config.stateDir,
    hostnames: config.tls.hostnames,
    ips: config.tls.ips,
    validityDays: config.tls.validityDays,
    renewDaysBefore: config.tls.renewDaysBefore,
  };
  const stopServers = async (): Promise<void> => {
    stopRenewal?.();
    await admin?.close();
    await health?.close();
    metrics.close();
  };
  let fx: FileExchange | undefined;
  try {
    if (config.fileExchange.enabled) {
      fx = await FileExchange.start({
        options: config.fileExchange,
        institutionCode: config.institutionCode,
        stateDir: config.stateDir,
        logger,
        central,
        centralTimeoutMs: config.central.timeoutMs,
        inquire: (input) => inquireByNumbers({ central, institutionCode: config.institutionCode, outage }, input),
      });
    }
    if (apiTls || config.admin.enabled) {
      tls = loadOrCreateTlsIdentity(tlsOptions);
      logger.info(`gateway certificate ${tls.action}`, {
        event: 'tls_identity',
        action: tls.action,
        fingerprint: tls.fingerprint,
        notAfter: tls.notAfter.toISOString(),
        ...(tls.reason ? { reason: tls.reason } : {}),
      });
      stopRenewal = scheduleTlsRenewal(tlsOptions, (next) => {
        tls = next;
        ws?.updateTls(next);
        admin?.updateTls(next);
        logger.info('gateway certificate renewed', {
          event: 'tls_renewed',
          fingerprint: next.fingerprint,
          notAfter: next.notAfter.toISOString(),
        });
      });
    }
    ws = await WsApiServer.start({
      ...config.api,
      tls: apiTls ? tls : undefined,
      clients,
      logger,
      handle,
      events,
      onAuthFailure: (f) =>
        audit({
          kind: 'token',
          actor: 'unknown',
          action: 'token.refused',
          remote: f.remote.slice(0, 64),
          outcome: f.reason,
        }),
    });
    if (config.health.enabled)
      health = await HealthServer.start({ port: config.health.port, status: { status }, metrics, logger });
    if (config.admin.enabled) {
      const credDir = process.env.CREDENTIALS_DIRECTORY;
      const secretFile = credDir ? join(credDir, 'admin-initial-secret') : undefined;
      const initialSecret = secretFile && existsSync(secretFile) ? readFileSync(secretFile, 'utf8').trim() : undefined;
      const backend = {
        ...createAdminBackend({
          status: { status },
          clients,
          configFile: opts.configFile ?? join(config.stateDir, 'config.json'),
          stateDir: config.stateDir,
          ...(credDir ? { credentialsDir: credDir } : {}),
          logs: () => logRing.text(),
          config,
        }),
        ...storeAdminViews(store, events),
      };
      admin = await startAdmin({
        config,
        backend,
        accounts: new AdminAccounts(config.stateDir),
        tls: tls!,
        logger,
        ...(initialSecret ? { initialSecret } : {}),
      });
    }
  } catch (e) {
    await ws?.close(0);
    await fx?.close();
    await stopServers();
    await stopBackground();
    central.close();
    await reader?.stop();
    await store.close();
    logger.remove(ringTransport);
    throw e;
  }
  const api = ws;
  const urls = `serving ${apiTls ? 'wss' : 'ws'}://${config.api.host}:${api.port}${admin ? `, admin https://${config.admin.host}:${admin.port}` : ''}${health ? `, health http://127.0.0.1:${health.port}` : ''}`;
  logger.info('ready', {
    event: 'ready',
    wsPort: api.port,
    wsHost: config.api.host,
    wsTls: apiTls,
    ...(admin ? { adminPort: admin.port } : {}),
    ...(health ? { healthPort: health.port } : {}),
    ...(tls ? { fingerprint: tls.fingerprint } : {}),
    host: hostname(),
  });
  // Where the running daemon listens (ports may be 0 = chosen at start): `onshi status` reads it.
  writeFileAtomic(
    join(config.stateDir, RUNTIME_FILE),
    JSON.stringify({
      pid: process.pid,
      wsPort: api.port,
      wsTls: apiTls,
      ...(admin ? { adminPort: admin.port } : {}),
      ...(health ? { healthPort: health.port } : {}),
    }) + '\n',
    0o644,
  );
  await notifier.ready(urls);
  notifier.startWatchdog();

  let closing: Promise<void> | undefined;
  return {
    wsPort: api.port,
    wsTls: apiTls,
    adminPort: admin?.port,
    healthPort: health?.port,
    get tls() {
      return tls;
    },
    config,
    store,
    link,
    relay,
    events,
    metrics,
    rechecks,
    status,
    close() {
      closing ??= (async () => {
        logger.info('stopping', { event: 'stopping' });
        await notifier.stopping('answering in-flight requests');
        notifier.stopWatchdog();
        await api.close(config.api.shutdownGraceMs);
        await fx?.close();
        await stopServers();
        await stopBackground();
        await reader?.stop();
        central.close();
        await store.close();
        logger.info('stopped', { event: 'stopped' });
        logger.remove(ringTransport);
      })().then(() => undefined);
      return closing;
    },
  };
}
