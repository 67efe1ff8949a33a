// The VICI client and the IPsec line service against two real charons in the lab's namespaces.
import t from 'tap';
import { labNamespaces } from '../../src/sim/line/ipsec/index.js';
import { IpsecLine } from '../../src/sync/line/ipsec.js';
import type { TunnelState } from '../../src/sync/line/sa-state.js';
import { ViciClient } from '../../src/sync/line/vici/client.js';
import { clinicLineConfig, ipsecLab, until } from '../helpers/ipsec-lab.js';

t.test('a real charon: load, initiate, traffic, peer delete, rekey, charon restart', async (t) => {
  const lab = await ipsecLab(t);
  if (!lab) return;
  const labId = lab.id;

  // The raw client first: a plain command, an unknown one.
  const raw = new ViciClient({ socket: lab.clinic.viciUri });
  await raw.start();
  await raw.whenConnected(5000);
  const version = await raw.request('version');
  t.equal(version['daemon'], 'charon-systemd');
  await t.rejects(raw.request('no-such-command'), { code: 'VICI_UNKNOWN_COMMAND' });
  await t.rejects(raw.subscribe(['no-such-event']), { code: 'VICI_UNKNOWN_EVENT' });
  await raw.stop();

  const line = new IpsecLine(clinicLineConfig(lab), { pollMs: 500, retry: { baseMs: 300, capMs: 1000 } });
  const states: TunnelState[] = [];
  line.on('state', (s) => {
    states.push(s);
    if (process.env.LINE_DEBUG) t.comment(JSON.stringify(s));
  });
  line.on('error', (e) => t.comment(`line error: ${e.code} ${e.message}`));
  t.teardown(() => line.stop());
  await line.start();
  await until('the CHILD_SA installed', 20_000, () => (line.state().child === 'installed' ? true : undefined));
  t.equal(line.state().ike, 'established');
  t.ok(
    states.some((s) => s.child === 'installed' && s.reason === 'CHILD_SA installed'),
    'child-updown up seen',
  );

  // Traffic through the tunnel: a server on central's inner address, asked from the clinic.
  const server = lab.spawnIn('central', process.execPath, [
    '-e',
    `require('http').createServer((q, s) => s.end('through the tunnel')).listen(8099, '${lab.central.inner}')`,
  ]);
  t.teardown(() => server.kill());
  const fetchOnce = (): Promise<string> =>
    lab.exec('clinic', process.execPath, [
      '-e',
      `fetch('http://${lab.central.inner}:8099/').then((r) => r.text()).then((b) => process.stdout.write(b))`,
    ]);
  t.equal(await until('the server', 10_000, () => fetchOnce()), 'through the tunnel');
  const before = await line.refresh();
  t.ok(before.packetsOut > 0 && before.bytesIn > 0, `counters rose (${before.packetsOut} out, ${before.bytesIn} B in)`);
  await fetchOnce();
  const after = await line.refresh();
  t.ok(after.packetsOut > before.packetsOut, 'a second request adds packets out');
  t.ok(after.bytesIn > before.bytesIn, 'and bytes in');
  t.ok(after.lastDpd, 'the last sign of life from the peer');

  // Central deletes the SA: the line sees the CHILD_SA go down with strongSwan's states, then brings it back.
  const downAt = states.length;
  await lab.swanctl('central', ['--terminate', '--ike', 'oqs', '--timeout', '5']);
  const down = await until('the CHILD_SA down', 10_000, () => states.slice(downAt).find((s) => s.child === 'down'));
  t.match(down.reason, /CHILD_SA|IKE_SA/, `a reason from strongSwan: ${down.reason}`);
  await until('the CHILD_SA back', 20_000, () =>
    states.slice(downAt).some((s) => s.child === 'installed') && line.state().child === 'installed' ? true : undefined,
  );
  const carried = await line.refresh();
  t.ok(carried.bytesIn >= after.bytesIn, 'totals survive the new SA');

  // A rekey of the CHILD_SA: counted, and the tunnel stays up.
  const rekeys = line.state().rekeys;
  await lab.swanctl('clinic', ['--rekey', '--child', 'oqs']);
  await until('the rekey event', 10_000, () => (line.state().rekeys > rekeys ? true : undefined));
  t.equal(line.state().child, 'installed', 'installed through the rekey');
  t.equal(await fetchOnce(), 'through the tunnel', 'traffic after the rekey');

  // The clinic's charon restarts: the client reconnects, the service loads everything again.
  await lab.stopCharon('clinic');
  await until('the line down with charon', 10_000, () => (line.state().child === 'down' ? true : undefined));
  await lab.startCharon('clinic');
  await until('the CHILD_SA after the restart', 30_000, () => (line.state().child === 'installed' ? true : undefined));
  t.equal(await fetchOnce(), 'through the tunnel', 'traffic after the restart');

  await line.stop();
  await lab.close();
  t.notOk(
    (await labNamespaces()).some((n) => n.includes(labId)),
    'teardown removed the namespaces',
  );
});
