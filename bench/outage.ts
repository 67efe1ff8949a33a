/**
 * 2. Answer during an outage: checks answered from the cache (each also committing its
 * re-verification to the outbox, synchronous=FULL, before the answer) with 50 clients at once,
 * against a bare ws echo round trip with 50 clients in the same run.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { LookupInput } from '../src/cache/index.js';
import { toNumbersQuery } from '../src/checks/numbers.js';
import { cacheable } from '../src/checks/outage.js';
import { numbersLookup, toInquiryResult } from '../src/checks/result.js';
import { CacheKeys } from '../src/cache/crypto.js';
import { todayJst } from '../src/oqs/dates.js';
import { type AnswerOf, GatewayClient, type RequestOf, type RequestType } from '../src/client/index.js';
import {
  abVariant,
  centralClient,
  cleanup,
  cpuMsOf,
  interleaved,
  mainThreadCpuMsOf,
  pairFigures,
  rotating,
  percentile,
  round,
  scaled,
  sleep,
  startBareCache,
  startCentral,
  startDaemon,
  startEchoServer,
  Teardown,
  tempDir,
  validQueries,
  writeDaemonConfig,
  type BenchContext,
  type BenchResult,
} from './lib.js';

const CLIENTS = 50;
const PER_CLIENT = 10;

/** CPU ms (this process) of one cache hit's crypto: lookup key, opening the sealed answer, JSON.parse. */
function cacheCryptoMs(lookup: LookupInput, answer: unknown): number {
  const keys = new CacheKeys(randomBytes(32));
  const aad = { table: 'eligibility', purpose: 'answer', row: 'x' };
  const blob = keys.sealJson(answer, aad);
  const N = 5000;
  for (let i = 0; i < 500; i++) keys.openJson(blob, aad);
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    keys.lookupKey(lookup);
    keys.openJson(blob, aad);
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000 / N;
}

export async function run(ctx: BenchContext): Promise<BenchResult> {
  const down = new Teardown();
  const clients: GatewayClient[] = [];
  const baseClients: GatewayClient[] = [];
  const echoes: GatewayClient[] = [];
  const bareCaches: GatewayClient[] = [];
  let bareCache: Awaited<ReturnType<typeof startBareCache>> | undefined;
  try {
    const dir = down.add(tempDir('outage'), cleanup);
    const central = down.add(await startCentral(), (c) => c.close());
    const cfg = writeDaemonConfig(dir, 'gw', { centralUrl: central.url, outage: { outboxMax: 1_000_000 } });
    const daemon = down.add(await startDaemon(cfg.file), (d) => d.stop());
    // BENCH_AB_ROOT / BENCH_AB_NODE_ARGS: the other build (or flags) in the same blocks, as `base`
    const ab = abVariant();
    const baseCfg = ab
      ? writeDaemonConfig(dir, 'base', { centralUrl: central.url, outage: { outboxMax: 1_000_000 } })
      : undefined;
    const base = ab && baseCfg ? down.add(await startDaemon(baseCfg.file, ab), (d) => d.stop()) : undefined;
    const echo = down.add(await startEchoServer(), (e) => e.stop());
    // the clients close first (registered last): the servers they talk to are still up
    down.add(undefined, () =>
      Promise.all([...clients, ...baseClients, ...echoes, ...bareCaches].map((c) => c.close().catch(() => {}))),
    );
    const queries = validQueries();
    const gateways = [{ d: daemon, token: cfg.token, conns: clients }];
    if (base && baseCfg) gateways.push({ d: base, token: baseCfg.token, conns: baseClients });
    for (const g of gateways) {
      const first = await GatewayClient.connect(g.d.wsUrl, g.token);
      g.conns.push(first);
      for (const query of queries) await first.request({ type: 'inquiry.numbers', query });
    }
    await sleep(500); // the cache writes are not awaited by the counter
    // one of central's answers as the cache keeps it, for the crypto reference below
    // and every query's, for the bare cache reference's store
    const direct = centralClient(central.url);
    const known: Array<{ lookup: LookupInput; answer: unknown }> = [];
    for (const q of queries) {
      const query = toNumbersQuery(q);
      const answer = cacheable(
        toInquiryResult(
          await direct.searchByNumbers(
            { confirmationDate: todayJst(), institutionCode: '1319999996', fileId: 'bench', query },
            { deadline: Date.now() + 5000, idempotencyKey: randomUUID() },
          ),
        ),
      );
      known.push({ lookup: numbersLookup(query), answer });
    }
    const sample = known[0]!;
    direct.close();
    bareCache = await startBareCache(dir, known);
    for (let k = 0; k < CLIENTS; k++) bareCaches.push(await GatewayClient.connect(bareCache.url, 'none'));
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
    let echoed = 0;
    const echoOnce = block(echoes, () => ({ type: 'ping' }));
    const echoBlock = async (): Promise<number[]> => {
      const out = await echoOnce();
      echoed += out.length;
      return out;
    };
    const bareCacheBlock = block(bareCaches, () => ({
      type: 'inquiry.numbers',
      query: queries[n++ % queries.length]!,
    }));
    // the reference side: the echo, the bare cache, and the A/B's base daemon when there is one,
    // each block in a rotating order
    let based: number[] = [];
    let bared: number[] = [];
    const bare = rotating(echoBlock, [
      { block: bareCacheBlock, into: () => bared },
      cachedBase ? { block: cachedBase, into: () => based } : undefined,
    ]);
    await interleaved(2, cached, bare); // warm-up
    based = [];
    bared = [];
    const bareMain0 = mainThreadCpuMsOf(bareCache.pid),
      bareAll0 = cpuMsOf(bareCache.pid);
    const baseCpu0 = base?.cpuMs() ?? 0,
      baseMain0 = base?.mainThreadCpuMs() ?? 0;
    const cpu0 = daemon.cpuMs(),
      main0 = daemon.mainThreadCpuMs(),
      echo0 = mainThreadCpuMsOf(echo.pid),
      echoed0 = echoed;
    const m = await interleaved(scaled(ctx, 20, 2), cached, bare);
    const figures = pairFigures(m.ours, m.ref, 'cache', 'echo');
    figures.daemon_cpu_ms_per_check = round((daemon.cpuMs() - cpu0) / m.ours.length);
    // One event loop answers everyone: in a closed loop of 50 clients an answer waits, on average,
    // for the other 49 to be served, so 50 × the loop's own CPU per answer is the p50 it cannot beat.
    figures.event_loop_cpu_ms_per_check = round((daemon.mainThreadCpuMs() - main0) / m.ours.length);
    figures.closed_loop_p50_floor_ms = round(CLIENTS * figures.event_loop_cpu_ms_per_check);
    figures.clients = CLIENTS;
    // References for the loop's cost: the echo's own loop per answer, and what the store's
    // encryption at rest alone costs per answer (the lookup key's HMAC, AES-GCM opening and
    // parsing a cached answer), measured in this process on the same kind of answer.
    figures.echo_event_loop_cpu_ms_per_answer = round((mainThreadCpuMsOf(echo.pid) - echo0) / (echoed - echoed0));
    Object.assign(figures, {
      bare_cache_p50_ms: round(percentile(bared, 50)),
      bare_cache_p99_ms: round(percentile(bared, 99)),
      bare_cache_event_loop_cpu_ms_per_answer: round((mainThreadCpuMsOf(bareCache.pid) - bareMain0) / bared.length),
      bare_cache_cpu_ms_per_answer: round((cpuMsOf(bareCache.pid) - bareAll0) / bared.length),
    });
    figures.cache_crypto_ms_per_answer = round(cacheCryptoMs(sample.lookup, sample.answer));
    if (base) {
      Object.assign(figures, {
        base_p50_ms: round(percentile(based, 50)),
        base_p99_ms: round(percentile(based, 99)),
        base_p99_ratio: round(percentile(based, 99) / figures.echo_p99_ms!),
        base_daemon_cpu_ms_per_check: round((base.cpuMs() - baseCpu0) / based.length),
        base_event_loop_cpu_ms_per_check: round((base.mainThreadCpuMs() - baseMain0) / based.length),
      });
    }
    // issue 22's targets (the first round's p99 ≤ 5 ms is retired: the bare echo alone is over it here)
    const met = figures.event_loop_cpu_ms_per_check! <= 0.15 && figures.p99_ratio! <= 3;
    const why: string[] = [];
    if (figures.event_loop_cpu_ms_per_check! > 0.15)
      why.push(
        `the event loop's ${figures.event_loop_cpu_ms_per_check} ms an answer (target 0.15) against the echo's ${figures.echo_event_loop_cpu_ms_per_answer} ms and a bare cache server's ${figures.bare_cache_event_loop_cpu_ms_per_answer} ms (the same store: lookup, decryption, its outbox commit, nothing else; p99 ${figures.bare_cache_p99_ms} ms); the cache's encryption at rest alone is ${figures.cache_crypto_ms_per_answer} ms`,
      );
    if (figures.echo_p99_ms! > 5)
      why.push(`(retired: p99 ≤ 5 ms) the bare echo alone has p99 ${figures.echo_p99_ms} ms with 50 clients here`);
    if (figures.p99_ratio! > 3)
      why.push(
        `a cache answer (lookup, decryption, advice, its durable outbox entry) costs the event loop ${figures.event_loop_cpu_ms_per_check} ms, so 50 clients at once wait ≥ ${figures.closed_loop_p50_floor_ms} ms at p50 against the echo's ${figures.echo_p50_ms}`,
      );
    return {
      name: 'outage-answer',
      figures,
      target:
        "issue 22: a cache answer (with its outbox commit) costs the event loop ≤ 0.15 ms; p99 ≤ 3 × a bare ws echo's, 50 clients",
      met,
      ...(!met && why.length > 0 ? { note: why.join('; ') } : {}),
    };
  } finally {
    await bareCache?.stop();
    await down.run();
  }
}
