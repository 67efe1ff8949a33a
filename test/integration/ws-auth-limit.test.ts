/**
 * The WebSocket API's brute-force limit (issue 18, item 2): a good token from the same address does
 * not reset the count of unknown ones, and a restart does not clear a lockout.
 */
import t from 'tap';
import { ClientStore } from '../../src/api/tokens.js';
import { startGateway } from '../../src/daemon/index.js';
import { CentralSim } from '../../src/sim/central/server.js';
import { gatewayConfig, sharedPki } from '../helpers/gateway.js';
import { silentLogger } from '../helpers/logger.js';
import { upgradeStatus } from '../helpers/ws-upgrade.js';

const statusOf = (port: number, token: string): Promise<number> => upgradeStatus(`ws://127.0.0.1:${port}/v1`, token);

const unknown = (i: number): string => `onshi_${String(i).padStart(8, '0')}_${'B'.repeat(43)}`;

t.test('9 unknown then 1 good, repeated: 429 by the 11th unknown, and still after a restart', async (t) => {
  const pki = await sharedPki();
  const central = await CentralSim.start({ pki });
  t.teardown(() => central.close());
  const stateDir = t.testdir();
  const config = gatewayConfig(stateDir, central.url);
  const { token } = new ClientStore(stateDir).add('reception');
  let gw = await startGateway(config, { logger: silentLogger() });
  t.teardown(() => gw.close());

  const seen: number[] = [];
  let unknowns = 0;
  while (unknowns < 11) {
    for (let i = 0; i < 9 && unknowns < 11; i++) seen.push(await statusOf(gw.wsPort, unknown(unknowns++)));
    seen.push(await statusOf(gw.wsPort, token));
  }
  t.same(seen.slice(0, 10), [...Array(9).fill(401), 101], 'nine refused, then the good token connects');
  t.same(seen.slice(10, 11), [401], 'the 10th unknown is still answered (and locks the address)');
  t.ok(
    seen.slice(11).every((s) => s === 429),
    `after the 10th unknown every attempt is 429: ${seen.join(',')}`,
  );

  await gw.close();
  gw = await startGateway(config, { logger: silentLogger() });
  t.equal(await statusOf(gw.wsPort, token), 429, 'after a restart the address is still locked, good token or not');
  t.equal(await statusOf(gw.wsPort, unknown(99)), 429);
});
