/**
 * The parts behind a check that run in the background: the line monitor, the outbox relay (replays
 * outage checks), the batch runner, the time-lag rechecks, with what they log and publish. One
 * service: start() starts the monitor, the relay and the runner; stop() waits for a recheck run
 * still going, then stops them.
 */
import type { EligibilityWrite, GatewayStore } from '../cache/index.js';
import type { GatewayConfig } from '../core/config.js';
import { codeOf } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Service } from '../core/service.js';
import type { CentralClient } from '../sync/central-client.js';
import { LinkMonitor } from '../sync/link.js';
import type { LineService } from '../sync/line/service.js';
import { OutboxRelay } from '../sync/relay.js';
import { RetryBudget } from '../sync/retry-budget.js';
import { BatchRunner } from '../checks/batch-runner.js';
import { OutagePath } from '../checks/outage.js';
import { RecheckJob } from '../checks/rechecks.js';
import { createReplay } from '../checks/replay.js';
import type { EventHub } from '../protocol/events.js';
import { BatchApi } from '../api/batch-api.js';

export interface CheckPartsDeps {
  config: GatewayConfig;
  store: GatewayStore;
  central: CentralClient;
  events: EventHub;
  logger: Logger;
  /** the line (both modes): its tunnel edges drive the monitor; a failed probe runs its path check */
  line?: LineService;
}

export class CheckParts implements Service {
  readonly name = 'checks';
  readonly link: LinkMonitor;
  readonly budget: RetryBudget;
  readonly rechecks: RecheckJob;
  readonly relay: OutboxRelay<EligibilityWrite>;
  readonly outage: OutagePath;
  readonly batchRunner: BatchRunner;
  readonly batchApi: BatchApi;

  constructor(private readonly d: CheckPartsDeps) {
    const { config, store, central, events, logger } = d;
    const o = config.outage;
    const backoff = { baseMs: o.backoffBaseMs, capMs: o.backoffCapMs };
    const timeoutMs = config.central.timeoutMs;
    // A failed probe runs the line's path check, which names the failing hop.
    const guard = d.line ? d.line.guardProbe.bind(d.line) : (p: (deadline: number) => Promise<void>) => p;
    this.link = new LinkMonitor({
      probe: guard((deadline) => central.probe({ deadline })),
      failureThreshold: o.failureThreshold,
      slowMs: o.slowMs,
      probeIntervalMs: o.probeIntervalMs,
      probeTimeoutMs: o.probeTimeoutMs,
      backoff,
    });
    this.rechecks = new RecheckJob({
      ...config.rechecks,
      store,
      central,
      events,
      logger,
      institutionCode: config.institutionCode,
      timeoutMs,
    });
    this.budget = new RetryBudget({ ratio: o.retryBudgetRatio });
    this.relay = new OutboxRelay({
      store: store.outbox,
      link: this.link,
      budget: this.budget,
      maxInFlight: o.relayConcurrency,
      ttlMs: o.outboxTtlHours * 3600_000,
      backoff,
      replay: createReplay({ central, store, events, logger, timeoutMs, rechecks: this.rechecks }),
    });
    this.outage = new OutagePath({
      store,
      link: this.link,
      events,
      logger,
      cacheMaxAgeMs: o.cacheMaxAgeHours * 3600_000,
      offlineReserveMs: o.offlineReserveMs,
      onQueued: () => this.relay.kick(),
    });
    // Batch inquiry: chunks toward central with bounded concurrency; resumes what a restart interrupted.
    const bc = config.batch;
    this.batchRunner = new BatchRunner({
      store,
      central,
      institutionCode: config.institutionCode,
      concurrency: bc.concurrency,
      pollMs: bc.pollMs,
      pollMaxMs: bc.pollMaxMs,
      timeoutMs,
      allowRequest: () => this.link.allowRequest(),
    });
    this.batchApi = new BatchApi({
      store,
      runner: this.batchRunner,
      events,
      chunkSize: bc.chunkSize,
      maxEntries: bc.maxEntries,
      onError: (e) =>
        logger.error('could not mark a batch running (it runs anyway)', {
          event: 'batch_start_failed',
          code: codeOf(e),
        }),
    });
    this.report();
  }

  start(): void {
    // The line's history (admin page) begins with each start: the monitor assumes up until it knows.
    this.auditLine(this.link.status().state, 'starting');
    this.link.start();
    this.d.line?.drive(this.link);
    this.d.events.publish('line', 'line.state', { ...this.link.status() }, { retain: true });
    this.relay.start();
    this.batchRunner.start();
  }

  async stop(): Promise<void> {
    await this.rechecks.stop();
    this.link.stop();
    await this.relay.stop();
    await this.batchRunner.stop();
  }

  /** Each change of the line's state in the audit chain, with its reason: the admin page's timeline. */
  private auditLine(state: string, reason: string): void {
    this.d.store.audit
      .append({
        kind: 'admin',
        actor: 'system',
        action: `line.state.${state}`,
        target: reason.slice(0, 128),
        outcome: state,
      })
      .catch((e: unknown) =>
        this.d.logger.error('could not audit a line state change', { event: 'line_audit_failed', code: codeOf(e) }),
      );
  }

  /** What the line, the relay and the batch runner log and publish. */
  private report(): void {
    const { logger, events } = this.d;
    this.link.on('state', (st) => {
      logger.warn(`line ${st.state}: ${st.reason}`, { event: 'line_state', state: st.state, reason: st.reason });
      events.publish('line', 'line.state', { ...st }, { retain: true });
      this.auditLine(st.state, st.reason);
    });
    // central's answer times, per 5 minutes in the store's history (the admin page's p50/p95)
    this.link.on('answer', (ms) => this.d.store.history.observeLatency(ms));
    const relay = this.relay;
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
        code: codeOf(e),
        error: e.message,
      }),
    );
    this.batchRunner.on('error', (e: Error) =>
      logger.error('the batch runner could not use the store', {
        event: 'batch_store_error',
        code: codeOf(e),
        error: e.message,
      }),
    );
    this.batchRunner.on('done', (p: { batchId: string; state: string; total: number; errors: number }) =>
      logger.info('batch finished', {
        event: 'batch_done',
        batchId: p.batchId,
        state: p.state,
        total: p.total,
        errors: p.errors,
      }),
    );
  }
}
