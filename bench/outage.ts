/**
 * 2. Answer during an outage: checks answered from the cache (each also committing its
 * re-verification to the outbox, synchronous=FULL, before the answer) with 50 clients at once,
 * against a bare ws echo round trip with 50 clients in the same run.
 */
import { type AnswerOf, GatewayClient, type RequestOf, type RequestType } from '../src/client/index.js';
import {
  abVariant,
  cleanup,
  interleaved,
  pairFigures,
  percentile,
  round,
  scaled,
  sleep,
  startCentral,
  startDaemon,
  startEchoServer,
  tempDir,
  validQueries,
  writeDaemonConfig,
  type BenchContext,
  type BenchResult,
} from './lib.js';

const CLIENTS = 50;
const PER_CLIENT = 10;

export async function run(ctx: BenchContext): Promise<BenchResult> {
  const dir = tempDir('outage');
  const central = await startCentral();
  const cfg = writeDaemonConfig(dir, 'gw', { centralUrl: central.url, outage: { outboxMax: 1_000_000 } });
  const daemon = await startDaemon(cfg.file);
  // BENCH_AB_ROOT / BENCH_AB_NODE_ARGS: the other build (or flags) in the same blocks, as `base`
  const ab = abVariant();
  const baseCfg = ab
    ? writeDaemonConfig(dir, 'base', { centralUrl: central.url, outage: { outboxMax: 1_000_000 } })
    : undefined;
  const base = ab && baseCfg ? await startDaemon(baseCfg.file, ab) : undefined;
  const echo = await startEchoServer();
  const queries = validQueries();
  const clients: GatewayClient[] = [];
  const baseClients: GatewayClient[] = [];
  const echoes: GatewayClient[] = [];
  try {
    const gateways = [{ d: daemon, token: cfg.token, conns: clients }];
    if (base && baseCfg) gateways.push({ d: base, token: baseCfg.token, conns: baseClients });
    for (const g of gateways) {
      const first = await GatewayClient.connect(g.d.wsUrl, g.token);
      g.conns.push(first);
      for (const query of queries) await first.request({ type: 'inquiry.numbers', query });
    }
    await sleep(500); // the cache writes are not awaited by the counter
    await central.close();
    // the line fails: after failureThreshold failures the breaker opens and checks go straight to the cache
    for (const g of gateways) {
      const first = g.conns[0]!;
      for (let k = 0; k < 20; k++) {
        const st = await first.request({ type: 'status' });
        if (st.status.link.state !== 'up') break;
        await first.request({ type: 'inquiry.numbers', query: queries[0]! });
      }
      for (let k = 1; k < CLIENTS; k++) g.conns.push(await GatewayClient.connect(g.d.wsUrl, g.token));
    }
    for (let k = 0; k < CLIENTS; k++) echoes.push(await GatewayClient.connect(echo.url, 'none'));

    let n = 0;
    const block =
      <T extends RequestType>(
        conns: GatewayClient[],
        message: () => RequestOf<T> & { type: T },
        check?: (r: AnswerOf<T>) => void,
      ) =>
      async (): Promise<number[]> => {
        const per = await Promise.all(
          conns.map(async (c) => {
            const out: number[] = [];
            for (let k = 0; k < PER_CLIENT; k++) {
              const t0 = performance.now();
              const r = await c.request<T>(message());
              out.push(performance.now() - t0);
              check?.(r);
            }
            return out;
          }),
        );
        return per.flat();
      };
    const cachedVia = (conns: GatewayClient[]) =>
      block(
        conns,
        () => ({ type: 'inquiry.numbers', query: queries[n++ % queries.length]! }),
        (r) => {
          const res = r.result;
          if (res.source !== 'cache' || !res.recheck?.queued)
            throw new Error(`not a queued cache answer: ${JSON.stringify(res).slice(0, 200)}`);
        },
      );
    const cached = cachedVia(clients);
    const cachedBase = base ? cachedVia(baseClients) : undefined;
    const echoBlock = block(echoes, () => ({ type: 'ping' }));
    // the reference side: the echo, and the A/B's base daemon when there is one, in turns
    let based: number[] = [];
    let turn = 0;
    const bare = async (): Promise<number[]> => {
      if (!cachedBase) return echoBlock();
      const baseFirst = turn++ % 2 === 0;
      if (baseFirst) based.push(...(await cachedBase()));
      const out = await echoBlock();
      if (!baseFirst) based.push(...(await cachedBase()));
      return out;
    };
    await interleaved(2, cached, bare); // warm-up
    based = [];
    const baseCpu0 = base?.cpuMs() ?? 0,
      baseMain0 = base?.mainThreadCpuMs() ?? 0;
    const cpu0 = daemon.cpuMs(),
      main0 = daemon.mainThreadCpuMs();
    const m = await interleaved(scaled(ctx, 20, 2), cached, bare);
    const figures = pairFigures(m.ours, m.ref, 'cache', 'echo');
    figures.daemon_cpu_ms_per_check = round((daemon.cpuMs() - cpu0) / m.ours.length);
    // One event loop answers everyone: in a closed loop of 50 clients an answer waits, on average,
    // for the other 49 to be served, so 50 × the loop's own CPU per answer is the p50 it cannot beat.
    figures.event_loop_cpu_ms_per_check = round((daemon.mainThreadCpuMs() - main0) / m.ours.length);
    figures.closed_loop_p50_floor_ms = round(CLIENTS * figures.event_loop_cpu_ms_per_check);
    figures.clients = CLIENTS;
    if (base) {
      Object.assign(figures, {
        base_p50_ms: round(percentile(based, 50)),
        base_p99_ms: round(percentile(based, 99)),
        base_p99_ratio: round(percentile(based, 99) / figures.echo_p99_ms!),
        base_daemon_cpu_ms_per_check: round((base.cpuMs() - baseCpu0) / based.length),
        base_event_loop_cpu_ms_per_check: round((base.mainThreadCpuMs() - baseMain0) / based.length),
      });
    }
    const met = figures.cache_p99_ms! <= 5 && figures.p99_ratio! <= 3;
    const why: string[] = [];
    if (figures.echo_p99_ms! > 5)
      why.push(`the bare echo alone has p99 ${figures.echo_p99_ms} ms with 50 clients here`);
    if (figures.p99_ratio! > 3)
      why.push(
        `a cache answer (lookup, decryption, advice, its durable outbox entry) costs the event loop ${figures.event_loop_cpu_ms_per_check} ms, so 50 clients at once wait ≥ ${figures.closed_loop_p50_floor_ms} ms at p50 against the echo's ${figures.echo_p50_ms}`,
      );
    return {
      name: 'outage-answer',
      figures,
      target: 'cache answer (with its outbox commit) under 50 clients vs a bare ws echo: p99 ≤ 5 ms and p99 ratio ≤ 3',
      met,
      ...(!met && why.length > 0 ? { note: why.join('; ') } : {}),
    };
  } finally {
    await Promise.all([...clients, ...baseClients, ...echoes].map((c) => c.close().catch(() => {})));
    await echo.stop();
    await daemon.stop();
    await base?.stop();
    await central.close().catch(() => {});
    cleanup(dir);
  }
}
