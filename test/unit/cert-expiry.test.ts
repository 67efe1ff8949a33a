// The gateway's client certificate: warning 30 days ahead, error once expired (or not yet valid).
import t from 'tap';
import { checkCertExpiry } from '../../src/ops/cert-expiry.js';
import { createCa, issueCertificate } from '../../src/sim/pki.js';

const DAY = 86_400_000;
const notBefore = new Date('2026-01-01T00:00:00Z');
const notAfter = new Date('2027-01-01T00:00:00Z');
let pem = '';
let caPem = '';

t.before(async () => {
  const ca = await createCa({ subject: 'CN=Test central CA, O=FAKE' });
  caPem = ca.certPem;
  pem = (await issueCertificate({ ca, subject: 'CN=gateway 1319999996, O=FAKE', notBefore, notAfter, usage: 'client' }))
    .certPem;
});

t.test('ok, warning, error as time passes', async (t) => {
  const at = (ms: number) => checkCertExpiry(pem, new Date(ms));
  t.match(at(notAfter.getTime() - 31 * DAY), { level: 'ok', daysLeft: 31 });
  t.equal(at(notAfter.getTime() - 31 * DAY).code, undefined);
  t.match(
    at(notAfter.getTime() - 30 * DAY),
    { level: 'warning', code: 'CENTRAL_CERT_EXPIRING', daysLeft: 30 },
    'exactly 30 days: warn',
  );
  t.match(at(notAfter.getTime() - 1000), { level: 'warning', daysLeft: 0 });
  t.match(at(notAfter.getTime() + 1000), { level: 'error', code: 'CENTRAL_CERT_EXPIRED' });
  t.match(at(notBefore.getTime() - DAY), { level: 'error', code: 'CENTRAL_CERT_NOT_YET_VALID' });
  const r = at(notAfter.getTime() - 10 * DAY);
  t.same([r.notBefore, r.notAfter], [notBefore, notAfter]);
  t.match(r.subject, /CN=gateway 1319999996/);
  t.match(r.message, /10 days left/);
  t.match(
    checkCertExpiry(pem, new Date(notAfter.getTime() - 60 * DAY), { warnDays: 90 }),
    { level: 'warning' },
    'warnDays is configurable',
  );
});

t.test("a chain file: the first certificate is the gateway's; DER works too", async (t) => {
  const now = new Date(notAfter.getTime() - 5 * DAY);
  t.match(checkCertExpiry(`${pem}\n${caPem}`, now), { level: 'warning', subject: /gateway/ });
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  t.match(checkCertExpiry(der, now), { level: 'warning' });
});

t.test('no certificate: typed error', async (t) => {
  for (const bad of [
    '',
    'not a certificate',
    '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----',
    Buffer.from([0x30, 0x82, 0xff]),
  ]) {
    t.throws(() => checkCertExpiry(bad), { code: 'CENTRAL_CERT_INVALID' });
  }
});
