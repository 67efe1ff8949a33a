/**
 * The daemon's scheduled jobs: their schedules (from the config, checked before anything starts)
 * and their work (given once the parts they use have started). The jobs service (sync/jobs.ts)
 * runs them, keeps one run of a job at a time and reports every failure the same way.
 */
import type { X509Certificate } from 'node:crypto';
import type { GatewayStore } from '../cache/index.js';
import type { GatewayConfig } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { CentralClient } from '../sync/central-client.js';
import { type JobSchedule, JobsService } from '../sync/jobs.js';
import { refreshRevocationList } from '../sync/revocation.js';
import type { BatchRunner } from '../checks/batch-runner.js';
import type { RecheckJob } from '../checks/rechecks.js';
import { checkCertExpiry } from '../ops/cert-expiry.js';
import type { StatusAlert } from '../ops/status.js';

const DAY_MS = 86_400_000;

/** Every job the config asks for; throws CONFIG_INVALID naming the setting of a bad schedule. */
export function createJobs(config: GatewayConfig, o: { logger: Logger; revocation: boolean }): JobsService {
  const schedules: JobSchedule[] = [
    // Central refuses an expired client certificate: say so a month ahead, at start and every day.
    { name: 'central-cert-expiry', setting: 'the certificate check (built in)', schedule: '7 9 * * *', atStart: true },
    { name: 'audit-retention', setting: 'audit.purgeSchedule', schedule: config.audit.purgeSchedule, atStart: true },
    { name: 'batch-prune', setting: 'batch.schedule', schedule: config.batch.schedule, atStart: true },
    { name: 'batch-schedule', setting: 'batch.schedule', schedule: config.batch.schedule },
    // The admin page's graphs: checks by source and the outbox depth, one row per 5 minutes.
    { name: 'history-sample', setting: 'the admin history (built in)', schedule: '*/5 * * * *' },
    ...(o.revocation
      ? [
          {
            name: 'revocation-refresh',
            setting: 'outage.revocationSchedule',
            schedule: config.outage.revocationSchedule,
            atStart: true,
          },
        ]
      : []),
    ...(config.rechecks.enabled
      ? [{ name: 'time-lag-rechecks', setting: 'rechecks.schedule', schedule: config.rechecks.schedule }]
      : []),
  ];
  return new JobsService(schedules, { logger: o.logger });
}

export interface JobParts {
  config: GatewayConfig;
  logger: Logger;
  store: GatewayStore;
  central: CentralClient;
  centralCert: Buffer;
  jpkiCas: readonly X509Certificate[];
  batchRunner: BatchRunner;
  rechecks: RecheckJob;
  /** the status's alerts: the certificate check keeps its own entry there */
  alerts: StatusAlert[];
}

/** Gives each scheduled job its work. */
export function defineJobs(jobs: JobsService, p: JobParts): void {
  const { config, logger, store } = p;
  jobs.define('central-cert-expiry', async () => certificateAlert(p));
  // Retention: the personal fields of old audit entries go; the chain and its clear fields stay.
  jobs.define('audit-retention', async () => {
    const n = await store.audit.purgePersonal(new Date(Date.now() - config.audit.retentionDays * DAY_MS));
    if (n > 0)
      logger.info('purged personal fields of old audit entries', {
        event: 'audit_purged',
        count: n,
        retentionDays: config.audit.retentionDays,
      });
  });
  jobs.define('batch-prune', async () => {
    const r = await store.batches.prune(new Date(Date.now() - config.batch.retentionDays * DAY_MS));
    if (r.batches > 0)
      logger.info('old batches deleted', { event: 'batch_pruned', batches: r.batches, entries: r.entries });
  });
  jobs.define('history-sample', async () => {
    await store.history.sample(store.outbox.stats().depth);
  });
  jobs.define('batch-schedule', async () => {
    const n = await p.batchRunner.runScheduled();
    if (n > 0) logger.info('scheduled batches started', { event: 'batch_scheduled', count: n });
  });
  if (jobs.has('revocation-refresh'))
    jobs.define('revocation-refresh', async () => {
      const r = await refreshRevocationList({
        central: p.central,
        cas: p.jpkiCas,
        sink: store.revocation,
        timeoutMs: config.central.timeoutMs,
      });
      logger.info('revocation list refreshed', {
        event: 'revocation_refreshed',
        count: r.count,
        outcome: r.outcome,
        thisUpdate: r.thisUpdate.toISOString(),
        ...(r.crlNumber !== undefined ? { crlNumber: r.crlNumber.toString() } : {}),
      });
    });
  if (jobs.has('time-lag-rechecks')) jobs.define('time-lag-rechecks', () => p.rechecks.run());
}

/** Keeps one CENTRAL_CERT_* alert in the status while the client certificate expires soon (or has). */
function certificateAlert(p: JobParts): void {
  const r = checkCertExpiry(p.centralCert);
  const i = p.alerts.findIndex((a) => a.code.startsWith('CENTRAL_CERT_'));
  if (r.level === 'ok') {
    if (i >= 0) p.alerts.splice(i, 1);
    return;
  }
  const alert = {
    code: r.code!,
    message: r.message,
    details: { notAfter: r.notAfter.toISOString(), daysLeft: r.daysLeft },
  };
  // First in the list, where it has always been (the check ran before the store opened).
  if (i >= 0) p.alerts.splice(i, 1, alert);
  else p.alerts.unshift(alert);
  p.logger[r.level === 'error' ? 'error' : 'warn'](r.message, {
    event: 'central_cert_expiry',
    code: r.code,
    daysLeft: r.daysLeft,
  });
}
