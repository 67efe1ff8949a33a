/**
 * The one harness every benchmark shares: the result shape, percentiles, pairing a measurement
 * with its reference, the quick mode, and the real parts (the daemon as a child process started
 * by the built CLI, the central simulator, a bare WebSocket echo process as a reference).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ClientStore } from '../src/api/tokens.js';
import { CentralClient } from '../src/sync/central-client.js';
import type { CentralSettings, CentralStats } from '../src/sim/central/server.js';
import { peopleRows, seedPopulation, type PeopleRow } from '../src/sim/central/population.js';
import { ensureSandboxPki, type SandboxPki } from '../src/sim/pki.js';
import { todayJst } from '../src/oqs/dates.js';

export interface BenchResult {
  name: string;
  figures: Record<string, number>;
  target: string;
  met: boolean;
  /** why a target cannot be judged or met here */
  note?: string;
  skipped?: string;
}

export interface BenchContext {
  /** `npm run bench -- --quick`: everything shortened, for development (figures are not recorded) */
  quick: boolean;
}

/** n in a full run, a tenth of it (at least min) in quick mode */
export function scaled(ctx: BenchContext, n: number, min = 1): number {
  return ctx.quick ? Math.max(min, Math.round(n / 10)) : n;
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export const round = (v: number, digits = 3): number => Number(v.toFixed(digits));

/** p50/p99 of ours and the reference, and their ratios, named `<prefix>_…`. */
export function pairFigures(
  ours: readonly number[],
  ref: readonly number[],
  oursName = 'ours',
  refName = 'ref',
): Record<string, number> {
  const o50 = percentile(ours, 50),
    o99 = percentile(ours, 99),
    r50 = percentile(ref, 50),
    r99 = percentile(ref, 99);
  return {
    [`${oursName}_p50_ms`]: round(o50),
    [`${oursName}_p99_ms`]: round(o99),
    [`${refName}_p50_ms`]: round(r50),
    [`${refName}_p99_ms`]: round(r99),
    p50_ratio: round(o50 / r50),
    p99_ratio: round(o99 / r99),
    samples: ours.length,
  };
}

/**
 * Runs ours and the reference alternately in blocks, so that the machine's load (other engineers'
 * builds) falls on both alike. Each call returns the latencies (ms) of one block.
 */
export async function interleaved(
  rounds: number,
  ours: () => Promise<number[]>,
  ref: () => Promise<number[]>,
): Promise<{ ours: number[]; ref: number[] }> {
  const out = { ours: [] as number[], ref: [] as number[] };
  for (let i = 0; i < rounds; i++) {
    // alternate which goes first: neither always gets the warmer machine
    if (i % 2 === 0) {
      out.ours.push(...(await ours()));
      out.ref.push(...(await ref()));
    } else {
      out.ref.push(...(await ref()));
      out.ours.push(...(await ours()));
    }
  }
  return out;
}

/**
 * The reference side of interleaved blocks with more than one reference: each call runs one block
 * of every party, starting with the next one each time (none always gets the warmer machine), and
 * returns the first party's latencies; the others' are appended to their own lists.
 */
export function rotating(
  first: () => Promise<number[]>,
  others: Array<{ block: () => Promise<number[]>; into: () => number[] } | undefined>,
): () => Promise<number[]> {
  let turn = 0;
  return async () => {
    let out: number[] = [];
    const parties: Array<() => Promise<void>> = [
      async () => {
        out = await first();
      },
      ...others.flatMap((o) => (o ? [async () => void o.into().push(...(await o.block()))] : [])),
    ];
    const k = turn++ % parties.length;
    for (const p of [...parties.slice(k), ...parties.slice(0, k)]) await p();
    return out;
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- the real parts

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin', 'onshi.js');
export const PKI_DIR = join(tmpdir(), 'onshi-bench-pki');

export function pkiFiles(): { caFile: string; certFile: string; keyFile: string; jpkiCaFile: string } {
  return {
    caFile: join(PKI_DIR, 'pki', 'central-ca.pem'),
    certFile: join(PKI_DIR, 'pki', 'gateway-client.pem'),
    keyFile: join(PKI_DIR, 'pki', 'gateway-client.key'),
    jpkiCaFile: join(PKI_DIR, 'pki', 'jpki-ca.pem'),
  };
}

export function benchPki(): Promise<SandboxPki> {
  return ensureSandboxPki(PKI_DIR);
}

export interface CentralProcess {
  url: string;
  controlUrl: string;
  pid: number;
  /** PUT /control/settings (latencyMs, errorRate…) */
  settings(patch: Partial<CentralSettings>): Promise<void>;
  stats(): Promise<CentralStats>;
  batchSettings(patch: Record<string, number>): Promise<void>;
  batchStats(): Promise<{ submits: number; fetches: number; entries: number }>;
  close(): Promise<void>;
}

/**
 * The central simulator in a process of its own (`onshi sim central`), as the real one is remote:
 * a reference measured "straight to central" then crosses one process boundary each way, like the
 * gateway does, instead of looping back inside the benchmark's own event loop.
 */
export async function startCentral(): Promise<CentralProcess> {
  ensureBuilt();
  await benchPki();
  // BENCH_CENTRAL_CPU_PROF=DIR: profile the simulator too (what the reference itself costs)
  const prof = process.env.BENCH_CENTRAL_CPU_PROF
    ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CENTRAL_CPU_PROF]
    : [];
  const child = spawn(
    process.execPath,
    [...prof, BIN, 'sim', 'central', '--state', PKI_DIR, '--port', '0', '--control-port', '0'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const ready = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      if (l.startsWith('READY ')) resolve(l);
    });
    child.once('exit', (c) => reject(new Error(`the central simulator exited ${c}`)));
  });
  const url = /central=(\S+)/.exec(ready)![1]!;
  const controlUrl = /control=(\S+)/.exec(ready)![1]!;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(controlUrl + path, {
      method,
      ...(body ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    });
    if (!res.ok) throw new Error(`central control ${method} ${path}: ${res.status} ${await res.text()}`);
    return res.status === 204 ? undefined : res.json();
  };
  return {
    url,
    controlUrl,
    pid: child.pid!,
    async settings(patch) {
      await call('PUT', '/control/settings', patch);
    },
    async stats() {
      return (await call('GET', '/control/stats')) as CentralStats;
    },
    async batchSettings(patch) {
      await call('PUT', '/control/batch/settings', patch);
    },
    async batchStats() {
      return (await call('GET', '/control/batch/stats')) as { submits: number; fetches: number; entries: number };
    },
    async close() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The gateway's own central client, straight to the simulator: the references' side of a pair. */
export function centralClient(url: string): CentralClient {
  const f = pkiFiles();
  return new CentralClient({
    url,
    ca: readFileSync(f.caFile),
    cert: readFileSync(f.certFile),
    key: readFileSync(f.keyFile),
    userId: 'sandbox',
    timeoutMs: 10_000,
  });
}

/** Runs `n` tasks with at most `width` at once; resolves with the wall time in ms. */
export async function pool(n: number, width: number, task: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await task(next++);
    }),
  );
  return performance.now() - t0;
}

/** The simulator's people that answer 有効 (validity 1): numbers queries for the gateway's API. */
export function validQueries(): Array<
  Partial<Omit<PeopleRow, 'id' | 'label' | 'expectedValidity'>> & {
    insurerNumber: string;
    number: string;
    birthdate: string;
  }
> {
  return peopleRows(seedPopulation(), todayJst())
    .filter((r) => r.expectedValidity === '1')
    .map(({ insurerNumber, symbol, number, branch, birthdate }) => ({
      insurerNumber,
      number,
      birthdate,
      ...(symbol ? { symbol } : {}),
      ...(branch ? { branch } : {}),
    }));
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `onshi-bench-${prefix}-`));
}

export interface DaemonConfigInput {
  centralUrl: string;
  outage?: Record<string, unknown>;
  log?: 'error' | 'warn' | 'info' | 'debug';
  reader?: boolean;
  batch?: Record<string, unknown>;
}

/** A config file and a client token for a daemon with its own state directory under `dir`. */
export function writeDaemonConfig(
  dir: string,
  name: string,
  c: DaemonConfigInput,
): { file: string; token: string; stateDir: string } {
  const stateDir = join(dir, name);
  const file = join(dir, `${name}.json`);
  const f = pkiFiles();
  writeFileSync(
    file,
    JSON.stringify({
      stateDir,
      log: { level: c.log ?? 'info' },
      api: { port: 0, shutdownGraceMs: 2000 },
      // The admin page and health on loopback and free ports, so that benchmark daemons never collide.
      admin: { host: '127.0.0.1', port: 0 },
      health: { port: 0 },
      central: { url: c.centralUrl, caFile: f.caFile, certFile: f.certFile, keyFile: f.keyFile },
      reader: { enabled: c.reader ?? false },
      ...(c.outage ? { outage: c.outage } : {}),
      ...(c.batch ? { batch: c.batch } : {}),
    }),
  );
  return { file, token: new ClientStore(stateDir).add('bench').token, stateDir };
}

/** Another build of the daemon (a root with bin/ and dist/) or other node flags: the B of an A/B. */
export interface DaemonVariant {
  root?: string;
  /** space-separated node flags instead of the unit's */
  nodeArgs?: string;
  /** environment instead of the unit's `Environment=` lines */
  env?: Record<string, string>;
}

/**
 * The A/B switch: BENCH_AB_ROOT=DIR (a tree with bin/, dist/, package.json and node_modules, e.g.
 * the previous commit built there), BENCH_AB_NODE_ARGS='flags' ('' for none) and/or
 * BENCH_AB_ENV='NAME=value …' ('' for none, instead of the unit's Environment= lines) make the
 * benchmarks that support it run a second daemon, `base`, in the same interleaved blocks as ours.
 * Undefined when none is set.
 */
export function abVariant(): (DaemonVariant & { label: string }) | undefined {
  const root = process.env.BENCH_AB_ROOT;
  const nodeArgs = process.env.BENCH_AB_NODE_ARGS;
  const envText = process.env.BENCH_AB_ENV;
  if (root === undefined && nodeArgs === undefined && envText === undefined) return undefined;
  const env =
    envText === undefined
      ? undefined
      : Object.fromEntries(
          envText
            .split(' ')
            .filter(Boolean)
            .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
        );
  return {
    ...(root !== undefined ? { root } : {}),
    ...(nodeArgs !== undefined ? { nodeArgs } : {}),
    ...(env !== undefined ? { env } : {}),
    label: [
      root !== undefined ? `root ${root}` : '',
      nodeArgs !== undefined ? `node args '${nodeArgs}'` : '',
      envText !== undefined ? `env '${envText}'` : '',
    ]
      .filter(Boolean)
      .join(', '),
  };
}

export interface Daemon {
  child: ChildProcess;
  pid: number;
  wsUrl: string;
  /** ms from spawn to the `ready` log line */
  startMs: number;
  /** every JSON log line, parsed */
  lines: Array<Record<string, unknown>>;
  /** resolves at the first log line with this event */
  waitEvent(event: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  rssBytes(): number;
  cpuMs(): number;
  /** the main thread's (event loop's) share of cpuMs */
  mainThreadCpuMs(): number;
  /** V8 heap after a full GC, through the daemon's ONSHI_MEMORY_REPORT hook (SIGUSR2) */
  heap(): Promise<{ heapUsed: number; heapTotal: number; rss: number }>;
  stop(): Promise<void>;
}

export function ensureBuilt(): void {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'index.js')))
    throw new Error('the daemon is not built: run `npm run build` first');
}

/** VmRSS of a process, in bytes. */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** RssAnon and RssFile of a process, in bytes: the heaps and malloc vs mapped files (node's binary, addons). */
export function rssSplitOf(pid: number): { anon: number; file: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN) * 1024;
  return { anon: kb('RssAnon'), file: kb('RssFile') };
}

/** CPU time (user + system, all threads) a process has used, in ms: less noisy than wall time on a busy machine. */
export function cpuMsOf(pid: number, statFile = `/proc/${pid}/stat`): number {
  return statOf(statFile).cpuMs;
}
/** A /proc stat file's CPU time (utime + stime, ms) and start time (clock ticks after boot). */
function statOf(statFile: string): { cpuMs: number; start: number } {
  const stat = readFileSync(statFile, 'utf8');
  // the fields after the command's closing parenthesis, from field 3 (state) on
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { cpuMs: ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS, start: Number(f[19]) };
}
/** CPU time of a process's main thread alone (its event loop), in ms. */
export function mainThreadCpuMsOf(pid: number): number {
  return cpuMsOf(pid, `/proc/${pid}/task/${pid}/stat`);
}
/**
 * CPU time (ms) and wake-ups (wakeupsOf) of each of a process's threads, keyed by thread id and start time
 * (`/proc/PID/task/TID/stat` field 22), so that two samples pair the same threads whatever order
 * they are listed in (and a thread id reused by a later thread is not taken for the old one). The
 * name: `main` for the main thread, else `/proc/PID/task/TID/comm` — the writer names its thread
 * `onshi-writer` (writer-worker.ts); under Node 20 every other thread is `node` (Node 22:
 * `V8 DefaultWorke`, `libuv-worker`…), told apart by start order: the first five are V8's platform
 * (its delayed-task thread and its 4 workers — GC and compiler tasks — made before any JavaScript
 * runs), `v8_platform`; the rest (libuv's pool, made at its first use; node's inspector thread)
 * `node_other`. Threads that ended are not counted.
 */
export function threadCpuMsOf(pid: number): Map<string, { name: string; ms: number; wakeups: number }> {
  const threads: { key: string; tid: number; start: number; comm: string; ms: number; wakeups: number }[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const { cpuMs, start } = statOf(`/proc/${pid}/task/${tid}/stat`);
      threads.push({
        key: `${tid}@${start}`,
        tid: Number(tid),
        start,
        comm: readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim(),
        ms: cpuMs,
        wakeups: wakeupsOf(`/proc/${pid}/task/${tid}/status`),
      });
    } catch {
      // the thread ended between the listing and the read
    }
  }
  threads.sort((x, y) => x.start - y.start || x.tid - y.tid);
  const out = new Map<string, { name: string; ms: number; wakeups: number }>();
  let plain = 0;
  for (const t of threads) {
    const name =
      t.tid === pid
        ? 'main'
        : t.comm !== 'node'
          ? t.comm
          : plain++ < V8_PLATFORM_THREADS
            ? 'v8_platform'
            : 'node_other';
    out.set(t.key, { name, ms: t.ms, wakeups: t.wakeups });
  }
  return out;
}
/**
 * Times a thread (its `/proc/PID/task/TID/status`) went to sleep and was woken again (voluntary
 * context switches). Each costs CPU beyond the work done when woken, and much of it on a virtual
 * machine, where an idle vCPU halts and is woken by its host: the same work done with fewer
 * wake-ups costs less.
 */
function wakeupsOf(statusFile: string): number {
  return Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync(statusFile, 'utf8'))?.[1] ?? 0);
}
/** V8's platform under node's default --v8-pool-size: a delayed-task thread and 4 workers */
const V8_PLATFORM_THREADS = 5;
/** Per thread name, what two samples of threadCpuMsOf differ by (CPU ms, or wake-ups), divided by `n`. */
export function threadCpuDelta(
  before: Map<string, { name: string; ms: number; wakeups: number }>,
  after: Map<string, { name: string; ms: number; wakeups: number }>,
  n: number,
  field: 'ms' | 'wakeups' = 'ms',
): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const [k, t] of after) sum[t.name] = (sum[t.name] ?? 0) + t[field] - (before.get(k)?.[field] ?? 0);
  const out: Record<string, number> = {};
  for (const [name, v] of Object.entries(sum)) out[name] = round(v / n);
  return out;
}
/** USER_HZ: 100 on every Linux this runs on */
const CLOCK_TICKS = 100;

/**
 * The node flags of the systemd unit's ExecStart (between node and bin/onshi.js), so that the
 * benchmarks measure the daemon as it ships (e.g. its young-generation cap).
 */
export function unitNodeFlags(root = ROOT): string[] {
  const unit = readFileSync(join(root, 'systemd', 'onshi-gateway.service'), 'utf8');
  const exec = /^ExecStart=(.*)$/m.exec(unit)?.[1]?.trim().split(/\s+/) ?? [];
  const bin = exec.findIndex((a) => a.endsWith('/bin/onshi.js'));
  return bin > 0 ? exec.slice(1, bin) : [];
}

/** The systemd unit's `Environment=NAME=value` lines (e.g. the allocator's settings), as the daemon ships. */
export function unitEnvironment(root = ROOT): Record<string, string> {
  const unit = readFileSync(join(root, 'systemd', 'onshi-gateway.service'), 'utf8');
  const env: Record<string, string> = {};
  for (const m of unit.matchAll(/^Environment=(\w+)=(\S*)$/gm)) env[m[1]!] = m[2]!;
  return env;
}

/**
 * The real daemon: `node FLAGS bin/onshi.js start --config FILE`, as systemd runs it (the unit's
 * node flags and Environment= lines, plus --expose-gc for heap figures). BENCH_NODE_ARGS replaces
 * the unit's flags (an A/B of flags: BENCH_NODE_ARGS=' ' runs with none).
 */
export function startDaemon(configFile: string, variant: DaemonVariant = {}): Promise<Daemon> {
  ensureBuilt();
  // BENCH_DAEMON_ROOT=DIR: every daemon of this run from another build (runs of A and B in turns,
  // for the benchmarks that start one daemon only)
  const root = variant.root ?? (process.env.BENCH_DAEMON_ROOT || undefined);
  const bin = root ? join(root, 'bin', 'onshi.js') : BIN;
  const t0 = performance.now();
  // BENCH_CPU_PROF=DIR: profile the daemon (node --cpu-prof), to find where a missed target goes
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [];
  const nodeArgs = variant.nodeArgs ?? process.env.BENCH_NODE_ARGS;
  // the unit of the build that runs: an A/B of builds also compares their units' flags and environment
  const flags = nodeArgs !== undefined ? nodeArgs.split(' ').filter(Boolean) : unitNodeFlags(root);
  const child = spawn(process.execPath, ['--expose-gc', ...prof, ...flags, bin, 'start', '--config', configFile], {
    env: { ...process.env, ...(variant.env ?? unitEnvironment(root)), ONSHI_MEMORY_REPORT: '1', NOTIFY_SOCKET: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<{ event: string; resolve(l: Record<string, unknown>): void }> = [];
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  createInterface({ input: child.stdout! }).on('line', (text) => {
    if (process.env.BENCH_DAEMON_STDOUT) appendFileSync(process.env.BENCH_DAEMON_STDOUT, text + '\n');
    let l: Record<string, unknown>;
    try {
      l = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    lines.push(l);
    for (const w of waiters.splice(0)) {
      if (w.event === l.event) w.resolve(l);
      else waiters.push(w);
    }
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const waitEvent = (event: string, timeoutMs = 30_000): Promise<Record<string, unknown>> => {
    const seen = lines.find((l) => l.event === event);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`daemon: no ${event} within ${timeoutMs} ms; stderr: ${stderr.slice(-500)}`)),
        timeoutMs,
      );
      waiters.push({
        event,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`daemon exited before ${event}: ${stderr.slice(-500)}`));
      });
    });
  };
  return waitEvent('ready').then((ready) => {
    const startMs = performance.now() - t0;
    let reports = 0;
    return {
      child,
      pid: child.pid!,
      wsUrl: `ws://127.0.0.1:${ready.wsPort as number}/v1`,
      startMs,
      lines,
      waitEvent,
      rssBytes: () => rssOf(child.pid!),
      cpuMs: () => cpuMsOf(child.pid!),
      mainThreadCpuMs: () => mainThreadCpuMsOf(child.pid!),
      async heap() {
        const n = ++reports;
        const before = lines.filter((l) => l.event === 'memory').length;
        child.kill('SIGUSR2');
        const end = Date.now() + 10_000;
        while (lines.filter((l) => l.event === 'memory').length < before + 1) {
          if (Date.now() > end) throw new Error(`daemon: memory report ${n} did not come`);
          await sleep(20);
        }
        const m = lines.filter((l) => l.event === 'memory').at(-1)!;
        return { heapUsed: m.heapUsed as number, heapTotal: m.heapTotal as number, rss: m.rss as number };
      },
      async stop() {
        if (child.exitCode === null) child.kill('SIGTERM');
        await exited;
      },
    };
  });
}

/**
 * What the references answer to the client's hello: a session as the gateway's (GatewayClient reads
 * its limits), heartbeat 0 (no watchdog: the references never ping).
 */
const HELLO_SRC = `const HELLO = (id) => ({ type: 'hello.accepted', id, protocol: '1', scopes: [], limits: { maxPayloadBytes: 1048576, heartbeatMs: 0, eventHighWaterBytes: 1048576, sendHardLimitBytes: 4194304 } });`;

/**
 * The module source of a reference WebSocket server: it greets, answers hello like a gateway,
 * runs `onMessage` (source, with the parsed message `m` and the socket `ws`) for everything else,
 * and prints its port once listening.
 */
function serveSrc(onMessage: string): string {
  return `${HELLO_SRC}
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, clientTracking: false });
wss.on('connection', (ws) => {
  ws.send(JSON.stringify({ type: 'welcome' }));
  ws.on('message', async (d) => {
    const m = JSON.parse(d.toString());
    if (m.type === 'hello') return ws.send(JSON.stringify(HELLO(m.id)));
${onMessage}
  });
});
wss.on('listening', () => process.stdout.write(String(wss.address().port) + '\\n'));`;
}

/**
 * A bare WebSocket echo server in a process of its own (the reference for the API's round trip:
 * the same ws library, the same loopback, a process boundary like the daemon's, no work).
 */
export async function startEchoServer(): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const src = `import { WebSocketServer } from 'ws';
${HELLO_SRC}
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, clientTracking: false });
wss.on('connection', (ws) => { ws.send(JSON.stringify({ type: 'welcome' })); ws.on('message', (d) => { const m = JSON.parse(d.toString()); ws.send(JSON.stringify(m.type === 'hello' ? HELLO(m.id) : { type: 'pong', id: m.id })); }); });
wss.on('listening', () => process.stdout.write(String(wss.address().port) + '\\n'));`;
  return spawnWsReference('echo server', src);
}

/**
 * The floor of the footprint under the project's fixed choices: the bare echo plus what the daemon
 * must have whatever its code — a worker thread holding a better-sqlite3 connection in WAL mode
 * (the writer: fsync never runs on the event loop), a read connection on the main thread, and one
 * Intl.DateTimeFormat (node-cron's, which maps ICU's data). Nothing of ours is loaded.
 */
export async function startBareFloor(dir: string): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const sqlite = JSON.stringify(new URL('../node_modules/better-sqlite3/lib/index.js', import.meta.url).pathname);
  const db = JSON.stringify(join(dir, 'bare-floor.db'));
  const src = `import { WebSocketServer } from ${JSON.stringify(new URL('../node_modules/ws/wrapper.mjs', import.meta.url).href)};
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
const Database = createRequire(import.meta.url)(${sqlite});
const writer = new Worker(\`const D = require(${sqlite.replace(/"/g, "'")}); const db = new D(${db.replace(/"/g, "'")}); db.pragma('journal_mode = WAL'); db.exec('CREATE TABLE IF NOT EXISTS t (k BLOB PRIMARY KEY, v BLOB)'); require('node:worker_threads').parentPort.on('message', () => {});\`, { eval: true, resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 128 } });
await new Promise((r) => setTimeout(r, 500));
const reader = new Database(${db}, { readonly: true });
reader.prepare('SELECT v FROM t WHERE k = ?').get(Buffer.alloc(32));
new Intl.DateTimeFormat('en-US', { timeZone: 'Asia/Tokyo', hour: '2-digit' }).formatToParts(new Date());
${HELLO_SRC}
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, clientTracking: false });
wss.on('connection', (ws) => { ws.send(JSON.stringify({ type: 'welcome' })); ws.on('message', (d) => { const m = JSON.parse(d.toString()); ws.send(JSON.stringify(m.type === 'hello' ? HELLO(m.id) : { type: 'pong', id: m.id })); }); });
wss.on('listening', () => process.stdout.write(String(wss.address().port) + '\\n'));`;
  const script = join(dir, 'bare-floor.mjs');
  writeFileSync(script, src);
  return spawnWsReference('bare floor', src, process.env, script);
}

/** A reference WebSocket server in a node process of its own, from module source that prints its port. */
async function spawnWsReference(
  name: string,
  src: string,
  env: NodeJS.ProcessEnv = process.env,
  /** run this module file instead of `src` (which it holds) */
  script?: string,
): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, script ? [script] : ['--input-type=module', '-e', src], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (l) => resolve(Number(l)));
    child.once('exit', (c) => reject(new Error(`${name} exited ${c}`)));
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    url: `ws://127.0.0.1:${port}/`,
    pid: child.pid!,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * The least any gateway can cost: a bare relay in a process of its own that takes a check off a
 * WebSocket and asks central with the gateway's own CentralClient and codecs (same mutual TLS,
 * keep-alive) — no validation, cache, outbox, audit, advice or logs. Measured beside the daemon,
 * it says what the extra hop alone costs on this machine (its socket writes and wake-ups).
 *
 * With `writesDir`, the same relay also makes the three writes every live check of the daemon
 * makes once its answer is sent, through the daemon's own store (GatewayStore: its writer thread,
 * its sealing and keyed hashes, the same deferred commits): the answer's copy for outages, the
 * check's audit entry and its use count. Beside the bare relay it says what those writes alone cost.
 */
export async function startBareRelay(
  centralUrl: string,
  writesDir?: string,
): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  ensureBuilt();
  const f = pkiFiles();
  const dist = (m: string): string => JSON.stringify(new URL(`../dist/${m}`, import.meta.url).href);
  const writes = writesDir
    ? `
    setImmediate(() => {
      const failed = (e) => process.stderr.write('relay write failed: ' + e.message + '\\n');
      store.eligibility.put(numbersLookup(request.query), cacheable(result), new Date(result.answeredAt), 'central', { defer: true }).catch(failed);
      const use = usageOf(result);
      if (use) store.usage.record({ method: 'numbers', ...use }).catch(failed);
      store.audit.append({ kind: 'check', actor: 'relay', action: 'inquiry.numbers', remote: '127.0.0.1', mode: 'numbers', outcome: checkOutcome(result), source: 'central', personal: { requestId: m.id } }, new Date(), { defer: true }).catch(failed);
    });`
    : '';
  const src = `import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { WebSocketServer } from 'ws';
import { CentralClient } from ${dist('sync/central-client.js')};
import { toNumbersQuery } from ${dist('checks/numbers.js')};
import { toInquiryResult } from ${dist('checks/result.js')};
import { todayJst } from ${dist('oqs/dates.js')};
${
  writesDir
    ? `import { GatewayStore } from ${dist('cache/index.js')};
import { numbersLookup } from ${dist('checks/result.js')};
import { cacheable } from ${dist('checks/outage.js')};
import { checkOutcome, usageOf } from ${dist('daemon/audit.js')};
const store = await GatewayStore.open({ dir: ${JSON.stringify(writesDir)} });`
    : ''
}
const env = JSON.parse(process.env.RELAY);
const central = new CentralClient({ url: env.url, ca: readFileSync(env.ca), cert: readFileSync(env.cert), key: readFileSync(env.key), userId: 'sandbox', timeoutMs: 10000 });
${serveSrc(`    if (m.type !== 'inquiry.numbers') return ws.send(JSON.stringify({ type: m.type + '.accepted', id: m.id }));
    const request = { confirmationDate: todayJst(), institutionCode: '1319999996', fileId: randomUUID(), query: toNumbersQuery(m.query) };
    const answer = await central.searchByNumbers(request, { deadline: Date.now() + 5000, idempotencyKey: randomUUID() });
    const result = { ...toInquiryResult(answer), source: 'central' };
    ws.send(JSON.stringify({ type: 'inquiry.result', id: m.id, result }));${writes}`)}`;
  const env = {
    ...process.env,
    RELAY: JSON.stringify({ url: centralUrl, ca: f.caFile, cert: f.certFile, key: f.keyFile }),
  };
  if (!writesDir) return spawnWsReference('bare relay', src, env);
  mkdirSync(writesDir, { recursive: true });
  return spawnWsReference('relay with the writes', src, env, moduleFile(join(writesDir, 'relay-writes.mjs'), src));
}

/**
 * A reference's source as a module file, for one that runs the store: its worker thread inherits
 * node's flags, and --input-type (what `-e` needs) is refused for a worker's file. ws by its path,
 * as the file is outside the repository.
 */
function moduleFile(file: string, src: string): string {
  const ws = JSON.stringify(new URL('../node_modules/ws/wrapper.mjs', import.meta.url).href);
  writeFileSync(file, src.replace("from 'ws'", `from ${ws}`));
  return file;
}

/**
 * The least a cache answer during an outage can cost: a process of its own that takes a check off
 * a WebSocket, looks the answer up in the gateway's own store (HMAC lookup key, AES-GCM, SQLite
 * read on the main thread) and commits its re-verification to the store's outbox (the writer
 * thread, synchronous=FULL) before answering — no validation, advice, audit, metrics or logs.
 * `answers` are the (lookup, answer) pairs its store is filled with first.
 */
export async function startBareCache(
  dir: string,
  answers: Array<{ lookup: unknown; answer: unknown }>,
): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  ensureBuilt();
  const file = join(dir, 'bare-cache-answers.json');
  writeFileSync(file, JSON.stringify(answers));
  const dist = (m: string): string => JSON.stringify(new URL(`../dist/${m}`, import.meta.url).href);
  const src = `import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { WebSocketServer } from 'ws';
import { GatewayStore } from ${dist('cache/index.js')};
import { toNumbersQuery } from ${dist('checks/numbers.js')};
import { numbersLookup } from ${dist('checks/result.js')};
const env = JSON.parse(process.env.BARE_CACHE);
const store = await GatewayStore.open({ dir: env.dir, outboxMax: 1000000 });
for (const a of JSON.parse(readFileSync(env.file, 'utf8'))) await store.eligibility.put(a.lookup, a.answer, new Date());
${serveSrc(`    const query = toNumbersQuery(m.query);
    const hit = store.eligibility.get(numbersLookup(query), 86400000);
    const { id } = await store.outbox.enqueue({ idempotencyKey: randomUUID(), kind: 'numbers', payload: { query } });
    ws.send(JSON.stringify({ type: 'inquiry.result', id: m.id, result: { ...hit.answer, source: 'cache', recheck: { queued: true, outboxId: id } } }));`)}`;
  return spawnWsReference(
    'bare cache',
    src,
    {
      ...process.env,
      BARE_CACHE: JSON.stringify({ dir: join(dir, 'bare-cache'), file }),
    },
    moduleFile(join(dir, 'bare-cache.mjs'), src),
  );
}

export const CARD_LOCK = '/tmp/onshi-card.lock';

/**
 * Runs `fn` holding the machine's pcscd/virtual-card lock (the same flock the tests take), so a
 * benchmark never shares the card with another engineer's run. Held only for `fn`.
 */
export async function withCardLock<T>(fn: () => Promise<T>): Promise<T> {
  const holder = spawn('flock', [CARD_LOCK, '-c', 'echo locked; cat > /dev/null'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: holder.stdout! }).once('line', () => resolve());
    holder.once('exit', (c) => reject(new Error(`flock ${CARD_LOCK} exited ${c}`)));
  });
  try {
    return await fn();
  } finally {
    const gone = new Promise<void>((r) => holder.once('exit', () => r()));
    holder.stdin!.end();
    await gone;
  }
}

/** Removes a benchmark's temp dir (best effort). */
export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * What a benchmark started, stopped in reverse order — also when a later start fails, so a failed
 * set-up leaves no simulator or daemon running.
 */
export class Teardown {
  private readonly steps: (() => unknown)[] = [];
  /** Registers how to stop `part`, and returns it. */
  add<T>(part: T, stop: (p: T) => unknown): T {
    this.steps.push(() => stop(part));
    return part;
  }
  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch {
        // a part that fails to stop must not keep the others running
      }
    }
  }
}
