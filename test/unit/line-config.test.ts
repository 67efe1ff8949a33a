// The `line` section: ip-vpn by default, ipsec settings checked for what the mode needs.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { ROUTE_CLAMP, strongswanConf } from '../../src/sim/line/ipsec/conf.js';
import { loadConfig, validateConfig } from '../../src/core/config.js';
import { ipsecLineConfig } from '../../src/sync/line/config.js';

t.test('the line is ip-vpn unless configured', async (t) => {
  const c = validateConfig({});
  t.equal(c.line.mode, 'ip-vpn');
  t.same(c.line.proposals, ['aes256-sha256-modp2048']);
});

t.test('ipsec mode names every setting it still needs', async (t) => {
  const c = validateConfig({ line: { mode: 'ipsec', peer: '198.18.0.2' } });
  t.throws(() => ipsecLineConfig(c.line), {
    code: 'CONFIG_INVALID',
    message: /line\.localId is required.*line\.remoteTs is required.*line\.auth\.certFile is required/,
  });
});

t.test('ipsec settings from file and environment become the service config; secrets stay paths', async (t) => {
  const dir = t.testdir({
    'c.json': JSON.stringify({
      line: {
        mode: 'ipsec',
        peer: '198.18.0.2',
        localId: 'clinic',
        remoteId: 'central',
        localTs: ['198.18.1.1/32'],
        auth: { kind: 'psk', pskFile: '/run/credentials/onshi-gateway.service/line.psk' },
      },
    }),
  });
  const c = loadConfig({ file: `${dir}/c.json`, env: { ONSHI_LINE_REMOTE_TS: '198.18.2.0/24, 198.18.3.1/32' } });
  const l = ipsecLineConfig(c.line);
  t.same(l.remoteTs, ['198.18.2.0/24', '198.18.3.1/32']);
  t.same(l.auth, { kind: 'psk', pskFile: '/run/credentials/onshi-gateway.service/line.psk' });
  t.notOk('local' in l, 'an empty outer address is any');
  t.throws(
    () => validateConfig({ line: { mode: 'ipsec', psk: 'secret' } }),
    { code: 'CONFIG_INVALID' },
    'no secret setting',
  );
});

t.test("the lab's line section (the sandbox's shape) validates", async (t) => {
  const c = validateConfig({
    line: {
      mode: 'ipsec',
      vici: 'unix:///tmp/lab/clinic.vici',
      name: 'oqs',
      peer: '198.18.0.2',
      localId: 'clinic.lab',
      remoteId: 'central.lab',
      proposals: ['aes256-sha256-modp2048'],
      espProposals: ['aes256-sha256'],
      dpdDelaySeconds: 2,
      localTs: ['198.18.1.1/32'],
      remoteTs: ['198.18.2.1/32'],
      auth: { kind: 'pubkey', certFile: '/tmp/c.pem', keyFile: '/tmp/c.key', caFile: '/tmp/ca.pem' },
    },
  });
  t.same(ipsecLineConfig(c.line).auth, {
    kind: 'pubkey',
    certFile: '/tmp/c.pem',
    keyFile: '/tmp/c.key',
    caFile: '/tmp/ca.pem',
  });
});

t.test("the installer's route clamp is the one the lab's clinic charon runs with", async (t) => {
  const installer = readFileSync(new URL('../../scripts/install.sh', import.meta.url), 'utf8');
  const block = /kernel-netlink \{\s*mtu = (\d+)\s*mss = (\d+)\s*\}/.exec(installer);
  t.ok(block, 'install.sh writes a kernel-netlink mtu/mss block');
  t.same([Number(block?.[1]), Number(block?.[2])], [ROUTE_CLAMP.mtu, ROUTE_CLAMP.mss]);
  t.match(strongswanConf({ viciSocket: '/v', logFile: '/l', clamp: true }), /mtu = 1040\s+mss = 1000/);
  t.notMatch(strongswanConf({ viciSocket: '/v', logFile: '/l' }), /kernel-netlink \{/, "central's charon: no clamp");
});
