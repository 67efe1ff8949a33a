/**
 * The link probe never logs in: many probes through mutual TLS leave the central simulator's login
 * counter where it was; a login happens only when a request needs a token. A dead central or a
 * certificate central's CA did not sign fails the probe with a typed error.
 */
import t from 'tap';
import { createServer } from 'node:net';
import { CentralSim } from '../../src/sim/central/server.js';
import { CentralClient } from '../../src/sync/central-client.js';
import { LinkMonitor } from '../../src/sync/link.js';
import { sharedPki } from '../helpers/gateway.js';

const pki = await sharedPki();
const central = await CentralSim.start({ pki });
t.teardown(() => central.close());
const clientFor = (url: string, over: { ca?: string } = {}) =>
  new CentralClient({
    url,
    ca: over.ca ?? pki.centralCa.certPem,
    cert: pki.gatewayClient.certPem,
    key: pki.gatewayClient.keyPem,
    userId: 'sandbox',
    timeoutMs: 3000,
  });
const soon = () => ({ deadline: Date.now() + 3000 });

t.test('many probes, no login; the first request logs in once', async (t) => {
  const client = clientFor(central.url);
  t.teardown(() => client.close());
  const before = central.stats.auths;
  for (let i = 0; i < 20; i++) await client.probe(soon());
  t.equal(central.stats.auths, before, 'the login counter stayed flat over 20 probes');

  // The LinkMonitor's own probe loop, as the daemon wires it.
  let probes = 0;
  const link = new LinkMonitor({
    probe: async (deadline) => {
      probes++;
      await client.probe({ deadline });
    },
    probeIntervalMs: 1,
  });
  link.start();
  while (probes < 10) await new Promise((r) => setTimeout(r, 20));
  link.stop();
  t.equal(link.state, 'up', 'the probes succeeded');
  t.equal(central.stats.auths, before, `the monitor probed ${probes} times and logged in no time`);

  await client.cardChallenge(soon());
  await client.cardChallenge(soon());
  t.equal(central.stats.auths, before + 1, 'requests that need a token log in once');
});

t.test('a dead central and a wrong CA fail the probe with typed errors', async (t) => {
  const dead = createServer((s) => s.destroy());
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  t.teardown(() => dead.close());
  const port = (dead.address() as { port: number }).port;
  const closed = clientFor(`https://127.0.0.1:${port}`);
  t.teardown(() => closed.close());
  await t.rejects(closed.probe(soon()), { code: 'CENTRAL_UNREACHABLE' });

  const wrongCa = clientFor(central.url, { ca: pki.gatewayClient.certPem });
  t.teardown(() => wrongCa.close());
  await t.rejects(wrongCa.probe(soon()), { code: 'CENTRAL_TLS_FAILED' });
});
