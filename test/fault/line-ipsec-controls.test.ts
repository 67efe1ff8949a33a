/**
 * The IPsec lab's fault controls, each shown to take effect at the packet level: datagrams echoed
 * across the tunnel (a UDP echo on central's inner address, asked from the clinic's inner address)
 * stop and come back, the SA's counters stop, SPIs change, large datagrams vanish while small ones
 * pass. Also the lab's HTTP control and `onshi sim line ipsec` on top of it.
 */
import { get } from 'node:http';
import t, { type Test } from 'tap';
import type { IpsecLab } from '../../src/sim/line/ipsec/index.js';
import { startIpsecLabControl } from '../../src/sim/line/ipsec/index.js';
import { ipsecLab, until } from '../helpers/ipsec-lab.js';
import { runOnshi } from '../helpers/sandbox-cli.js';

t.setTimeout(600_000);

const ECHO_PORT = 9007;

/** Sends one datagram of `bytes` from the clinic's inner address to central's echo; whether it came back within `waitMs`. */
async function echoes(lab: IpsecLab, bytes: number, waitMs = 1500): Promise<boolean> {
  const script = `const s = require('dgram').createSocket('udp4');
s.bind(0, '${lab.clinic.inner}', () => s.send(Buffer.alloc(${bytes}, 7), ${ECHO_PORT}, '${lab.central.inner}'));
s.on('message', (m) => { process.stdout.write(m.length === ${bytes} ? 'ok' : 'short'); process.exit(0); });
s.on('error', () => { process.stdout.write('error'); process.exit(0); });
setTimeout(() => { process.stdout.write('lost'); process.exit(0); }, ${waitMs});`;
  return (await lab.exec('clinic', process.execPath, ['-e', script])) === 'ok';
}

async function startEcho(t: Test, lab: IpsecLab): Promise<void> {
  const echo = lab.spawnIn('central', process.execPath, [
    '-e',
    `const s = require('dgram').createSocket('udp4'); s.on('message', (m, r) => s.send(m, r.port, r.address)); s.bind(${ECHO_PORT}, '${lab.central.inner}');`,
  ]);
  t.teardown(() => echo.kill());
  await until('the echo through the tunnel', 15_000, async () => ((await echoes(lab, 64)) ? true : undefined));
}

const outPackets = async (lab: IpsecLab): Promise<number | undefined> =>
  (await lab.installed('clinic'))?.child.packetsOut;

/** A lab with the tunnel up (brought up by swanctl, as the sandbox does until the gateway drives it) and the echo. */
async function labUp(t: Test): Promise<IpsecLab | undefined> {
  const lab = await ipsecLab(t, { dpdDelaySeconds: 1 });
  if (!lab) return undefined;
  await lab.loadClinicWithSwanctl();
  await startEcho(t, lab);
  return lab;
}

const reinitiate = (lab: IpsecLab) => lab.swanctl('clinic', ['--initiate', '--child', 'oqs', '--timeout', '20']);

t.test(
  'terminate from central: the SA is gone on both sides, nothing gets through; back after initiating',
  async (t) => {
    const lab = await labUp(t);
    if (!lab) return;
    t.ok(await lab.installed('central'), 'central has the CHILD_SA before');
    await lab.terminate('central');
    t.equal(await lab.installed('clinic'), undefined, 'the clinic learnt of the delete (no installed CHILD_SA)');
    t.equal(await lab.installed('central'), undefined, 'nor on central');
    t.notOk(await echoes(lab, 64), 'a datagram through the tunnel is lost');
    await reinitiate(lab);
    t.ok(await echoes(lab, 64), 'and gets through once the clinic initiates again');
  },
);

t.test('central charon killed: traffic stops at once, the clinic sees it by DPD; restart brings it back', async (t) => {
  const lab = await labUp(t);
  if (!lab) return;
  await lab.killCharon('central');
  t.notOk(lab.charonRunning('central'), 'central charon is gone');
  t.notOk(await echoes(lab, 64), 'a datagram through the tunnel is lost');
  t.ok(await lab.installed('clinic'), 'the clinic still believes in its SA (no delete was sent)');
  const before = await outPackets(lab);
  await echoes(lab, 64, 300);
  t.ok((await outPackets(lab))! > before!, 'the clinic keeps sending into the void (packets out rise, nothing in)');
  await until('DPD to clear the clinic SA', 30_000, async () => ((await lab.installed('clinic')) ? undefined : true));
  t.pass('DPD cleared the SA on the clinic');
  await lab.restartCharon('central');
  t.ok(lab.charonRunning('central'), 'central charon runs again');
  await reinitiate(lab);
  t.ok(await echoes(lab, 64), 'traffic gets through again');
});

t.test('rekeying every second: new SPIs each time, the tunnel carries traffic throughout', async (t) => {
  const lab = await labUp(t);
  if (!lab) return;
  const spis = new Set<string>();
  const counts = lab.startRekeying(1000);
  let lost = 0;
  let sent = 0;
  const until5 = Date.now() + 6000;
  while (Date.now() < until5) {
    const sa = await lab.installed('clinic');
    if (sa) spis.add(sa.child.spiIn);
    sent++;
    if (!(await echoes(lab, 64, 2000))) lost++;
  }
  await lab.stopRekeying();
  t.ok(counts.rekeys >= 3, `${counts.rekeys} rekeys done (${counts.failures} refused while one was under way)`);
  t.ok(spis.size >= 2, `the CHILD_SA's inbound SPI changed (${spis.size} seen)`);
  t.comment(`${sent} datagrams during the rekeys, ${lost} lost`);
  t.ok(await echoes(lab, 64), 'traffic after the loop stopped');
});

t.test('outer link down and up, then flapping: traffic stops while down, flows when up', async (t) => {
  const lab = await labUp(t);
  if (!lab) return;
  await lab.setOuterLink(false);
  t.notOk(await lab.outerLinkUp(), 'the clinic end of the outer veth is down');
  t.notOk(await echoes(lab, 64), 'nothing gets through');
  await lab.setOuterLink(true);
  t.ok(await lab.outerLinkUp(), 'up again');
  await until('traffic after link up', 15_000, async () => ((await echoes(lab, 64)) ? true : undefined));
  t.pass('traffic flows after the link came back (the SA survived a short outage)');

  const seen = new Set<boolean>();
  lab.startFlapping(400, 400);
  const end = Date.now() + 3000;
  while (Date.now() < end) {
    seen.add(await lab.outerLinkUp());
    await new Promise((r) => setTimeout(r, 100));
  }
  t.same([...seen].sort(), [false, true], 'the link was seen both down and up while flapping');
  t.equal((await lab.faultState()).flapping, true, 'faultState says it flaps');
  await lab.stopFlapping();
  t.ok(await lab.outerLinkUp(), 'stopping the flapping leaves the link up');
  await until('traffic after flapping', 30_000, async () => {
    if (await echoes(lab, 64)) return true;
    if (!(await lab.installed('clinic'))) await reinitiate(lab).catch(() => undefined);
    return undefined;
  });
  t.pass('traffic flows after the flapping');
});

t.test("the clinic's outer address changes: the tunnel follows it (MOBIKE) and carries traffic", async (t) => {
  const lab = await labUp(t);
  if (!lab) return;
  const from = lab.clinic.outer;
  const to = await lab.readdressClinic();
  t.not(to, from, `moved ${from} → ${to}`);
  const sa = await until('the SA on the new address', 20_000, async () => {
    const s = await lab.installed('central');
    return s?.ike.remoteAddr === to ? s : undefined;
  });
  t.equal(sa.ike.remoteAddr, to, 'central sees the clinic at its new address');
  await until('traffic from the new address', 15_000, async () => ((await echoes(lab, 64)) ? true : undefined));
  t.pass('traffic flows');
  t.equal(await lab.readdressClinic(), from, 'and back');
  await until('traffic from the old address again', 20_000, async () => ((await echoes(lab, 64)) ? true : undefined));
  t.pass('traffic flows again');
});

t.test('MTU black hole: large datagrams vanish silently, small ones pass; cleared, large ones pass', async (t) => {
  const lab = await labUp(t);
  if (!lab) return;
  t.ok(await echoes(lab, 1200), 'a 1200-byte datagram gets through before');
  await lab.setMtuBlackhole(1000);
  t.equal((await lab.faultState()).mtuBlackhole, 1000);
  t.ok(await echoes(lab, 200), 'a 200-byte datagram still gets through');
  t.notOk(await echoes(lab, 1200), 'a 1200-byte one is lost');
  const rules = await lab.exec('central', 'nft', ['list', 'table', 'netdev', 'onshi_lab']);
  t.match(rules, /meta length > 1000 counter packets [1-9]\d* bytes \d+ drop/, 'central dropped it (its counter rose)');
  await lab.setMtuBlackhole(undefined);
  t.ok(await echoes(lab, 1200), 'cleared: the large datagram gets through again');
});

t.test('the lab control over HTTP and `onshi sim line ipsec`', async (t) => {
  const lab = await labUp(t);
  if (!lab) return;
  const control = await startIpsecLabControl(lab);
  t.teardown(() => control.close());
  const env = { ONSHI_SIM_LAB: control.url };
  const status = await runOnshi(['sim', 'line', 'ipsec', 'status'], env);
  t.equal(status.code, 0, status.stderr);
  const s = JSON.parse(status.stdout) as {
    faults: { central: string };
    clinic: { vici: string; sas: { state: string }[] };
  };
  t.equal(s.faults.central, 'running');
  t.equal(s.clinic.vici, lab.clinic.viciUri, 'names the clinic VICI socket');
  t.equal(s.clinic.sas[0]?.state, 'ESTABLISHED', 'the IKE_SA as swanctl lists it');

  const term = await runOnshi(['sim', 'line', 'ipsec', 'terminate'], env);
  t.equal(term.code, 0, term.stderr);
  t.notOk(await echoes(lab, 64), 'terminate through the CLI: nothing gets through');
  const up = await runOnshi(['sim', 'line', 'ipsec', 'up'], env);
  t.equal(up.code, 0, up.stderr);
  t.ok(await echoes(lab, 64), '`up` brings the tunnel back');

  const mtu = await runOnshi(['sim', 'line', 'ipsec', 'mtu', '1000'], env);
  t.equal((JSON.parse(mtu.stdout) as { faults: { mtuBlackhole: number } }).faults.mtuBlackhole, 1000);
  t.notOk(await echoes(lab, 1200), 'mtu through the CLI drops large datagrams');
  await runOnshi(['sim', 'line', 'ipsec', 'up'], env);
  t.ok(await echoes(lab, 1200), '`up` clears it');

  const bad = await runOnshi(['sim', 'line', 'ipsec', 'explode'], env);
  t.equal(bad.code, 2, 'an unknown fault is a usage error');
  t.match(bad.stderr, /unknown IPsec lab fault "explode"/);
  const res = await fetch(new URL('/ipsec/flap', control.url), { method: 'POST', body: '{"upMs": 5}' });
  t.equal(res.status, 400, 'a bad argument is refused');
  const foreign = await new Promise<number>((resolve, reject) =>
    get(new URL('/ipsec', control.url), { headers: { host: 'evil.example' } }, (r) => {
      r.resume();
      resolve(r.statusCode ?? 0);
    }).on('error', reject),
  );
  t.equal(foreign, 403, 'a foreign Host header is refused');
});
