import t from 'tap';
import { X509Certificate, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createCa, issueCertificate, createCrl, ensureSandboxPki, REVOKED_CARD_SERIAL } from '../../src/sim/pki.js';

const DAY = 86_400_000;

t.test('CA, leaves and CRL', async (t) => {
  const ca = await createCa({ subject: 'C=JP, O=JPKI-SIM, CN=Test CA' });
  const caCert = new X509Certificate(ca.certPem);
  t.ok(caCert.ca, 'CA flag set');
  t.ok(caCert.verify(caCert.publicKey), 'self-signed');

  const notBefore = new Date(Date.now() - 10 * DAY);
  const notAfter = new Date(Date.now() - 2 * DAY);
  const leaf = await issueCertificate({
    ca,
    subject: 'CN=C0000009, O=JPKI-SIM',
    serial: '1122334455667788',
    notBefore,
    notAfter,
    usage: 'jpki-auth',
  });
  const x = new X509Certificate(leaf.certPem);
  t.ok(x.verify(caCert.publicKey), 'leaf verifies against the CA');
  t.notOk(
    x.verify(new X509Certificate((await createCa({ subject: 'CN=Other' })).certPem).publicKey),
    'not against another CA',
  );
  t.equal(x.serialNumber.toLowerCase(), '1122334455667788');
  t.equal(new Date(x.validTo).getTime(), Math.floor(notAfter.getTime() / 1000) * 1000);
  t.equal(new Date(x.validFrom).getTime(), Math.floor(notBefore.getTime() / 1000) * 1000);
  t.match(x.subject, /CN=C0000009/);
  t.equal(x.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
  // Node's X509Certificate does not expose the signature algorithm: look for its OID in the DER,
  // where it appears twice (TBSCertificate.signature and Certificate.signatureAlgorithm).
  const sha256WithRsa = Buffer.from('06092a864886f70d01010b', 'hex'); // OID 1.2.840.113549.1.1.11
  const occurrences = (buf: Buffer): number => {
    let n = 0;
    for (let i = buf.indexOf(sha256WithRsa); i >= 0; i = buf.indexOf(sha256WithRsa, i + 1)) n++;
    return n;
  };
  t.equal(occurrences(x.raw), 2, 'signed with sha256WithRSAEncryption');
  // key matches the certificate
  const sig = sign('sha256', Buffer.from('hello'), createPrivateKey(leaf.keyPem));
  t.ok(verify('sha256', Buffer.from('hello'), x.publicKey, sig));

  // reuse of an existing key
  const again = await issueCertificate({
    ca,
    subject: 'CN=again',
    notBefore,
    notAfter: new Date(Date.now() + DAY),
    usage: 'client',
    keyPem: leaf.keyPem,
  });
  t.equal(again.keyPem, leaf.keyPem);
  t.same(
    new X509Certificate(again.certPem).publicKey.export({ type: 'spki', format: 'der' }),
    createPublicKey(leaf.keyPem).export({ type: 'spki', format: 'der' }),
  );

  const server = await issueCertificate({
    ca,
    subject: 'CN=localhost',
    notBefore,
    notAfter: new Date(Date.now() + DAY),
    usage: 'server',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1', '::1'],
  });
  const sx = new X509Certificate(server.certPem);
  t.ok(sx.checkHost('localhost'));
  t.ok(sx.checkIP('127.0.0.1'));
  t.ok(sx.checkIP('::1'));

  const crlPem = await createCrl({ ca, revokedSerials: ['1122334455667788', 'ABCDEF01'] });
  t.match(crlPem, /^-----BEGIN X509 CRL-----\n/);
  const { X509Crl } = await import('@peculiar/x509');
  const crl = new X509Crl(crlPem);
  t.ok(crl.findRevoked('1122334455667788'), 'serial listed');
  t.ok(crl.findRevoked('abcdef01'), 'second serial listed');
  t.notOk(crl.findRevoked('99'), 'other serial not listed');
  const { X509Certificate: PX } = await import('@peculiar/x509');
  t.ok(await crl.verify({ publicKey: new PX(ca.certPem) }), 'CRL signature verifies');
});

t.test('ensureSandboxPki is idempotent and writes keys 0600', async (t) => {
  const dir = t.testdir();
  const [a, b] = await Promise.all([ensureSandboxPki(dir), ensureSandboxPki(dir)]);
  t.equal(a.centralCa.certPem, b.centralCa.certPem, 'concurrent callers share one result');
  const c = await ensureSandboxPki(dir);
  t.same(c, a, 'second run loads the same material');
  for (const f of ['central-ca', 'central-server', 'gateway-client', 'jpki-ca']) {
    t.equal((await stat(join(dir, 'pki', `${f}.key`))).mode & 0o777, 0o600, `${f}.key is 0600`);
    t.equal(
      await readFile(join(dir, 'pki', `${f}.pem`), 'utf8'),
      (c as unknown as Record<string, { certPem: string }>)[
        {
          'central-ca': 'centralCa',
          'central-server': 'centralServer',
          'gateway-client': 'gatewayClient',
          'jpki-ca': 'jpkiCa',
        }[f]!
      ]!.certPem,
    );
  }
  const ca = new X509Certificate(a.centralCa.certPem);
  const server = new X509Certificate(a.centralServer.certPem);
  t.ok(server.verify(ca.publicKey));
  t.ok(new X509Certificate(a.gatewayClient.certPem).verify(ca.publicKey));
  t.ok(server.checkHost('localhost') && server.checkIP('127.0.0.1') && server.checkIP('::1'));
  const jca = new X509Certificate(a.jpkiCa.certPem);
  t.match(jca.subject, /O=JPKI-SIM/);
  t.match(jca.subject, /OU=JPKI for user authentication/);
  const { X509Crl } = await import('@peculiar/x509');
  t.ok(new X509Crl(a.jpkiCrlPem).findRevoked(REVOKED_CARD_SERIAL));
});
