/**
 * 1. Gateway overhead: a check by numbers through the daemon's WebSocket API against the same
 * request sent straight to the central simulator with the gateway's own CentralClient (the same
 * mutual TLS, keep-alive both ways), central latency 0, one request at a time, interleaved blocks.
 */
import { randomUUID } from 'node:crypto';
import { GatewayClient } from '../src/gateway/client.js';
import { toNumbersQuery } from '../src/gateway/inquiry.js';
import { todayJst } from '../src/oqs/dates.js';
import {
  centralClient, cleanup, interleaved, pairFigures, round, scaled, startCentral, startDaemon, tempDir, validQueries, writeDaemonConfig,
  type BenchContext, type BenchResult,
} from './lib.js';

const BLOCK = 5;
const INSTITUTION = '1319999996';

export async function run(ctx: BenchContext): Promise<BenchResult> {
  const dir = tempDir('overhead');
  const central = await startCentral();
  const cfg = writeDaemonConfig(dir, 'gw', { centralUrl: central.url });
  const daemon = await startDaemon(cfg.file);
  const direct = centralClient(central.url);
  const client = await GatewayClient.connect(daemon.wsUrl, cfg.token);
  const queries = validQueries();
  try {
    let i = 0;
    const viaGateway = async (): Promise<number[]> => {
      const out: number[] = [];
      for (let k = 0; k < BLOCK; k++) {
        const query = queries[i++ % queries.length]!;
        const t0 = performance.now();
        const r = await client.request({ type: 'inquiry.numbers', query });
        out.push(performance.now() - t0);
        if ((r.result as { source?: string }).source !== 'central') throw new Error('the gateway did not ask central');
      }
      return out;
    };
    const straight = async (): Promise<number[]> => {
      const out: number[] = [];
      for (let k = 0; k < BLOCK; k++) {
        const query = queries[i++ % queries.length]!;
        const t0 = performance.now();
        const request = { confirmationDate: todayJst(), institutionCode: INSTITUTION, fileId: randomUUID(), query: toNumbersQuery(query) };
        await direct.searchByNumbers(request, { deadline: Date.now() + 5000, idempotencyKey: randomUUID() });
        out.push(performance.now() - t0);
      }
      return out;
    };
    await interleaved(20, viaGateway, straight); // warm-up: TLS sessions, JIT, the idToken
    const cpu0 = daemon.cpuMs();
    const m = await interleaved(scaled(ctx, 400, 40), viaGateway, straight);
    const figures = pairFigures(m.ours, m.ref, 'gateway', 'direct');
    // the daemon's own CPU per check (all threads): what our code costs, whatever the machine's load
    figures.daemon_cpu_ms_per_check = round((daemon.cpuMs() - cpu0) / m.ours.length);
    return {
      name: 'gateway-overhead', figures,
      target: 'check by numbers via the gateway vs straight to central (latency 0): p50 ratio ≤ 1.3, p99 ratio ≤ 1.5',
      met: figures.p50_ratio! <= 1.3 && figures.p99_ratio! <= 1.5,
    };
  } finally {
    await client.close();
    direct.close();
    await daemon.stop();
    await central.close();
    cleanup(dir);
  }
}
