/**
 * The daemon drives the real IPsec line (the lab's two charons, the gateway in the clinic namespace,
 * the central simulator behind the tunnel): central deletes the SA, and the daemon's status shows the
 * link down within seconds with strongSwan's reason, before any request failed (the probe interval
 * is a minute, no check is sent); the gateway brings the tunnel back by itself and the link is up.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ipsecLabPrerequisites } from '../../src/sim/line/ipsec/index.js';
import { type IpsecSandbox, startIpsecSandbox } from '../../src/sim/sandbox-ipsec.js';
import type { DaemonStatus } from '../../src/ops/status.js';
import { until } from '../helpers/ipsec-lab.js';

t.setTimeout(180_000);

async function statusOf(sb: IpsecSandbox): Promise<DaemonStatus> {
  const out = await sb.lab.exec('clinic', process.execPath, [
    '-e',
    `fetch('http://127.0.0.1:8766/status').then((r) => r.text()).then((b) => process.stdout.write(b))`,
  ]);
  return JSON.parse(out) as DaemonStatus;
}

t.test('central deletes the SA: the link is down at once, then up again by itself', async (t) => {
  const missing = await ipsecLabPrerequisites();
  if (missing) {
    if (process.env.CI) t.fail(`the IPsec lab cannot run: ${missing}`);
    else t.plan(0, `the IPsec lab cannot run here: ${missing}`);
    return;
  }
  // mkdtemp, not t.testdir(): charon's VICI socket lives here, and a unix socket path is limited to 108 bytes.
  const state = mkdtempSync(join(tmpdir(), 'onshi-line-daemon-'));
  t.teardown(() => rmSync(state, { recursive: true, force: true }));
  const sb = await startIpsecSandbox({
    stateDir: state,
    portBase: 0,
    card: false,
    gateway: { outage: { probeIntervalMs: 60_000, failureThreshold: 3 } },
  });
  t.teardown(() => sb.close());
  t.equal(sb.tunnelBy, 'gateway', 'the daemon drives the line');

  const up = await until('the link up with the tunnel', 30_000, async () => {
    const s = await statusOf(sb);
    return s.link.state === 'up' && s.line.tunnel?.child === 'installed' ? s : undefined;
  });
  t.equal(up.line.mode, 'ipsec');
  t.equal(up.line.tunnel?.ike, 'established');

  await sb.lab.terminate('central');
  const down = await until('the link down', 30_000, async () => {
    const s = await statusOf(sb);
    return s.link.state === 'down' ? s : undefined;
  });
  t.match(down.link.reason, /^line down: /, "down because the line said so, with strongSwan's reason");
  t.equal(down.link.consecutiveFailures, 0, 'before any request failed');
  t.ok(down.line.failingHop === 'child-sa' || down.line.failingHop === 'ike-sa', `failing hop ${down.line.failingHop}`);

  const back = await until('the link up again', 60_000, async () => {
    const s = await statusOf(sb);
    return s.link.state === 'up' && s.line.tunnel?.child === 'installed' ? s : undefined;
  });
  t.notOk(back.line.failingHop, 'nothing failing');
});
