/**
 * 5. Replay: 2,000 checks queued during an outage (written to the daemon's outbox before it
 * starts, as after a long outage) drained by the real daemon against central with 20 ms latency
 * and at most 5 in flight (outage.relayConcurrency). References in the same run: the ideal
 * (N × 20 ms / 5) and a bare client doing the same N searches with 5 in flight.
 */
import { randomUUID } from 'node:crypto';
import { GatewayStore } from '../src/cache/index.js';
import { toNumbersQuery } from '../src/checks/numbers.js';
import { toInquiryResult } from '../src/checks/result.js';
import { summarize } from '../src/checks/outcome.js';
import { todayJst } from '../src/oqs/dates.js';
import type { QualificationRequest } from '../src/oqs/types.js';
import {
  centralClient,
  cleanup,
  pool,
  round,
  scaled,
  startCentral,
  startDaemon,
  tempDir,
  validQueries,
  writeDaemonConfig,
  type BenchContext,
  type BenchResult,
} from './lib.js';

export const LATENCY_MS = 20;
export const IN_FLIGHT = 5;
const INSTITUTION = '1319999996';

export async function run(ctx: BenchContext): Promise<BenchResult> {
  const n = scaled(ctx, 2000, 200);
  const dir = tempDir('replay');
  const central = await startCentral();
  const direct = centralClient(central.url);
  const queries = validQueries().map((q) => toNumbersQuery(q));
  const request = (i: number): QualificationRequest => ({
    confirmationDate: todayJst(),
    institutionCode: INSTITUTION,
    fileId: `bench-${i}`,
    query: queries[i % queries.length]!,
  });
  try {
    // what the counter was told from the cache: central's own answer, so nothing is reconciled
    const told = await Promise.all(
      queries.map(async (_q, i) =>
        summarize({
          ...toInquiryResult(
            await direct.searchByNumbers(request(i), { deadline: Date.now() + 5000, idempotencyKey: randomUUID() }),
          ),
          source: 'cache',
        }),
      ),
    );
    await central.settings({ latencyMs: LATENCY_MS });

    // the reference: a bare client, the same searches, 5 in flight
    const directMs = await pool(n, IN_FLIGHT, (i) =>
      direct.searchByNumbers(request(i), { deadline: Date.now() + 10_000, idempotencyKey: randomUUID() }),
    );

    const cfg = writeDaemonConfig(dir, 'gw', {
      centralUrl: central.url,
      outage: { relayConcurrency: IN_FLIGHT, outboxMax: 1_000_000 },
    });
    const store = await GatewayStore.open({ dir: cfg.stateDir, outboxMax: 1_000_000 });
    const toldAt = new Date().toISOString();
    for (let i = 0; i < n; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, n - i) }, (_x, k) =>
          store.outbox.enqueue({
            idempotencyKey: randomUUID(),
            kind: 'numbers',
            payload: { request: request(i + k), inquiryId: randomUUID(), told: told[(i + k) % queries.length], toldAt },
          }),
        ),
      );
    }
    await store.close();

    const daemon = await startDaemon(cfg.file);
    try {
      const cpu0 = daemon.cpuMs(); // from ready on: the drain, not the start
      const drained = await daemon.waitEvent('outbox_drained', 600_000);
      const cpuMs = daemon.cpuMs() - cpu0;
      // from the daemon's own log clock: the first replay's start (its log time less its duration) to drained
      const replays = daemon.lines.filter((l) => l.event === 'outbox_replayed');
      const at = (l: Record<string, unknown>): number => Date.parse(l.timestamp as string);
      const firstStart = Math.min(...replays.map((l) => at(l) - (l.ms as number)));
      const gatewayMs = at(drained) - firstStart;
      const replayed = replays.length;
      // where a slot's time goes: the whole replay (central's answer + the bookkeeping) and, of it, the settling commit
      const mean = (k: string): number => replays.reduce((a, l) => a + Number(l[k] ?? NaN), 0) / replays.length;
      const ideal = (n * LATENCY_MS) / IN_FLIGHT;
      const figures = {
        entries: n,
        replayed,
        reconciled: daemon.lines.filter((l) => l.event === 'reconciliation_added').length,
        gateway_drain_ms: round(gatewayMs, 1),
        bare_client_ms: round(directMs, 1),
        ideal_ms: ideal,
        ratio_to_ideal: round(gatewayMs / ideal),
        bare_ratio_to_ideal: round(directMs / ideal),
        ratio_to_bare: round(gatewayMs / directMs),
        drained_count: Number((drained as { replayed?: number }).replayed ?? NaN),
        daemon_cpu_ms_per_entry: round(cpuMs / n, 3),
        replay_mean_ms: round(mean('ms'), 2),
        settle_mean_ms: round(mean('settleMs'), 2),
        bare_per_request_ms: round((directMs * IN_FLIGHT) / n, 2),
      };
      const met = replayed === n && figures.ratio_to_ideal <= 1.2;
      // The bare client's ratio is the line's own floor on this machine (TLS, wake-ups, the timers):
      // what the daemon cannot go below.
      const note = met
        ? undefined
        : `the bare client alone needed ${figures.bare_ratio_to_ideal} × the ideal (${figures.bare_per_request_ms} ms a request against ${LATENCY_MS} ms) in this run; the daemon ${figures.ratio_to_bare} × the bare client`;
      return {
        name: 'replay',
        figures,
        target: `${n} queued checks drained against central at ${LATENCY_MS} ms latency, ≤ ${IN_FLIGHT} in flight: ≤ 1.2 × the ideal (${ideal} ms)`,
        met,
        ...(note ? { note } : {}),
      };
    } finally {
      await daemon.stop();
    }
  } finally {
    direct.close();
    await central.close();
    cleanup(dir);
  }
}
