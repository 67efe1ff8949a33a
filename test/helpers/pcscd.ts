/**
 * pcscd for integration tests. ensurePcscd(t) starts `pcscd -f` when none is listening on the vpcd
 * port, and waits for the virtual readers. Missing packages: FAIL under CI, skip with a reason
 * otherwise. restartPcscd() kills and restarts a pcscd — only one this helper started itself (its
 * pid is recorded), never someone else's daemon.
 *
 * ONSHI_VPCD_PORT moves the vpcd ports (slot 0 = port, slot 1 = port + 1) by running pcscd with a
 * private reader.conf.d; useful in a private mount namespace next to a system pcscd.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The part of a tap Test this helper uses. tap's skip(name, cb) defines a skipped subtest. */
type Tap = {
  fail(msg: string): unknown;
  skip(name: string, cb: () => unknown): unknown;
};

export const PCSCD = '/usr/sbin/pcscd';
export const VPCD_DRIVER = '/usr/lib/pcsc/drivers/serial/libifdvpcd.so';
export const VPCD_PORT = Number(process.env['ONSHI_VPCD_PORT'] ?? 35963);
export const READER_NAMES = ['Virtual PCD 00 00', 'Virtual PCD 00 01'] as const;
const PID_FILE = join(tmpdir(), 'onshi-test-pcscd.pid');
const PCSCD_SOCKET = '/run/pcscd/pcscd.comm';

/** LISTEN sockets from /proc (no connect: a TCP connect to vpcd would look like a card). */
async function listening(port: number): Promise<boolean> {
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(f, 'utf8').catch(() => '');
    const hex = port.toString(16).toUpperCase().padStart(4, '0');
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[1]?.endsWith(`:${hex}`) && cols[3] === '0A') return true;
    }
  }
  return false;
}

export async function pcscdListening(): Promise<boolean> {
  return (await listening(VPCD_PORT)) && (await listening(VPCD_PORT + 1));
}

async function waitFor(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return cond();
}

async function configDir(): Promise<string | undefined> {
  if (VPCD_PORT === 35963) return undefined;
  const dir = join(tmpdir(), `onshi-readerconf-${VPCD_PORT}`);
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'vpcd'),
    `FRIENDLYNAME "Virtual PCD"\nDEVICENAME   /dev/null:0x${VPCD_PORT.toString(16).toUpperCase()}\nLIBPATH      ${VPCD_DRIVER}\nCHANNELID    0x${VPCD_PORT.toString(16).toUpperCase()}\n`,
  );
  return dir;
}

async function startOwnPcscd(): Promise<number> {
  const conf = await configDir();
  // A stale socket from a killed daemon makes pcscd refuse to start: remove it only if nobody listens.
  const child = spawn(PCSCD, ['-f', ...(conf ? ['-c', conf] : [])], { detached: true, stdio: 'ignore' });
  child.unref();
  const pid = child.pid!;
  await writeFile(PID_FILE, String(pid));
  return pid;
}

async function ownPid(): Promise<number | undefined> {
  const pid = Number(await readFile(PID_FILE, 'utf8').catch(() => ''));
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmd.startsWith(PCSCD) || cmd.startsWith('pcscd') ? pid : undefined;
}

/** Returns true when pcscd with the virtual readers is ready; otherwise fails (CI) or skips. */
export async function ensurePcscd(t: Tap): Promise<boolean> {
  if (!existsSync(PCSCD) || !existsSync(VPCD_DRIVER)) {
    const why = `pcscd (${PCSCD}) or vsmartcard-vpcd (${VPCD_DRIVER}) is not installed: apt-get install pcscd vsmartcard-vpcd`;
    if (process.env['CI']) t.fail(why);
    else t.skip(why, () => {});
    return false;
  }
  if (await pcscdListening()) return true;
  if (!(await ownPid()) && existsSync(PCSCD_SOCKET) && !(await pcscdAlive())) await rm(PCSCD_SOCKET, { force: true });
  await startOwnPcscd();
  if (await waitFor(pcscdListening, 10_000)) return true;
  t.fail(`pcscd did not start listening on ${VPCD_PORT}/${VPCD_PORT + 1} within 10 s`);
  return false;
}

async function pcscdAlive(): Promise<boolean> {
  const pid = Number((await readFile('/run/pcscd/pcscd.pid', 'utf8').catch(() => '')).trim());
  return Number.isInteger(pid) && pid > 0 && existsSync(`/proc/${pid}`);
}

/** True when the running pcscd was started by this helper, so a test may kill and restart it. */
export async function canRestartPcscd(): Promise<{ ok: boolean; reason?: string }> {
  if (await ownPid()) return { ok: true };
  return {
    ok: false,
    reason: 'the running pcscd was not started by the test helper; refusing to kill a process we did not start',
  };
}

/** Kills our pcscd (SIGKILL = a crash), waits downMs, starts a new one and waits for the readers. */
export async function restartPcscd(opts: { downMs?: number; signal?: NodeJS.Signals } = {}): Promise<void> {
  const pid = await ownPid();
  if (!pid) throw new Error('restartPcscd: no pcscd started by this helper');
  process.kill(pid, opts.signal ?? 'SIGKILL');
  await waitFor(
    async () =>
      !existsSync(`/proc/${pid}`) || (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).includes(') Z'),
    5000,
  );
  await waitFor(async () => !(await listening(VPCD_PORT)), 5000);
  await new Promise((r) => setTimeout(r, opts.downMs ?? 500));
  await rm(PCSCD_SOCKET, { force: true });
  await rm('/run/pcscd/pcscd.pid', { force: true });
  await startOwnPcscd();
  if (!(await waitFor(pcscdListening, 10_000))) throw new Error('pcscd did not come back');
}

/** For t.teardown after a restart test: make sure a pcscd is up again. */
export async function restorePcscd(): Promise<void> {
  if (await pcscdListening()) return;
  await startOwnPcscd();
  await waitFor(pcscdListening, 10_000);
}
