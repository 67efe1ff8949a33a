import t from 'tap';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect } from 'node:tls';
import {
  certificateFingerprint,
  loadOrCreateTlsIdentity,
  readTlsIdentity,
  tlsPaths,
  wantedSubjectAltNames,
} from '../../src/ops/tls-identity.js';
import { subdir } from '../helpers/testdir.js';

const DAY = 86_400_000;

t.test('first start creates an ECDSA P-256 key and a certificate, both 0600; later starts reuse them', async (t) => {
  const dir = subdir(t, 'state');
  const a = loadOrCreateTlsIdentity({ stateDir: dir, machineName: 'clinic-gw' });
  t.equal(a.action, 'created');
  t.equal(a.reason, 'first start');
  const { keyFile, certFile } = tlsPaths(dir);
  t.equal(statSync(keyFile).mode & 0o777, 0o600);
  t.equal(statSync(certFile).mode & 0o777, 0o600);
  t.equal(statSync(join(dir, 'tls')).mode & 0o777, 0o700);
  const cert = new X509Certificate(readFileSync(certFile));
  t.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  t.ok(cert.verify(cert.publicKey), 'self-signed with its own key');
  t.equal(a.fingerprint, cert.fingerprint256);
  t.match(a.fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  t.same(a.hostnames, ['clinic-gw', 'clinic-gw.local', 'localhost']);
  t.same(a.ips, ['0:0:0:0:0:0:0:1', '127.0.0.1']);
  t.ok(cert.checkHost('clinic-gw.local'));
  t.ok(cert.checkIP('127.0.0.1') && cert.checkIP('::1'));

  const b = loadOrCreateTlsIdentity({ stateDir: dir, machineName: 'clinic-gw' });
  t.equal(b.action, 'reused');
  t.equal(b.fingerprint, a.fingerprint);
  t.equal(readTlsIdentity(dir)?.fingerprint, a.fingerprint, 'readable without creating anything');
  t.equal(certificateFingerprint(b.certPem), a.fingerprint);
  t.equal(readTlsIdentity(subdir(t, 'empty')), undefined);
});

t.test('renewed with the same key before expiry and when the names change', async (t) => {
  const dir = subdir(t, 'state');
  const start = new Date('2026-01-01T00:00:00Z');
  const a = loadOrCreateTlsIdentity({
    stateDir: dir,
    machineName: 'gw',
    validityDays: 100,
    renewDaysBefore: 10,
    now: () => start,
  });
  const early = loadOrCreateTlsIdentity({
    stateDir: dir,
    machineName: 'gw',
    validityDays: 100,
    renewDaysBefore: 10,
    now: () => new Date(start.getTime() + 80 * DAY),
  });
  t.equal(early.action, 'reused', '20 days left is outside the renewal window');
  const late = loadOrCreateTlsIdentity({
    stateDir: dir,
    machineName: 'gw',
    validityDays: 100,
    renewDaysBefore: 10,
    now: () => new Date(start.getTime() + 95 * DAY),
  });
  t.equal(late.action, 'renewed');
  t.match(late.reason, /expires on/);
  t.not(late.fingerprint, a.fingerprint, 'a new certificate');
  t.equal(late.spkiSha256, a.spkiSha256, 'the same key: a pinned public key keeps working');
  t.ok(late.notAfter.getTime() > a.notAfter.getTime());

  const named = loadOrCreateTlsIdentity({
    stateDir: dir,
    machineName: 'gw',
    hostnames: ['reception.clinic.lan'],
    ips: ['192.168.10.5', 'fe80::1'],
    now: () => new Date(start.getTime() + 95 * DAY),
  });
  t.equal(named.action, 'renewed');
  t.match(named.reason, /names or addresses changed/);
  const cert = new X509Certificate(named.certPem);
  t.ok(cert.checkHost('reception.clinic.lan'));
  t.notOk(cert.checkHost('gw.local'), 'configured names replace the defaults');
  t.ok(cert.checkIP('192.168.10.5') && cert.checkIP('fe80::1') && cert.checkIP('127.0.0.1'));
  t.equal(
    loadOrCreateTlsIdentity({
      stateDir: dir,
      machineName: 'gw',
      hostnames: ['reception.clinic.lan'],
      ips: ['fe80:0::1', '192.168.10.5'],
      now: () => new Date(start.getTime() + 95 * DAY),
    }).action,
    'reused',
    'the same addresses written differently are the same names',
  );
});

t.test('an unreadable key is replaced; a certificate that does not match the key is renewed', async (t) => {
  const dir = subdir(t, 'state');
  const a = loadOrCreateTlsIdentity({ stateDir: dir });
  const other = loadOrCreateTlsIdentity({ stateDir: subdir(t, 'other') });
  writeFileSync(tlsPaths(dir).certFile, other.certPem);
  const b = loadOrCreateTlsIdentity({ stateDir: dir });
  t.equal(b.action, 'renewed');
  t.match(b.reason, /does not match the key/);
  t.equal(b.spkiSha256, a.spkiSha256);
  writeFileSync(tlsPaths(dir).keyFile, 'garbage');
  const c = loadOrCreateTlsIdentity({ stateDir: dir });
  t.equal(c.action, 'created');
  t.match(c.reason, /unreadable/);
  t.not(c.spkiSha256, a.spkiSha256);
});

t.test('bad names are typed errors', async (t) => {
  t.throws(() => wantedSubjectAltNames({ hostnames: ['bad_name'] }), { code: 'TLS_SAN_INVALID' });
  t.throws(() => wantedSubjectAltNames({ ips: ['300.1.1.1'] }), { code: 'TLS_SAN_INVALID' });
  t.same(wantedSubjectAltNames({ machineName: 'localhost' }).hostnames, ['localhost']);
});

t.test('a TLS client that trusts the certificate connects by name and by address', async (t) => {
  const id = loadOrCreateTlsIdentity({ stateDir: subdir(t, 'state') });
  const server = createServer({ key: id.keyPem, cert: id.certPem }, (_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  for (const servername of ['localhost', undefined]) {
    const fp = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, ca: id.certPem, ...(servername ? { servername } : {}) }, () => {
        resolve(s.getPeerX509Certificate()!.fingerprint256);
        s.end();
      });
      s.on('error', reject);
    });
    t.equal(fp, id.fingerprint, `verified ${servername ?? 'by IP'}`);
  }
});

t.test(
  'openssl reads the certificate as we meant it',
  // CI installs openssl (scripts/lib/setup.sh): there its absence fails the test instead.
  { skip: hasOpenssl() || process.env['CI'] ? false : 'openssl is not installed' },
  async (t) => {
    const dir = subdir(t, 'state');
    const id = loadOrCreateTlsIdentity({ stateDir: dir, hostnames: ['gw.example'], ips: ['10.1.2.3'] });
    const text = execFileSync('openssl', ['x509', '-noout', '-text', '-in', id.certFile], { encoding: 'utf8' });
    t.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
    t.match(text, /CA:FALSE/);
    t.match(text, /TLS Web Server Authentication/);
    t.match(text, /DNS:gw\.example/);
    t.match(text, /IP Address:10\.1\.2\.3/);
    const fp = execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', id.certFile], {
      encoding: 'utf8',
    });
    t.equal(fp.trim().split('=')[1], id.fingerprint);
  },
);

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version']);
    return true;
  } catch {
    return false;
  }
}
