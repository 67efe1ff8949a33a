/**
 * The daemon drives the real IPsec line (the lab's two charons, the gateway in the clinic namespace,
 * the central simulator behind the tunnel): central deletes the SA, and the daemon's status shows the
 * link down (its line.state event) with strongSwan's reason, before any request failed (the probe interval
 * is a minute, no check is sent); the gateway brings the tunnel back by itself and the link is up.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { GatewayClient } from '../../src/client/index.js';
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

  // The down lasts only until the gateway initiates again (well under a second): follow it through
  // the gateway's own events, which a slow poll of /status under load could miss.
  const client = await GatewayClient.connect(sb.ready.ws!, sb.ready.token!, { ca: readFileSync(sb.ready.ca!) });
  t.teardown(() => client.close());
  const events: { event: string; data: Record<string, unknown> }[] = [];
  client.onEvent('line', (e) => events.push({ event: e.event, data: e.data as Record<string, unknown> }));
  await client.subscribe(['line']);
  const seen = events.length; // the retained ones: the state before the fault
  await sb.lab.terminate('central');
  const down = await until('the link down', 30_000, async () =>
    events.slice(seen).find((e) => e.event === 'line.state' && e.data['state'] === 'down'),
  );
  t.match(down.data['reason'], /^line down: /, "down because the line said so, with strongSwan's reason");
  t.equal(down.data['consecutiveFailures'], 0, 'before any request failed');
  const tunnelDown = events.slice(seen).find((e) => e.event === 'line.tunnel' && e.data['up'] === false);
  t.ok(
    tunnelDown && (tunnelDown.data['child'] === 'down' || tunnelDown.data['ike'] === 'down'),
    `the tunnel's down event came with its states (ike ${tunnelDown?.data['ike']}, child ${tunnelDown?.data['child']})`,
  );

  const back = await until('the link up again', 60_000, async () => {
    const s = await statusOf(sb);
    return s.link.state === 'up' && s.line.tunnel?.child === 'installed' ? s : undefined;
  });
  t.notOk(back.line.failingHop, 'nothing failing');
});
