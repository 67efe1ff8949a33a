/**
 * A PIN crosses TLS or stays on this machine. The WebSocket server itself refuses `pin.submit` on a
 * plain connection from another address — whatever the listener — and passes it on over loopback.
 * Real sockets: the server listens on every address and a client connects through this machine's
 * LAN address, so the server sees a non-loopback peer.
 */
import t from 'tap';
import { networkInterfaces } from 'node:os';
import { ClientStore } from '../../src/api/tokens.js';
import { GatewayClient } from '../../src/client/index.js';
import { createLogger } from '../../src/core/logger.js';
import { isLoopbackPeer, WsApiServer } from '../../src/api/ws-server.js';
import { testdir } from '../helpers/testdir.js';

const lan = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

t.test('isLoopbackPeer', async (t) => {
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) t.ok(isLoopbackPeer(a), a);
  for (const a of ['192.168.1.20', '10.0.0.1', '::ffff:192.168.1.20', 'fe80::1', '', undefined])
    t.notOk(isLoopbackPeer(a), String(a));
});

if (!lan) {
  if (process.env.CI) t.fail('this machine has no non-loopback IPv4 address to connect through');
  else t.skip('no non-loopback IPv4 address on this machine: the LAN half cannot be shown', () => {});
} else {
  t.test(`pin.submit over plain ws: refused from ${lan}, accepted from loopback`, async (t) => {
    const dir = testdir(t);
    const clients = new ClientStore(dir);
    const { token } = clients.add('lan-pc');
    const pins: string[] = [];
    const server = await WsApiServer.start({
      host: '0.0.0.0',
      port: 0,
      maxPayloadBytes: 65536,
      heartbeatMs: 30000,
      defaultDeadlineMs: 2000,
      clients,
      logger: createLogger({ level: 'error' }),
      handle: async (req, ctx) => {
        if (req.type !== 'pin.submit') return { type: 'pong' };
        pins.push(`${ctx.remote}:${ctx.secure}`);
        return { type: 'pin.accepted', inquiryId: req.inquiryId };
      },
    });
    t.teardown(() => server.close(0));
    const submit = { type: 'pin.submit', inquiryId: 'inq-1', pin: '4321' } as const;

    const far = await GatewayClient.connect(`ws://${lan}:${server.port}/v1`, token);
    await t.rejects(
      far.request(submit),
      { code: 'PIN_INSECURE_CONNECTION' },
      'refused with a code the receipt computer can act on',
    );
    t.equal(
      (await far.request({ type: 'ping' })).type,
      'pong',
      'the connection itself stays usable for checks by numbers',
    );
    await far.close();
    t.same(pins, [], 'the handler never saw the PIN');

    const near = await GatewayClient.connect(`ws://127.0.0.1:${server.port}/v1`, token);
    t.equal((await near.request(submit)).type, 'pin.accepted');
    await near.close();
    t.same(pins, ['127.0.0.1:true'], 'over loopback it is passed on, marked secure');
  });
}
