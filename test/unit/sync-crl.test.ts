import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { parseVerifiedCrl } from '../../src/sync/crl.js';
import { REVOKED_CARD_SERIAL } from '../../src/sim/pki.js';
import { sharedPki } from '../helpers/gateway.js';
import { isOnshiError } from '../../src/core/errors.js';

const der = (pem: string): Buffer => Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');

t.test('the sandbox CRL parses, verifies against the JPKI CA and lists the revoked card', async (t) => {
  const pki = await sharedPki();
  const ca = new X509Certificate(pki.jpkiCa.certPem);
  const crl = parseVerifiedCrl(der(pki.jpkiCrlPem), [ca]);
  t.same(crl.serials, [REVOKED_CARD_SERIAL.toLowerCase().replace(/^0+/, '')]);
  t.ok(crl.thisUpdate.getTime() < Date.now(), 'thisUpdate in the past');
  t.ok(crl.nextUpdate && crl.nextUpdate.getTime() > Date.now(), 'nextUpdate in the future');
});

t.test('signed by another CA, or altered: CRL_UNTRUSTED', async (t) => {
  const pki = await sharedPki();
  const other = new X509Certificate(pki.centralCa.certPem);
  t.throws(() => parseVerifiedCrl(der(pki.jpkiCrlPem), [other]), { code: 'CRL_UNTRUSTED' });
  t.throws(() => parseVerifiedCrl(der(pki.jpkiCrlPem), []), { code: 'CRL_UNTRUSTED' }, 'no CA, no trust');
  const ca = new X509Certificate(pki.jpkiCa.certPem);
  const altered = der(pki.jpkiCrlPem);
  // The last byte of the revoked serial sits inside the signed part: change it.
  const serialHex = REVOKED_CARD_SERIAL.toLowerCase();
  const at = altered.indexOf(Buffer.from(serialHex.length % 2 ? '0' + serialHex : serialHex, 'hex'));
  t.ok(at > 0, 'found the serial in the DER');
  altered[at + 1] = altered[at + 1]! ^ 0x01;
  t.throws(() => parseVerifiedCrl(altered, [ca]), { code: 'CRL_UNTRUSTED' }, 'a changed serial breaks the signature');
});

t.test('every truncation and random garbage ends in a typed error', async (t) => {
  const pki = await sharedPki();
  const ca = new X509Certificate(pki.jpkiCa.certPem);
  const good = der(pki.jpkiCrlPem);
  let typed = 0;
  for (let n = 0; n < good.length; n++) {
    try {
      parseVerifiedCrl(good.subarray(0, n), [ca]);
    } catch (e) {
      if (isOnshiError(e) && /^CRL_/.test(e.code)) typed++;
    }
  }
  t.equal(typed, good.length, 'each of the truncations');
  for (let i = 0; i < 500; i++) {
    const junk = Buffer.from(good);
    junk[Math.floor(Math.random() * junk.length)] = Math.floor(Math.random() * 256);
    try {
      parseVerifiedCrl(junk, [ca]);
    } catch (e) {
      if (!(isOnshiError(e) && /^CRL_/.test(e.code))) t.fail(`untyped error ${(e as Error).message}`);
    }
  }
  t.throws(
    () => parseVerifiedCrl(Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), [ca]),
    { code: 'CRL_INVALID' },
    'a length beyond the input',
  );
  t.throws(() => parseVerifiedCrl(Buffer.from([0x30, 0x80, 0, 0]), [ca]), { code: 'CRL_INVALID' }, 'indefinite length');
});
