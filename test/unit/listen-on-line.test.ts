// Nothing of the box listens on the line: the admin page is loopback unless a LAN address is set,
// and in ipsec mode the daemon refuses to bind the API or the admin page to every address or to the
// tunnel's inner address (STARTUP_LISTEN_ON_LINE, before anything starts).
import t from 'tap';
import { validateConfig } from '../../src/core/config.js';
import { listenersOnLine, prepare } from '../../src/daemon/prepare.js';
import { silentLogger } from '../helpers/logger.js';

const ipsec = (api: Record<string, unknown>, admin: Record<string, unknown> = {}) =>
  validateConfig({
    api: { tls: 'on', ...api },
    admin,
    line: { mode: 'ipsec', localTs: ['198.18.1.1/32', '198.18.64.0/24'] },
  });

t.test('the admin page no longer listens on every address by default', async (t) => {
  t.equal(validateConfig({}).admin.host, '127.0.0.1');
});

t.test('ipsec: every address or the inner address is refused; loopback and the LAN are fine', async (t) => {
  t.same(listenersOnLine(ipsec({ host: '0.0.0.0' })), ['api.host 0.0.0.0']);
  t.same(listenersOnLine(ipsec({ host: '127.0.0.1' }, { host: '::' })), ['admin.host ::']);
  t.same(listenersOnLine(ipsec({ host: '198.18.1.1' })), ['api.host 198.18.1.1'], 'the inner address');
  t.same(listenersOnLine(ipsec({ host: '198.18.64.7' })), ['api.host 198.18.64.7'], 'inside an inner range');
  t.same(listenersOnLine(ipsec({ host: '192.168.1.10' }, { host: '192.168.1.10' })), [], 'the clinic LAN');
  t.same(
    listenersOnLine(ipsec({ host: '0.0.0.0' }, { enabled: false, host: '0.0.0.0' })),
    ['api.host 0.0.0.0'],
    'a disabled admin page listens nowhere',
  );
  t.same(
    listenersOnLine(validateConfig({ api: { host: '0.0.0.0', tls: 'on' }, admin: { host: '0.0.0.0' } })),
    [],
    'ip-vpn: the carrier router owns the line',
  );
});

t.test('prepare refuses it with a typed error, before any file is read', async (t) => {
  const dir = t.testdir({});
  t.throws(() => prepare({ ...ipsec({ host: '0.0.0.0' }), stateDir: `${dir}/state` }, silentLogger()), {
    code: 'STARTUP_LISTEN_ON_LINE',
    message: /api\.host 0\.0\.0\.0 would accept connections arriving through the IPsec tunnel/,
  });
});
