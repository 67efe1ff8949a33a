/**
 * `onshi doctor` through the real IPsec lab, as IT runs it on the box (inside the clinic namespace,
 * with the gateway's config): every hop of the line ok; then an MTU black hole on the outer link,
 * which doctor names on the line while the tunnel's clamped route still carries its probe and TLS.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import type { DoctorCheck } from '../../src/cli/doctor-check.js';
import { ipsecLabPrerequisites } from '../../src/sim/line/ipsec/index.js';
import { daemonTakesLine, type IpsecSandbox, startIpsecSandbox } from '../../src/sim/sandbox-ipsec.js';
import { BIN } from '../helpers/sandbox-cli.js';

t.setTimeout(300_000);
const run = promisify(execFile);

const LINE_CHECKS = [
  'IKE SA',
  'CHILD SA',
  'route through the tunnel',
  'path MTU',
  'line MTU',
  'line and TLS to central',
];

async function doctor(sb: IpsecSandbox): Promise<Map<string, DoctorCheck>> {
  // doctor exits non-zero when a check fails or warns; its JSON is on stdout either way.
  const out = await run(
    'ip',
    ['netns', 'exec', sb.ready.netns!, process.execPath, BIN, 'doctor', '--json', '--config', sb.ready.config!],
    { timeout: 60_000 },
  )
    .then((r) => r.stdout)
    .catch((e: { stdout?: string }) => e.stdout ?? '[]');
  const checks = JSON.parse(out) as DoctorCheck[];
  return new Map(checks.filter((c) => LINE_CHECKS.includes(c.name)).map((c) => [c.name, c]));
}

t.test('doctor names the line hop by hop, and an MTU black hole behind the clamp', async (t) => {
  const missing = await ipsecLabPrerequisites();
  if (missing) {
    if (process.env.CI) t.fail(`the IPsec lab cannot run: ${missing}`);
    else t.plan(0, missing);
    return;
  }
  t.ok(daemonTakesLine(), 'the gateway drives the line');
  const state = mkdtempSync(join(tmpdir(), 'onshi-ipsec-doctor-'));
  const sb = await startIpsecSandbox({ stateDir: state, portBase: 0, card: false });
  t.teardown(async () => {
    await sb.close();
    rmSync(state, { recursive: true, force: true });
  });

  const well = await doctor(sb);
  t.same(
    LINE_CHECKS.map((n) => [n, well.get(n)?.status]),
    LINE_CHECKS.map((n) => [n, 'ok']),
    'every hop of the line ok',
  );
  t.match(well.get('path MTU')?.detail, /^1040-byte packets/, "the probe uses the clamped route's MTU");

  await sb.lab.setMtuBlackhole(1200);
  const hole = await doctor(sb);
  t.equal(hole.get('line MTU')?.status, 'warn', 'the black hole is named on the line');
  t.match(hole.get('line MTU')?.detail, /MTU black hole on the line/);
  t.equal(hole.get('path MTU')?.status, 'ok', 'the clamped tunnel still carries its probe');
  t.equal(hole.get('line and TLS to central')?.status, 'ok', 'TLS to central still completes');

  await sb.lab.setMtuBlackhole(undefined);
  t.equal((await doctor(sb)).get('line MTU')?.status, 'ok', 'cleared: ok again');
});
