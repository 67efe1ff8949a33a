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
  const crl = await parseVerifiedCrl(der(pki.jpkiCrlPem), [ca]);
  t.same(crl.serials, [REVOKED_CARD_SERIAL.toLowerCase().replace(/^0+/, '')]);
  t.ok(crl.thisUpdate.getTime() < Date.now(), 'thisUpdate in the past');
  t.ok(crl.nextUpdate && crl.nextUpdate.getTime() > Date.now(), 'nextUpdate in the future');
});

t.test('signed by another CA, or altered: CRL_UNTRUSTED', async (t) => {
  const pki = await sharedPki();
  const other = new X509Certificate(pki.centralCa.certPem);
  await t.rejects(parseVerifiedCrl(der(pki.jpkiCrlPem), [other]), { code: 'CRL_UNTRUSTED' });
  await t.rejects(parseVerifiedCrl(der(pki.jpkiCrlPem), []), { code: 'CRL_UNTRUSTED' }, 'no CA, no trust');
  const ca = new X509Certificate(pki.jpkiCa.certPem);
  const altered = der(pki.jpkiCrlPem);
  // The last byte of the revoked serial sits inside the signed part: change it.
  const serialHex = REVOKED_CARD_SERIAL.toLowerCase();
  const at = altered.indexOf(Buffer.from(serialHex.length % 2 ? '0' + serialHex : serialHex, 'hex'));
  t.ok(at > 0, 'found the serial in the DER');
  altered[at + 1] = altered[at + 1]! ^ 0x01;
  await t.rejects(parseVerifiedCrl(altered, [ca]), { code: 'CRL_UNTRUSTED' }, 'a changed serial breaks the signature');
});

t.test('every truncation and random garbage ends in a typed error', async (t) => {
  const pki = await sharedPki();
  const ca = new X509Certificate(pki.jpkiCa.certPem);
  const good = der(pki.jpkiCrlPem);
  let typed = 0;
  for (let n = 0; n < good.length; n++) {
    try {
      await parseVerifiedCrl(good.subarray(0, n), [ca]);
    } catch (e) {
      if (isOnshiError(e) && /^CRL_/.test(e.code)) typed++;
    }
  }
  t.equal(typed, good.length, 'each of the truncations');
  for (let i = 0; i < 500; i++) {
    const junk = Buffer.from(good);
    junk[Math.floor(Math.random() * junk.length)] = Math.floor(Math.random() * 256);
    try {
      await parseVerifiedCrl(junk, [ca]);
    } catch (e) {
      if (!(isOnshiError(e) && /^CRL_/.test(e.code))) t.fail(`untyped error ${(e as Error).message}`);
    }
  }
  await t.rejects(
    parseVerifiedCrl(Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), [ca]),
    { code: 'CRL_INVALID' },
    'a length beyond the input',
  );
  await t.rejects(
    parseVerifiedCrl(Buffer.from([0x30, 0x80, 0, 0]), [ca]),
    { code: 'CRL_INVALID' },
    'indefinite length',
  );
});

t.test(
  'a list older than the one held never replaces it (thisUpdate, or the CRL number when both have one)',
  async (t) => {
    const { createCrl } = await import('../../src/sim/pki.js');
    const { refreshRevocationList } = await import('../../src/sync/revocation.js');
    const pki = await sharedPki();
    const ca = new X509Certificate(pki.jpkiCa.certPem);
    const now = Date.now();
    const hour = 3600_000;
    const list = async (o: { thisUpdate: number; crlNumber?: number; serial: string }): Promise<Buffer> =>
      der(
        await createCrl({
          ca: pki.jpkiCa,
          revokedSerials: [o.serial],
          thisUpdate: new Date(o.thisUpdate),
          nextUpdate: new Date(o.thisUpdate + 48 * hour),
          ...(o.crlNumber === undefined ? {} : { crlNumber: o.crlNumber }),
        }),
      );
    let next: Buffer = Buffer.alloc(0);
    const central = { cardCrl: async () => next } as unknown as Parameters<typeof refreshRevocationList>[0]['central'];
    const held: { serials: string[]; info?: import('../../src/sync/crl.js').RevocationListInfo } = { serials: [] };
    const sink = {
      set: async (serials: string[], _at: Date, info?: typeof held.info) => {
        held.serials = serials;
        held.info = info;
        return { count: serials.length };
      },
      info: () => held.info,
    };
    const refresh = () => refreshRevocationList({ central, cas: [ca], sink, timeoutMs: 1000 });

    next = await list({ thisUpdate: now - 2 * hour, serial: 'aa01' });
    t.match(await refresh(), { outcome: 'newer', count: 1 });
    next = await list({ thisUpdate: now - 30 * hour, serial: 'bb02' });
    await t.rejects(refresh(), { code: 'CRL_OLDER' }, 'an older signed list is refused');
    t.same(held.serials, ['aa01'], 'the newer list stays');
    next = await list({ thisUpdate: now - 2 * hour, serial: 'aa01' });
    t.match(await refresh(), { outcome: 'same' }, 'the same list fetched again is fine');

    next = await list({ thisUpdate: now - hour, crlNumber: 7, serial: 'cc03' });
    t.match(await refresh(), { outcome: 'newer', crlNumber: 7n });
    next = await list({ thisUpdate: now - hour + 60_000, crlNumber: 6, serial: 'dd04' });
    await t.rejects(refresh(), { code: 'CRL_OLDER' }, 'a lower CRL number is refused even with a later thisUpdate');
    t.same(held.serials, ['cc03']);
    next = await list({ thisUpdate: now - hour + 120_000, crlNumber: 300, serial: 'ee05' });
    t.match(await refresh(), { outcome: 'newer', crlNumber: 300n }, 'a higher number (two octets) replaces it');
    t.same(held.serials, ['ee05']);
  },
);

t.test(
  'past nextUpdate the list is stale (offline proofs say so); past the grace offline proofs are refused',
  async (t) => {
    const { revocationFreshness } = await import('../../src/sync/crl.js');
    const { revocationNotices } = await import('../../src/checks/card-cert.js');
    const hour = 3600_000;
    const now = new Date('2026-12-03T12:00:00Z');
    const info = (nextInHours: number) => ({
      thisUpdate: new Date(now.getTime() - 48 * hour),
      nextUpdate: new Date(now.getTime() + nextInHours * hour),
    });
    t.match(revocationFreshness(undefined, now, 24 * hour), { state: 'none' });
    t.match(revocationFreshness(info(1), now, 24 * hour), { state: 'current' });
    t.match(revocationFreshness(info(-2), now, 24 * hour), {
      state: 'stale',
      staleForMs: 2 * hour,
      refuseAfter: '2026-12-04T10:00:00.000Z',
    });
    t.match(revocationFreshness(info(-25), now, 24 * hour), { state: 'expired' });

    const cert = { serialNumber: '0A0B' } as X509Certificate;
    const view = (nextInHours: number) => ({
      isRevoked: () => false,
      revocationAge: () => 2 * hour,
      maxAgeMs: 72 * hour,
      listInfo: () => info(nextInHours),
      graceMs: 24 * hour,
    });
    t.same(revocationNotices(view(1), cert, now), [], 'a current list: no notice');
    t.match(revocationNotices(view(-2), cert, now), [/stale: past its nextUpdate/], 'stale: the proof says so');
    t.throws(() => revocationNotices(view(-25), cert, now), { code: 'CARD_REVOCATION_LIST_EXPIRED' }, 'past the grace');
    t.throws(
      () => revocationNotices({ ...view(1), isRevoked: () => true }, cert, now),
      { code: 'CARD_CERT_REVOKED' },
      'on the list: refused',
    );
  },
);

t.test('the real store keeps the list identity, so an older list is refused after a restart too', async (t) => {
  const { createCrl } = await import('../../src/sim/pki.js');
  const { refreshRevocationList } = await import('../../src/sync/revocation.js');
  const { GatewayStore } = await import('../../src/cache/index.js');
  const pki = await sharedPki();
  const ca = new X509Certificate(pki.jpkiCa.certPem);
  const dir = t.testdir();
  const hour = 3600_000;
  const thisUpdate = new Date(Date.now() - hour);
  let next = der(
    await createCrl({
      ca: pki.jpkiCa,
      revokedSerials: ['aa01'],
      thisUpdate,
      nextUpdate: new Date(Date.now() + hour),
      crlNumber: 9,
    }),
  );
  const central = { cardCrl: async () => next } as unknown as Parameters<typeof refreshRevocationList>[0]['central'];

  const first = await GatewayStore.open({ dir });
  t.match(await refreshRevocationList({ central, cas: [ca], sink: first.revocation, timeoutMs: 1000 }), {
    outcome: 'newer',
  });
  await first.close();

  const again = await GatewayStore.open({ dir });
  t.teardown(() => again.close());
  t.match(
    again.revocation.info(),
    { thisUpdate: new Date(Math.floor(thisUpdate.getTime() / 1000) * 1000), crlNumber: 9n },
    'the identity came back from the database',
  );
  next = der(await createCrl({ ca: pki.jpkiCa, revokedSerials: ['bb02'], thisUpdate: new Date(), crlNumber: 8 }));
  await t.rejects(
    refreshRevocationList({ central, cas: [ca], sink: again.revocation, timeoutMs: 1000 }),
    { code: 'CRL_OLDER' },
    'a lower CRL number is refused by the restarted store',
  );
  t.ok(again.revocation.isRevoked('aa01'), 'the held list stays');
  t.notOk(again.revocation.isRevoked('bb02'));
});
