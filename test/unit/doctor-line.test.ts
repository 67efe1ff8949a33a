// `onshi doctor` hop by hop: the SAs from charon, the route and next hop, and the path MTU probe
// that tells an MTU black hole from a dead path (fakes for charon, the path and ping).
import t from 'tap';
import { validateConfig } from '../../src/core/config.js';
import { lineChecks, lineMtuVerdict, mtuVerdict, pingSize } from '../../src/cli/doctor-line.js';
import type { PathCheck } from '../../src/sync/line/ip-vpn.js';
import type { SaSnapshot } from '../../src/sync/line/sa-state.js';

const cfg = validateConfig({
  central: { url: 'https://198.18.2.1:18443' },
  line: { mode: 'ipsec', name: 'oqs' },
});
const pathOk: PathCheck = {
  ok: true,
  hops: [
    { hop: 'route', ok: true, detail: 'via a direct link on ipsec0 from 198.18.1.1' },
    { hop: 'next-hop', ok: true, detail: '198.18.2.1 on ipsec0: NOARP' },
    { hop: 'tls', ok: true, detail: 'TLSv1.3' },
  ],
};
const up: SaSnapshot = {
  ikeState: 'ESTABLISHED',
  child: { state: 'INSTALLED', bytesIn: 10, bytesOut: 20, packetsIn: 3, packetsOut: 4 },
};

t.test('ipsec, all well: SAs, route through the tunnel, MTU', async (t) => {
  const pings: [string, number][] = [];
  const checks = await lineChecks(cfg, {
    listSa: async () => up,
    checkPath: async () => pathOk,
    pathMtu: async (addr) => (addr === '198.18.2.1' ? 1400 : undefined),
    ping: async (addr, size) => {
      pings.push([addr, size]);
      return true;
    },
  });
  t.same(
    checks.map((c) => [c.name, c.status]),
    [
      ['IKE SA', 'ok'],
      ['CHILD SA', 'ok'],
      ['route through the tunnel', 'ok'],
      ['next-hop', 'ok'],
      ['path MTU', 'ok'],
    ],
  );
  t.same(pings, [['198.18.2.1', 1372]], 'one ping at the tunnel MTU (1400 − 28) suffices');
  t.match(checks[1]!.detail, /3 packets in \/ 4 out/);
});

t.test('an MTU black hole: big lost, small through', async (t) => {
  const checks = await lineChecks(cfg, {
    listSa: async () => up,
    checkPath: async () => pathOk,
    pathMtu: async () => 1400,
    ping: async (_addr, size) => size < 100,
  });
  const mtu = checks.find((c) => c.name === 'path MTU')!;
  t.equal(mtu.status, 'fail');
  t.match(mtu.detail, /MTU black hole/);
});

t.test('the CHILD SA gone; charon unreachable; ip-vpn with a dead next hop', async (t) => {
  let checks = await lineChecks(cfg, {
    listSa: async () => ({ ikeState: 'ESTABLISHED' }),
    checkPath: async () => ({ ok: false, failing: 'route', hops: [{ hop: 'route', ok: false, detail: 'no route' }] }),
  });
  t.same(
    checks.map((c) => [c.name, c.status]),
    [
      ['IKE SA', 'ok'],
      ['CHILD SA', 'fail'],
      ['route through the tunnel', 'fail'],
    ],
    'no MTU probe without a route',
  );
  checks = await lineChecks(cfg, {
    listSa: () => Promise.reject(new Error('VICI_UNAVAILABLE')),
    checkPath: async () => pathOk,
    pathMtu: async () => 1400,
    ping: async () => undefined,
  });
  t.match(checks[0], { name: 'IKE SA', status: 'fail', detail: /cannot ask charon/ });
  t.match(checks.at(-1), { name: 'path MTU', status: 'skip' }, 'no ping here: said, not guessed');
  checks = await lineChecks(validateConfig({ central: { url: 'https://198.18.2.1:18443' } }), {
    checkPath: async () => ({
      ok: false,
      failing: 'next-hop',
      hops: [
        { hop: 'route', ok: true, detail: 'via 192.168.1.1 on eth0' },
        { hop: 'next-hop', ok: false, detail: '192.168.1.1 on eth0: FAILED' },
      ],
    }),
  });
  t.same(
    checks.map((c) => [c.name, c.status]),
    [
      ['route', 'ok'],
      ['next-hop', 'fail'],
    ],
    'ip-vpn: no SA checks',
  );
  t.match(checks[1]!.fix, /carrier's router/);
});

t.test('verdicts', async (t) => {
  t.equal(mtuVerdict(false, false, 1400, '198.18.2.1').status, 'warn', 'both lost: a dead path or no ping answers');
  t.equal(pingSize(1500, false), 1472);
  t.equal(pingSize(1500, true), 1452);
  t.equal(pingSize(65_536, false), 65_507, "loopback's MTU: an IP packet's limit");
});

t.test('ipsec: a black hole on the outer line behind the route clamp is named, as a warning', async (t) => {
  const withPeer = validateConfig({
    central: { url: 'https://198.18.2.1:18443' },
    line: { mode: 'ipsec', name: 'oqs', peer: '198.18.9.2' },
  });
  const pings: [string, number][] = [];
  const checks = await lineChecks(withPeer, {
    listSa: async () => up,
    checkPath: async () => pathOk,
    // central through the clamped tunnel route; the peer on the outer link
    pathMtu: async (addr) => (addr === '198.18.2.1' ? 1040 : 1500),
    ping: async (addr, size) => {
      pings.push([addr, size]);
      return addr === '198.18.2.1' || size < 100;
    },
  });
  t.same(pings, [
    ['198.18.2.1', 1012],
    ['198.18.9.2', 1472],
    ['198.18.9.2', 56],
  ]);
  const line = checks.find((c) => c.name === 'line MTU')!;
  t.equal(line.status, 'warn');
  t.match(line.detail, /MTU black hole on the line.*clamped.*checks get through/);
  t.equal(checks.find((c) => c.name === 'path MTU')?.status, 'ok');
});

t.test('line MTU verdicts', async (t) => {
  const tunnelOk = mtuVerdict(true, true, 1040, '198.18.2.1');
  const tunnelHole = mtuVerdict(false, true, 1400, '198.18.2.1');
  t.equal(lineMtuVerdict(true, true, 1500, 'p', tunnelOk).status, 'ok');
  t.equal(lineMtuVerdict(false, true, 1500, 'p', tunnelOk).status, 'warn', 'clamped: checks pass');
  t.equal(lineMtuVerdict(false, true, 1500, 'p', tunnelHole).status, 'fail', 'not clamped enough: checks stall');
  t.match(lineMtuVerdict(false, true, 1500, 'p', tunnelHole).fix, /kernel-netlink mtu\/mss/);
  t.equal(lineMtuVerdict(false, false, 1500, 'p', tunnelOk).status, 'skip', 'a peer that filters ping is not judged');
});
