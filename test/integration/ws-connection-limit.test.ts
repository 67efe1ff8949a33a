/**
 * api.maxConnections: one connection more than the limit is refused with 503 (after its token
 * checked out, so a stranger learns nothing), logged, and a slot freed by a disconnect is usable again.
 */
import t from 'tap';
import { WebSocket } from 'ws';
import { ClientStore } from '../../src/api/tokens.js';
import { GatewayClient } from '../../src/client/index.js';
import { captureLogger } from '../helpers/logger.js';
import { WsApiServer } from '../../src/api/ws-server.js';
import { testdir } from '../helpers/testdir.js';

/** The HTTP status a raw upgrade gets (101 when accepted). */
const upgradeStatus = (url: string, token: string): Promise<number> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    ws.once('upgrade', (res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', (e) => {
      if (!/Unexpected server response/.test(e.message)) reject(e);
    });
  });

t.test('one connection over api.maxConnections is refused with 503 and logged; a freed slot is usable', async (t) => {
  const dir = testdir(t);
  const clients = new ClientStore(dir);
  const { token } = clients.add('counter');
  const { logger, lines: logged } = captureLogger('warn');
  const lines = (): Record<string, unknown>[] => logged.map((l) => JSON.parse(l) as Record<string, unknown>);
  const server = await WsApiServer.start({
    host: '127.0.0.1',
    port: 0,
    maxPayloadBytes: 65536,
    heartbeatMs: 30000,
    maxConnections: 2,
    defaultDeadlineMs: 2000,
    clients,
    logger,
    handle: async () => ({ type: 'pong' }),
  });
  t.teardown(() => server.close(0));
  const url = `ws://127.0.0.1:${server.port}/v1`;
  const a = await GatewayClient.connect(url, token);
  const b = await GatewayClient.connect(url, token);
  t.equal(server.clientCount, 2);
  t.equal(await upgradeStatus(url, token), 503, 'the third is refused');
  t.equal(await upgradeStatus(url, 'onshi_00000000_wrong'), 401, 'a bad token still learns only 401');
  t.ok(
    lines().some((l) => l.event === 'connection_limit' && l.open === 2),
    'the refusal is logged with the count',
  );
  await a.close();
  for (let i = 0; i < 50 && server.clientCount > 1; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(await upgradeStatus(url, token), 101, 'a freed slot takes a new connection');
  await b.close();
});
