/**
 * Loaded by tap before every test file (package.json "tap"."node-arg"). A file that needs pcscd
 * (it imports test/helpers/pcscd.ts, directly or through another helper), or drives Chromium, is
 * run again inside a reader of its own, so test files can run in parallel:
 *
 * - as root: in private Linux namespaces (`unshare`): a network namespace with its own loopback,
 *   so vpcd's fixed ports 35963/35964 and the card's quick-ACK route never collide; a mount
 *   namespace with its own tmpfs on /run/pcscd, where pcscd and the PC/SC client library meet;
 *   a PID namespace, so the file's pcscd and daemons die with it; and its own TMPDIR. The file's
 *   pcscd is started by ensurePcscd() inside the namespace.
 * - otherwise (no root, or unshare refused): under `flock` on one lock file, so the reader files
 *   take the host's pcscd one at a time while the other files run in parallel.
 *
 * This process stays as a thin parent: it relays tap's IPC messages (t.setTimeout, timeouts) and
 * its signals (SIGALRM when tap times the file out) to the test process, and exits as it does.
 */
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HELPERS = dirname(fileURLToPath(import.meta.url));
const PCSCD_HELPER = join(HELPERS, 'pcscd.ts');
/** Set inside the reader: this file is not run again. */
export const INSIDE = 'ONSHI_OWN_READER';
/** The TMPDIR outside the reader, for caches the whole run shares (the sandbox PKI). */
export const SHARED_TMP = 'ONSHI_TEST_SHARED_TMP';

/**
 * True when `file` imports test/helpers/pcscd.ts, directly or through other local modules, or
 * drives Chromium (playwright-core): a browser on the host's network sees every interface and
 * route that other tests and namespaces add, and aborts page loads with ERR_NETWORK_CHANGED.
 */
export function needsReader(file: string, seen = new Set<string>()): boolean {
  if (file === PCSCD_HELPER) return true;
  if (seen.has(file)) return false;
  seen.add(file);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return false;
  }
  if (/'playwright-core'/.test(text)) return true;
  for (const m of text.matchAll(/\bfrom\s+'(\.{1,2}\/[^']+)'|\bimport\s+'(\.{1,2}\/[^']+)'/g)) {
    const spec = (m[1] ?? m[2])!.replace(/\.js$/, '.ts');
    const target = resolve(dirname(file), spec);
    // Only test code decides; src/ never starts pcscd.
    if (target.startsWith(dirname(HELPERS)) && needsReader(target, seen)) return true;
  }
  return false;
}

const NAMESPACE_SCRIPT = [
  'ip link set lo up || exit 97',
  'mkdir -p /run/pcscd && mount -t tmpfs -o mode=0755 tmpfs /run/pcscd || exit 97',
  // sh stays PID 1 of the namespace (it reaps orphans); the test is an ordinary process under it.
  '"$@" & pid=$!',
  'while :; do wait "$pid"; code=$?; kill -0 "$pid" 2>/dev/null || exit "$code"; done',
].join('\n');
const UNSHARE = ['--net', '--mount', '--pid', '--fork', '--kill-child', '--mount-proc', '--propagation', 'private'];

function namespacesWork(): boolean {
  if (process.getuid?.() !== 0) return false;
  const r = spawnSync('unshare', [...UNSHARE, 'sh', '-c', NAMESPACE_SCRIPT, 'sh', 'true'], {
    stdio: 'ignore',
    timeout: 10_000,
  });
  return r.status === 0;
}

/** The test's node process under `root` (the wrapper), found through /proc's parent links. */
function testProcess(root: number): number | undefined {
  const parents = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parents.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone */
    }
  }
  let frontier = [root];
  while (frontier.length) {
    const next: number[] = [];
    for (const [pid, ppid] of parents) {
      if (!frontier.includes(ppid)) continue;
      const exe = (() => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0];
        } catch {
          return '';
        }
      })();
      if (exe === process.execPath) return pid;
      next.push(pid);
    }
    frontier = next;
  }
  return undefined;
}

async function runInOwnReader(file: string): Promise<never> {
  const shared = process.env[SHARED_TMP] ?? tmpdir();
  const tmp = mkdtempSync(join(shared, 'onshi-reader-'));
  const execArgv = process.execArgv.filter((a) => !a.includes('@tapjs/processinfo'));
  const node = [process.execPath, ...execArgv, file, ...process.argv.slice(2)];
  // tap SIGKILLs this process 1 s after a timeout: the wrapper and the test die with it
  // (otherwise they would keep tap's stdout pipe open, and tap would wait for it forever).
  const orphanKill = ['--pdeathsig', 'SIGKILL'];
  const [cmd, args] = namespacesWork()
    ? ['setpriv', [...orphanKill, 'unshare', ...UNSHARE, 'sh', '-c', NAMESPACE_SCRIPT, 'sh', ...node]]
    : ['setpriv', [...orphanKill, 'flock', join(shared, 'onshi-test-reader.lock'), 'setpriv', ...orphanKill, ...node]];
  const child = spawn(cmd, args, {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [INSIDE]: '1', [SHARED_TMP]: shared, TMPDIR: tmp },
  });
  child.on('message', (m) => process.send?.(m));
  process.on('message', (m) => child.send(m as Parameters<typeof child.send>[0]));
  for (const sig of ['SIGALRM', 'SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(sig, () => {
      // The test process handles the signal (tap prints what was still running); the namespace
      // and everything in it goes when it exits, or after a grace period.
      const pid = child.pid === undefined ? undefined : testProcess(child.pid);
      if (pid) process.kill(pid, sig);
      setTimeout(() => child.kill('SIGKILL'), pid ? 10_000 : 0).unref();
    });
  }
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) =>
    child.once('exit', (c, s) => r([c, s])),
  );
  rmSync(tmp, { recursive: true, force: true });
  process.exit(code ?? 128 + (signal ? constants.signals[signal] : 0));
}

/**
 * CPU seconds (user + system) of this process and of the children it has reaped, theirs included:
 * the namespace's whole tree for a reader file, since each level waits for the one below.
 */
function cpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const [utime, stime, cutime, cstime] = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .slice(11, 15)
    .map(Number);
  return (utime! + stime! + cutime! + cstime!) / 100;
}

/**
 * tap's runner loads @tapjs/processinfo into each test process, and it passes itself on to every
 * node process started from there (NODE_OPTIONS, and a hook on spawn): it serves coverage and
 * `tap --changed`, which this suite does not use, and costs ~0.4 s of CPU at each daemon start.
 * The process tap started keeps it; the processes it starts (a reader file's test process among
 * them) run without it.
 */
function leaveProcessinfoOut(): void {
  const spawnHooks = (globalThis as Record<symbol, { listeners?: unknown[] } | undefined>)[
    Symbol.for('process-on-spawn@*:singletonId')
  ];
  if (spawnHooks?.listeners) spawnHooks.listeners.length = 0;
  const options = (process.env['NODE_OPTIONS'] ?? '')
    .split(/\s+/)
    .filter((o) => o && !o.includes('@tapjs/processinfo'))
    .join(' ');
  if (options) process.env['NODE_OPTIONS'] = options;
  else delete process.env['NODE_OPTIONS'];
  for (const name of Object.keys(process.env)) {
    if (name.startsWith('_TAPJS_PROCESSINFO_')) delete process.env[name];
  }
}

const file = process.argv[1];
if (process.env['TAP_CHILD_ID']) leaveProcessinfoOut();
// scripts/test.sh prints each file's CPU next to its time: on 2 cores the suite's length is its CPU.
const cpuLog = process.env['ONSHI_TEST_CPU_LOG'];
if (cpuLog && process.env['TAP_CHILD_ID'] && !process.env[INSIDE] && file) {
  const name = relative(process.cwd(), resolve(file));
  process.on('exit', () => appendFileSync(cpuLog, `${cpuSeconds().toFixed(1)} ${name}\n`));
}
if (process.env['TAP_CHILD_ID'] && !process.env[INSIDE] && file && needsReader(resolve(file))) {
  await runInOwnReader(resolve(file));
}
