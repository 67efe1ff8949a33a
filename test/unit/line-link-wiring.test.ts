/**
 * The line drives the link (a fake tunnel, the real LinkMonitor and OutboxRelay): the CHILD_SA going
 * down marks the link down at once with strongSwan's reason, before any request failed, and holds it
 * without probing; the SA coming up probes at once and the relay replays. In both modes a failed
 * probe runs the path check, which names the failing hop in the report.
 */
import t from 'tap';
import { EventEmitter } from 'node:events';
import { validateConfig } from '../../src/core/config.js';
import { LinkMonitor } from '../../src/sync/link.js';
import { LineService, PATH_RECHECK_MS, type TunnelSource } from '../../src/sync/line/service.js';
import type { TunnelState } from '../../src/sync/line/sa-state.js';
import type { PathCheck } from '../../src/sync/line/ip-vpn.js';
import { OutboxRelay, type RelayEntry, type RelayStore } from '../../src/sync/relay.js';
import { RetryBudget } from '../../src/sync/retry-budget.js';

class FakeTunnel extends EventEmitter<{ state: [TunnelState] }> {
  s: TunnelState = {
    ike: 'connecting',
    child: 'down',
    since: new Date().toISOString(),
    rekeys: 0,
    bytesIn: 0,
    bytesOut: 0,
    packetsIn: 0,
    packetsOut: 0,
    reason: 'initiating',
  };
  state = (): TunnelState => ({ ...this.s });
  start = async (): Promise<void> => undefined;
  stop = async (): Promise<void> => undefined;
  reestablished: string[] = [];
  reestablish = async (reason: string): Promise<void> => {
    this.reestablished.push(reason);
    this.set({ ike: 'down', child: 'down', reason });
  };
  set(to: Partial<TunnelState>): void {
    this.s = { ...this.s, ...to };
    this.emit('state', this.state());
  }
}

/** One outage check waiting in the outbox. */
class OneEntry implements RelayStore {
  pending = true;
  async nextDue(): Promise<RelayEntry[]> {
    if (!this.pending) return [];
    this.pending = false;
    return [{ id: 1, idempotencyKey: 'k1', kind: 'numbers', payload: {}, createdAt: new Date(), attempts: 1 }];
  }
  async settle(): Promise<RelayEntry[]> {
    return [];
  }
  stats() {
    return { depth: this.pending ? 1 : 0, dead: 0, fillRatio: 0 };
  }
}

const until = async (what: string, ok: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

const ipsecSettings = validateConfig({ line: { mode: 'ipsec' } }).line;

/** A line service in ip-vpn mode (the default) with the given path check and clock. */
const ipVpnLine = (checkPath: () => Promise<PathCheck>, now?: () => number): LineService =>
  new LineService({
    settings: validateConfig({}).line,
    centralUrl: 'https://198.18.2.1:18443',
    tls: {},
    checkPath,
    ...(now ? { now } : {}),
  });

t.test('ipsec: child down → link down at once; child up → probe, up, replay', async (t) => {
  const tunnel = new FakeTunnel();
  const line = new LineService({
    settings: ipsecSettings,
    centralUrl: 'https://198.18.2.1:18443',
    tls: {},
    tunnel: tunnel as unknown as TunnelSource,
    checkPath: async () => ({ ok: true, hops: [] }),
  });
  let probes = 0;
  const link = new LinkMonitor({
    probe: line.guardProbe(async () => {
      probes++;
    }),
    probeIntervalMs: 60_000,
    backoff: { baseMs: 10, capMs: 20 },
  });
  const replayed: number[] = [];
  const store = new OneEntry();
  const relay = new OutboxRelay({
    store,
    link,
    budget: new RetryBudget({ ratio: 1 }),
    tickMs: 20,
    replay: async (e) => {
      replayed.push(e.id);
    },
  });
  t.teardown(async () => {
    link.stop();
    await relay.stop();
  });
  await line.start();
  link.start();
  line.drive(link);
  t.equal(link.state, 'down', 'a tunnel not up at start: the link is down at once');
  t.match(link.status().reason, /line down: initiating/);
  relay.start();
  await new Promise((r) => setTimeout(r, 100));
  t.equal(probes, 0, 'no probe while the tunnel is down');
  t.same(replayed, [], 'no replay while the tunnel is down');

  tunnel.set({ ike: 'established', child: 'installed', reason: 'CHILD_SA installed' });
  await until('the link up', () => link.state === 'up');
  t.equal(probes, 1, 'the SA coming up probed at once');
  await until('the replay', () => replayed.length === 1);
  t.same(replayed, [1], 'the relay replayed the outage check');

  tunnel.set({ ike: 'established', child: 'rekeying', reason: 'CHILD_SA rekeying' });
  t.equal(link.state, 'up', 'a CHILD_SA being rekeyed still carries traffic');

  tunnel.set({ child: 'down', reason: 'CHILD_SA oqs deleted by the peer (state INSTALLED)' });
  t.equal(link.state, 'down', 'down in the same tick as the event');
  t.notOk(link.allowRequest(), 'the breaker is open');
  t.equal(link.status().consecutiveFailures, 0, 'before any request failed');
  t.match(link.status().reason, /CHILD_SA oqs deleted by the peer/, "with strongSwan's reason");
  t.same(line.report().failingHop, 'child-sa', 'the status names the CHILD_SA');
  t.same(
    line.history().map((c) => c.up),
    [true, false],
    'the history keeps the edges the tunnel reported',
  );
  link.recordSuccess(5);
  t.equal(link.state, 'down', 'an answer in flight when the tunnel went does not bring the link up');

  tunnel.set({ child: 'installed', reason: 'CHILD_SA installed' });
  await until('the link up again', () => link.state === 'up');
  t.equal(line.report().tunnel?.up, true);
  t.notOk(line.report().failingHop, 'nothing failing once up');
});

t.test('a failed probe runs the path check, which names the failing hop (ip-vpn)', async (t) => {
  let checks = 0;
  const failing: PathCheck = {
    ok: false,
    failing: 'route',
    hops: [{ hop: 'route', ok: false, detail: 'no route to 198.18.2.1' }],
  };
  const line = ipVpnLine(async () => {
    checks++;
    return failing;
  });
  t.equal(line.tunnel, undefined, 'ip-vpn: no tunnel of ours');
  const paths: PathCheck[] = [];
  line.on('path', (p) => paths.push(p));
  const probe = line.guardProbe(() => Promise.reject(Object.assign(new Error('x'), { code: 'CENTRAL_UNREACHABLE' })));
  await t.rejects(probe(Date.now() + 1000), { code: 'CENTRAL_UNREACHABLE' }, "the probe's own error stands");
  await until('the path check', () => paths.length === 1);
  t.equal(checks, 1);
  t.equal(line.report().failingHop, 'route');
  t.same(line.report().hops, failing.hops);
  t.equal(line.report().mode, 'ip-vpn');
  await line.guardProbe(async () => undefined)(Date.now() + 1000);
  t.notOk(line.report().failingHop, 'a probe that succeeds clears the failing hop');
});

t.test('while probes keep failing, the path check runs again only after PATH_RECHECK_MS (ip-vpn)', async (t) => {
  let checks = 0;
  let now = 1_000_000;
  const line = ipVpnLine(
    async () => {
      checks++;
      return { ok: false, failing: 'tls', hops: [{ hop: 'tls', ok: false, detail: 'ECONNREFUSED' }] };
    },
    () => now,
  );
  let fail = true;
  const probe = line.guardProbe(async () => {
    if (fail) throw new Error('CENTRAL_UNREACHABLE');
  });
  await t.rejects(probe(0));
  await until('the first path check', () => checks === 1);
  for (let i = 0; i < 3; i++) {
    now += PATH_RECHECK_MS / 4;
    await t.rejects(probe(0));
  }
  await new Promise((r) => setImmediate(r));
  t.equal(checks, 1, 'not again while nothing changed');
  t.equal(line.report().failingHop, 'tls', 'the last check still names the hop');
  now += PATH_RECHECK_MS / 4;
  await t.rejects(probe(0));
  await until('the second path check', () => checks === 2);
  fail = false;
  await probe(0);
  fail = true;
  now += 1;
  await t.rejects(probe(0));
  await until('a path check at once after a success', () => checks === 3);
});

t.test('ipsec: probes failing through an installed tunnel re-establish it, once per window', async (t) => {
  const tunnel = new FakeTunnel();
  tunnel.set({ ike: 'established', child: 'installed', reason: 'CHILD_SA installed' });
  let now = 1_000_000;
  const line = new LineService({
    settings: ipsecSettings,
    centralUrl: 'https://198.18.2.1:18443',
    tls: {},
    tunnel: tunnel as unknown as TunnelSource,
    checkPath: async () => ({ ok: false, failing: 'tls', hops: [{ hop: 'tls', ok: false, detail: 'timeout' }] }),
    now: () => now,
  });
  let fail = true;
  const probe = line.guardProbe(async () => {
    if (fail) throw new Error('CENTRAL_TIMEOUT');
  });
  const after = line.zombieAfterMs;
  t.equal(after, Math.max(10_000, 2000 * ipsecSettings.dpdDelaySeconds), 'twice the DPD delay, at least 10 s');

  await t.rejects(probe(0));
  now += after - 1;
  await t.rejects(probe(0));
  t.same(tunnel.reestablished, [], 'not before the window has passed');
  now += 1;
  await t.rejects(probe(0));
  t.equal(tunnel.reestablished.length, 1, 're-established once the probes failed for the whole window');
  t.match(tunnel.reestablished[0], /unreachable through the installed tunnel/);
  t.equal(line.history().at(-1)?.up, false, 'the tunnel went down in the history, with the reason');

  // Back up (charon initiated afresh), and failing again at once: not before another window.
  tunnel.set({ ike: 'established', child: 'installed', reason: 'CHILD_SA installed' });
  now += 1000;
  await t.rejects(probe(0));
  now += after - 1000;
  await t.rejects(probe(0));
  t.equal(tunnel.reestablished.length, 1, 'at most once per window');

  // A success in between starts the count again.
  fail = false;
  await probe(0);
  fail = true;
  now += after * 3;
  await t.rejects(probe(0));
  t.equal(tunnel.reestablished.length, 1, 'a success reset the failing window');
});

t.test('ipsec: probes failing while the tunnel is already down do not touch it', async (t) => {
  const tunnel = new FakeTunnel();
  let now = 0;
  const line = new LineService({
    settings: ipsecSettings,
    centralUrl: 'https://198.18.2.1:18443',
    tls: {},
    tunnel: tunnel as unknown as TunnelSource,
    checkPath: async () => ({ ok: false, failing: 'tls', hops: [] }),
    now: () => now,
  });
  const probe = line.guardProbe(async () => {
    throw new Error('CENTRAL_TIMEOUT');
  });
  for (let i = 0; i < 5; i++) {
    await t.rejects(probe(0));
    now += line.zombieAfterMs;
  }
  t.same(tunnel.reestablished, [], 'charon is already initiating: nothing to unstick');
});
