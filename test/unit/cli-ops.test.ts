import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { AdminAccounts } from '../../src/admin/auth.js';
import { cmdAdmin } from '../../src/cli/admin.js';
import { cmdBackup, cmdRestore, cmdSupportBundle } from '../../src/cli/backup.js';
import { checkWriteLatency, cmdDoctor, formatDoctor, runDoctor } from '../../src/cli/doctor.js';
import { type CliContext, cmdStatus } from '../../src/cli/status.js';
import { ClientStore } from '../../src/api/tokens.js';
import { type GatewayConfig, validateConfig } from '../../src/core/config.js';
import { HealthServer } from '../../src/ops/health.js';
import type { GatewayStatus } from '../../src/ops/status.js';
import { loadOrCreateTlsIdentity } from '../../src/ops/tls-identity.js';
import { subdir } from '../helpers/testdir.js';

class Usage extends Error {}
function context(config: GatewayConfig): CliContext & { text: () => string } {
  let buf = '';
  return {
    config: () => config,
    usage: (m) => new Usage(m),
    out: (s) => {
      buf += s;
    },
    text: () => buf,
  };
}

function status(over: Partial<GatewayStatus> = {}): GatewayStatus {
  const now = new Date().toISOString();
  return {
    version: '0.1.0',
    startedAt: now,
    now,
    ready: true,
    checks: { api: true },
    reader: { enabled: true, state: 'ready', readers: [{ name: 'Virtual PCD 00 00', cardPresent: true }] },
    card: { present: true },
    line: { state: 'down', lastError: 'CENTRAL_UNREACHABLE' },
    outbox: { depth: 2, oldestAt: new Date(Date.now() - 600_000).toISOString() },
    cache: { entries: 5 },
    clock: { skewMs: 1200 },
    certificates: [{ name: 'central-client', notAfter: new Date(Date.now() + 10 * 86_400_000).toISOString() }],
    tls: { fingerprint: 'AB:CD', spkiSha256: 'x', notAfter: '2029-01-01T00:00:00.000Z' },
    api: { listening: true, port: 8765, connections: 3 },
    ...over,
  };
}

t.test('status: from the running daemon, else from the files', async (t) => {
  const state = subdir(t, 'status');
  let s = status();
  const health = await HealthServer.start({ port: 0, status: { status: () => s } });
  t.teardown(() => health.close());
  const config = validateConfig({ stateDir: state, health: { port: health.port } });
  let ctx = context(config);
  t.equal(await cmdStatus([], ctx), 0);
  const text = ctx.text();
  t.match(text, /reader\s+ready \(Virtual PCD 00 00\)/);
  t.match(text, /line\s+down \(last error CENTRAL_UNREACHABLE\)/);
  t.match(text, /outbox\s+2 waiting, oldest 600 s|outbox\s+2 waiting, oldest 10 min/);
  t.match(text, /cert\s+central-client until .* \(\d+ days left: RENEW SOON\)/);
  t.match(text, /tls\s+SHA-256 AB:CD/);
  s = status({ ready: false, checks: { api: true, store: false } });
  ctx = context(config);
  t.equal(await cmdStatus(['--json'], ctx), 1, 'not ready');
  t.same(JSON.parse(ctx.text()).status.checks, { api: true, store: false });

  await health.close();
  const id = loadOrCreateTlsIdentity({ stateDir: state });
  new ClientStore(state).add('reception');
  ctx = context(config);
  t.equal(await cmdStatus([], ctx), 3, 'not running');
  t.match(ctx.text(), /not running/);
  t.match(ctx.text(), new RegExp(`tls\\s+SHA-256 ${id.fingerprint}`));
  t.match(ctx.text(), /clients 1 active/);
  await t.rejects(cmdStatus(['--bogus'], ctx), { message: /Unknown option/ });
});

/** A stand-in for central: mutual TLS with our own certificates, a Date header we control. */
async function fakeCentral(t: Test, dateHeader?: string): Promise<{ config: GatewayConfig; state: string }> {
  const server = loadOrCreateTlsIdentity({ stateDir: subdir(t, 'central') });
  // The gateway's client certificate needs clientAuth, which our own server identity does not have.
  const cliDir = subdir(t, 'client');
  const client = { keyFile: join(cliDir, 'client.key'), certFile: join(cliDir, 'client.pem') };
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=clinic',
      '-days',
      '365',
      '-addext',
      'extendedKeyUsage=clientAuth',
      '-keyout',
      client.keyFile,
      '-out',
      client.certFile,
    ],
    { stdio: 'ignore' },
  );
  const https = createServer(
    {
      key: server.keyPem,
      cert: server.certPem,
      ca: readFileSync(client.certFile),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (_req, res) => {
      res.writeHead(200, dateHeader ? { date: dateHeader } : {});
      res.end();
    },
  );
  await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        https.close(() => r());
        https.closeAllConnections();
      }),
  );
  const state = subdir(t, 'state');
  const config = validateConfig({
    stateDir: state,
    health: { port: 1 },
    central: {
      url: `https://127.0.0.1:${(https.address() as AddressInfo).port}`,
      caFile: server.certFile,
      certFile: client.certFile,
      keyFile: client.keyFile,
      timeoutMs: 2000,
    },
  });
  return { config, state };
}

t.test('doctor: everything fine', async (t) => {
  const { config } = await fakeCentral(t);
  const sock = join(subdir(t, 'sock'), 'pcscd.comm');
  writeFileSync(sock, '');
  const checks = await runDoctor({
    config,
    pcscSocket: sock,
    listReaders: async () => ['Virtual PCD 00 00'],
    writeRounds: 5,
  });
  const by = Object.fromEntries(checks.map((c) => [c.name, c]));
  t.equal(by['pcscd']!.status, 'ok');
  t.equal(by['card reader']!.status, 'ok');
  t.equal(by['line and TLS to central']!.status, 'ok', by['line and TLS to central']!.detail);
  t.match(by['line and TLS to central']!.detail, /TLSv1\.3, handshake \d+ ms, answer "HTTP\/1\.1 200 OK"/);
  t.equal(by['clock']!.status, 'ok', by['clock']!.detail);
  t.match(by['SD write latency']!.detail, /median [\d.]+ ms, worst [\d.]+ ms over 5/);
  t.equal(by['certificate central-client']!.status, 'ok');
  t.notOk(
    checks.some((c) => c.status === 'fail'),
    formatDoctor(checks),
  );
});

t.test('doctor: each failure says what to do', async (t) => {
  const { config } = await fakeCentral(t, new Date(Date.now() - 3_600_000).toUTCString());
  const checks = await runDoctor({ config, pcscSocket: '/nonexistent/pcscd.comm', writeRounds: 2 });
  const by = Object.fromEntries(checks.map((c) => [c.name, c]));
  t.equal(by['pcscd']!.status, 'fail');
  t.match(by['pcscd']!.fix, /systemctl enable --now pcscd\.socket/);
  t.equal(by['clock']!.status, 'fail', 'an hour off');
  t.match(by['clock']!.detail, /= 36\d\d\.\d s/);
  t.match(by['clock']!.fix, /timedatectl set-ntp true/);

  const noReader = await runDoctor({
    config,
    pcscSocket: join(import.meta.dirname, 'cli-ops.test.ts'),
    listReaders: async () => [],
    writeRounds: 1,
  });
  t.match(noReader.find((c) => c.name === 'card reader')?.fix, /plug the reader in/);

  const down = validateConfig({ ...config, central: { ...config.central, url: 'https://127.0.0.1:1' } });
  const lineDown = await runDoctor({ config: down, pcscSocket: '/x', writeRounds: 1 });
  const line = lineDown.find((c) => c.name === 'line and TLS to central')!;
  t.equal(line.status, 'fail');
  t.match(line.detail, /ECONNREFUSED/);
  t.match(line.fix, /closed line is down/);
  t.equal(lineDown.find((c) => c.name === 'clock')?.status, 'skip');

  const otherCa = loadOrCreateTlsIdentity({ stateDir: subdir(t, 'otherca') });
  const wrongCa = validateConfig({ ...config, central: { ...config.central, caFile: otherCa.certFile } });
  const ca = (await runDoctor({ config: wrongCa, pcscSocket: '/x', writeRounds: 1 })).find(
    (c) => c.name === 'line and TLS to central',
  )!;
  t.equal(ca.status, 'fail');
  t.match(ca.fix, /does not verify against central-ca\.pem/);

  const serverOnly = loadOrCreateTlsIdentity({ stateDir: subdir(t, 'serveronly') });
  const refusedCert = validateConfig({
    ...config,
    central: { ...config.central, certFile: serverOnly.certFile, keyFile: serverOnly.keyFile },
  });
  const rc = (await runDoctor({ config: refusedCert, pcscSocket: '/x', writeRounds: 1 })).find(
    (c) => c.name === 'line and TLS to central',
  )!;
  t.equal(rc.status, 'fail', 'TLS 1.3: the handshake completes, then central refuses the certificate');
  t.match(rc.fix, /refused our client certificate/);

  const noCreds = validateConfig({ stateDir: subdir(t, 'nocreds') });
  const nc = (
    await runDoctor({ config: noCreds, credentialsDir: subdir(t, 'emptycreds'), pcscSocket: '/x', writeRounds: 1 })
  ).find((c) => c.name === 'central TLS')!;
  t.equal(nc.status, 'fail');
  t.match(nc.fix, /certificate set/);

  t.equal(checkWriteLatency('/proc', 1).status, 'fail', 'an unwritable directory');
  t.equal(checkWriteLatency('/nonexistent-onshi', 1).status, 'skip');

  const ctx = context(validateConfig({ ...down, reader: { enabled: false } }));
  t.equal(await cmdDoctor([], ctx), 1, 'exit 1 when a check failed');
  t.match(ctx.text(), /\[FAIL\] line and TLS to central: .*\n\s+→ the closed line is down/);
  t.match(ctx.text(), /\[SKIP\] pcscd: reader\.enabled is false/);
});

t.test('admin reset prints a new secret that the account accepts', async (t) => {
  const state = subdir(t, 'admin');
  const acc = new AdminAccounts(state);
  await acc.ensureInitialized('first-secret-abc');
  const ctx = context(validateConfig({ stateDir: state }));
  t.equal(await cmdAdmin(['reset', '--json'], ctx), 0);
  const { secret, file } = JSON.parse(ctx.text()) as { secret: string; file: string };
  t.equal(statSync(file).mode & 0o777, 0o600);
  t.equal((await acc.verify('admin', secret))?.mustChange, true);
  t.equal(await acc.verify('admin', 'first-secret-abc'), undefined);
  await t.rejects(cmdAdmin(['frobnicate'], ctx), { message: /admin reset/ });
});

t.test('backup and restore from the command line', async (t) => {
  const state = subdir(t, 'bk-state');
  const creds = subdir(t, 'bk-creds');
  const cfgFile = join(subdir(t, 'bk-etc'), 'config.json');
  writeFileSync(cfgFile, JSON.stringify({ stateDir: state }));
  writeFileSync(join(creds, 'cache.key'), 'k'.repeat(64), { mode: 0o600 });
  const { token } = new ClientStore(state).add('reception');
  loadOrCreateTlsIdentity({ stateDir: state });
  const config = validateConfig({ stateDir: state, health: { port: 1 } });
  const out = join(subdir(t, 'bk-out'), 'b.onshibak');
  await t.rejects(
    cmdBackup(['--config', cfgFile, '--credentials', creds, '--out', out], context(config)),
    { message: /--no-encrypt/ },
    'a passphrase or --no-encrypt is required',
  );
  const passFile = join(subdir(t, 'bk-pass'), 'p');
  writeFileSync(passFile, 'a long passphrase\n');
  const ctx = context(config);
  t.equal(
    await cmdBackup(['--config', cfgFile, '--credentials', creds, '--out', out, '--passphrase-file', passFile], ctx),
    0,
  );
  t.match(ctx.text(), /encrypted, mode 0600/);
  t.equal(statSync(out).mode & 0o777, 0o600);

  // restore onto a fresh machine
  const state2 = subdir(t, 'bk-state2');
  const creds2 = subdir(t, 'bk-creds2');
  const cfg2 = join(subdir(t, 'bk-etc2'), 'config.json');
  const config2 = validateConfig({ stateDir: state2, health: { port: 1 } });
  await t.rejects(
    cmdRestore([out, '--config', cfg2, '--credentials', creds2], context(config2)),
    { message: /encrypted/ },
    'encrypted: needs the passphrase',
  );
  const r = context(config2);
  t.equal(
    await cmdRestore([out, '--config', cfg2, '--credentials', creds2, '--passphrase-file', passFile], r),
    0,
    r.text(),
  );
  t.equal(new ClientStore(state2).authenticate(token)?.name, 'reception', 'the clients came back');
  t.equal(readFileSync(join(creds2, 'cache.key'), 'utf8'), 'k'.repeat(64));
  t.equal(JSON.parse(readFileSync(cfg2, 'utf8')).stateDir, state);

  // refuses while the gateway runs
  const health = await HealthServer.start({ port: 0, status: { status: () => status() } });
  t.teardown(() => health.close());
  const running = validateConfig({ stateDir: state2, health: { port: health.port } });
  await t.rejects(cmdRestore([out, '--config', cfg2, '--passphrase-file', passFile], context(running)), {
    message: /gateway is running/,
  });
});

t.test('support bundle from the command line', async (t) => {
  const state = subdir(t, 'sb');
  const out = join(state, 'bundle.tar.gz');
  const ctx = context(validateConfig({ stateDir: state, health: { port: 1 }, central: { userId: 'secret-login' } }));
  t.equal(await cmdSupportBundle(['--out', out], ctx), 0);
  t.equal(statSync(out).mode & 0o777, 0o600);
  t.match(ctx.text(), /support bundle written/);
});
