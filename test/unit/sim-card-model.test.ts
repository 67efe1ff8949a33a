// One test per row of spec/jpki-card.md §5, against the card model directly (no pcscd).
import t from 'tap';
import { X509Certificate, createHash, verify, constants, publicDecrypt } from 'node:crypto';
import { CardModel } from '../../src/sim/card/model.js';
import { buildDfs, loadCardProfiles, tokenInfo, type CardProfileMaterial } from '../../src/sim/card/profiles.js';
import { seedCardDir } from '../helpers/card-dir.js';

const JPKI = '00A4040C0AD392F000260100000001';
const KENHOJO = '00A4040C0AD3921000310001010408';
const KENKAKU = '00A4040C0AD3921000310001010402';
const sel = (fid: string) => `00A4020C02${fid}`;
const verifyPin = (pin: string, p2 = '80') =>
  `002000${p2}${pin.length.toString(16).padStart(2, '0')}${Buffer.from(pin, 'latin1').toString('hex')}`;
const digestInfo = (msg: string) =>
  Buffer.concat([
    Buffer.from('3031300d060960864801650304020105000420', 'hex'),
    createHash('sha256').update(msg).digest(),
  ]);
const signApdu = (di: Buffer, p1 = '00', p2 = '80') =>
  `802A${p1}${p2}${di.length.toString(16).padStart(2, '0')}${di.toString('hex')}00`;

let material: CardProfileMaterial;
let dir: string;
t.before(async () => {
  dir = await seedCardDir(t.testdir()); // one folder for the whole file, the profiles copied in
  material = (await loadCardProfiles(dir)).find((p) => p.name === 'normal')!;
});

function mk(opts: { auth?: number; sign?: number; blockedSw?: 0x6984 | 0x6983 } = {}) {
  const changes: Array<[string, number, number]> = [];
  const m = new CardModel({
    dfs: buildDfs(material, { authTriesLeft: opts.auth ?? 3, signTriesLeft: opts.sign ?? 5 }),
    blockedSw: opts.blockedSw,
    onCounterChange: (df, fid, n) => changes.push([df, fid, n]),
  });
  const tx = (hex: string) => {
    const r = m.process(Buffer.from(hex, 'hex'));
    const n = r.response.length;
    return {
      sw: r.response
        .subarray(n - 2)
        .toString('hex')
        .toUpperCase(),
      data: r.response.subarray(0, n - 2),
      forbidden: r.forbidden,
    };
  };
  return { m, tx, changes };
}
const certDer = () => Buffer.from(material.certPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');

t.test('row 1: power-on/reset/power-off: no DF, PINs unverified, counters unchanged', async (t) => {
  const { m, tx } = mk();
  t.equal(tx(sel('000A')).sw, '6A82', 'no DF selected after power-on');
  tx(JPKI);
  tx(sel('0018'));
  t.equal(tx(verifyPin('9999')).sw, '63C2');
  t.equal(tx(verifyPin('1234')).sw, '9000');
  tx(verifyPin('0000'));
  t.equal(m.pin('jpki', 0x18)!.remaining, 2);
  tx(verifyPin('1234'));
  m.powerEvent();
  t.equal(m.selectedDf, undefined);
  t.notOk(m.isVerified('jpki', 0x18), 'verified flag dropped');
  t.equal(m.pin('jpki', 0x18)!.remaining, 3, 'counter kept');
  t.equal(tx('00B0000004').sw, '6986', 'no current EF');
});

t.test('row 2: SELECT JPKI AID P2 0C → 9000 no data; drops verified state (also its own)', async (t) => {
  const { m, tx } = mk();
  const r = tx(JPKI);
  t.equal(r.sw, '9000');
  t.equal(r.data.length, 0);
  t.notOk(r.forbidden);
  tx(sel('0018'));
  tx(verifyPin('1234'));
  t.ok(m.isVerified('jpki', 0x18));
  tx(JPKI);
  t.notOk(m.isVerified('jpki', 0x18), 'reselect clears');
  tx(sel('0017'));
  t.equal(tx(signApdu(digestInfo('x'))).sw, '6982');
});

t.test('row 3: unknown AID / unknown FID / EF before any AP → 6A82', async (t) => {
  const { tx } = mk();
  t.equal(tx(sel('000A')).sw, '6A82', 'EF before AP');
  t.equal(tx('00A4040C07A0000000031010').sw, '6A82', 'unknown AID');
  t.equal(tx('00A4040007627601FF000000').sw, '6A82', "OpenSC's foreign probe");
  tx(JPKI);
  t.equal(tx(sel('1234')).sw, '6A82', 'unknown FID');
  t.equal(tx('00A4000C023F00').sw, '6A82', '3F00');
});

t.test('row 4: READ 000A, 000B, 0002, 0006, 0008 without PIN', async (t) => {
  const { tx } = mk();
  tx(JPKI);
  for (const fid of ['000A', '000B', '0002', '0006', '0008']) {
    tx(sel(fid));
    const r = tx('00B0000004');
    t.equal(r.sw, '9000', `read ${fid}`);
    t.equal(r.data.length, fid === '0008' ? 3 : 4);
  }
  tx(sel('0006'));
  const ti = tx('00B0000020');
  t.equal(ti.data.toString('latin1'), 'JPKIAPICCTOKEN2'.padEnd(32, ' '));
  t.equal(tokenInfo().length, 160);
  tx(sel('0008'));
  t.equal(tx('00B0000003').data.toString('hex'), '8f8f00');
  // whole certificate
  tx(sel('000A'));
  const hdr = tx('00B0000004').data;
  const total = hdr.readUInt16BE(2) + 4;
  const parts: Buffer[] = [];
  for (let off = 0; off < total; off += 256)
    parts.push(
      tx(
        `00B0${off.toString(16).padStart(4, '0')}${
          Math.min(256, total - off) === 256
            ? '00'
            : Math.min(256, total - off)
                .toString(16)
                .padStart(2, '0')
        }`,
      ).data,
    );
  const der = Buffer.concat(parts);
  t.same(der, certDer(), 'certificate bytes');
  t.ok(new X509Certificate(der));
});

t.test('row 5: READ 0001 before the signature password → 6982', async (t) => {
  const { tx } = mk();
  tx(JPKI);
  tx(sel('0001'));
  t.equal(tx('00B0000004').sw, '6982');
  tx(sel('001B'));
  t.equal(tx(verifyPin(material.signPassword)).sw, '9000');
  tx(sel('0001'));
  t.equal(tx('00B0000004').sw, '9000', 'readable after the password');
});

t.test('row 6: READ across end → remaining bytes; at/after end → 6B00; FF filler kept', async (t) => {
  const { tx } = mk();
  tx(JPKI);
  tx(sel('0008'));
  const r = tx('00B0000000');
  t.equal(r.sw, '9000');
  t.equal(r.data.length, 3, 'short read');
  t.equal(tx('00B0000300').sw.slice(0, 4), '6B00', 'offset = size');
  t.equal(tx('00B0000401').sw, '6B00', 'offset > size');
  tx(sel('000A'));
  const der = certDer();
  const after = tx(`00B0${der.length.toString(16).padStart(4, '0')}10`);
  t.equal(after.sw, '9000');
  t.same(after.data, Buffer.alloc(16, 0xff), 'filler after the DER object');
  t.equal(tx('00B0080001').sw, '6B00', 'beyond the 2 KB EF');
});

t.test('row 7: READ or SELECT+READ a key/PIN EF is refused without leaking', async (t) => {
  const { tx } = mk();
  tx(JPKI);
  for (const fid of ['0017', '0018', '001A', '001B']) {
    t.equal(tx(sel(fid)).sw, '9000', `select ${fid}`);
    const r = tx('00B0000000');
    t.equal(r.sw, '6981', `read ${fid} refused`);
    t.equal(r.data.length, 0);
  }
  tx(sel('0018'));
  tx(verifyPin('1234'));
  tx(sel('0017'));
  t.equal(tx('00B0000000').sw, '6981', 'still refused after VERIFY');
  t.equal(tx('00B0970000').sw, '6981', 'SFI read of the key refused');
});

t.test('row 8: empty VERIFY → 63Cx always (also after success); 63C0 when blocked', async (t) => {
  const { tx, changes } = mk();
  tx(JPKI);
  tx(sel('0018'));
  t.equal(tx('00200080').sw, '63C3');
  t.equal(tx(verifyPin('1234')).sw, '9000');
  t.equal(tx('00200080').sw, '63C3', 'after success: 63C3, not 9000');
  t.equal(changes.length, 0, 'no counter change');
  const b = mk({ auth: 0 });
  b.tx(JPKI);
  b.tx(sel('0018'));
  t.equal(b.tx('00200080').sw, '63C0');
});

t.test('row 9: wrong PIN decrements; reaching 0 → 63C0 blocked', async (t) => {
  const { tx, m, changes } = mk();
  tx(JPKI);
  tx(sel('0018'));
  t.equal(tx(verifyPin('0000')).sw, '63C2');
  t.equal(tx(verifyPin('0000')).sw, '63C1');
  t.equal(tx(verifyPin('0000')).sw, '63C0');
  t.equal(m.pin('jpki', 0x18)!.remaining, 0);
  t.same(
    changes,
    [
      ['jpki', 0x18, 2],
      ['jpki', 0x18, 1],
      ['jpki', 0x18, 0],
    ],
    'each change reported for persistence',
  );
});

t.test('row 10: VERIFY with data on a blocked PIN → 6984 (or 6983), counter stays 0', async (t) => {
  const { tx, m } = mk({ auth: 0 });
  tx(JPKI);
  tx(sel('0018'));
  t.equal(tx(verifyPin('1234')).sw, '6984', 'even the correct PIN');
  t.equal(tx(verifyPin('0000')).sw, '6984');
  t.equal(m.pin('jpki', 0x18)!.remaining, 0);
  t.notOk(m.isVerified('jpki', 0x18));
  const g = mk({ auth: 0, blockedSw: 0x6983 });
  g.tx(JPKI);
  g.tx(sel('0018'));
  t.equal(g.tx(verifyPin('1234')).sw, '6983', 'configurable');
});

t.test('row 11: correct PIN → 9000, counter back to max, verified', async (t) => {
  const { tx, m } = mk({ auth: 1, sign: 2 });
  tx(JPKI);
  tx(sel('0018'));
  t.equal(tx(verifyPin('1234')).sw, '9000');
  t.equal(m.pin('jpki', 0x18)!.remaining, 3);
  t.ok(m.isVerified('jpki', 0x18));
  tx(sel('001B'));
  t.equal(tx(verifyPin(material.signPassword)).sw, '9000');
  t.equal(m.pin('jpki', 0x1b)!.remaining, 5);
});

t.test('row 12: wrong-length or non-digit PIN data counts as a failed attempt', async (t) => {
  const { tx } = mk();
  tx(JPKI);
  tx(sel('0018'));
  t.equal(tx(verifyPin('123')).sw, '63C2');
  t.equal(tx(verifyPin('12345')).sw, '63C1');
  t.equal(tx(verifyPin('12a4')).sw, '63C0');
});

t.test('row 13: sign before PIN 0018, or with only 001B verified → 6982', async (t) => {
  const { tx } = mk();
  tx(JPKI);
  tx(sel('0017'));
  t.equal(tx(signApdu(digestInfo('a'))).sw, '6982');
  tx(sel('001B'));
  tx(verifyPin(material.signPassword));
  tx(sel('0017'));
  t.equal(tx(signApdu(digestInfo('a'))).sw, '6982', 'sign password does not unlock the auth key');
});

t.test('row 14: sign after VERIFY → 256-byte PKCS#1 v1.5 signature, 9000', async (t) => {
  const { tx } = mk();
  tx(JPKI);
  tx(sel('0018'));
  tx(verifyPin('1234'));
  tx(sel('0017'));
  const r = tx(signApdu(digestInfo('challenge')));
  t.equal(r.sw, '9000');
  t.equal(r.data.length, 256);
  const cert = new X509Certificate(material.certPem);
  t.ok(verify('sha256', Buffer.from('challenge'), cert.publicKey, r.data), 'verifies as sha256WithRSAEncryption');
  t.same(publicDecrypt({ key: cert.publicKey, padding: constants.RSA_PKCS1_PADDING }, r.data), digestInfo('challenge'));
});

t.test('row 15: SELECT/READ other EFs between VERIFY and sign keeps the verified state', async (t) => {
  const { tx } = mk();
  tx(JPKI);
  tx(sel('0018'));
  tx(verifyPin('1234'));
  tx(sel('000A'));
  tx('00B0000004');
  tx(sel('0006'));
  tx('00B0000020');
  tx(sel('0017'));
  t.equal(tx(signApdu(digestInfo('x'))).sw, '9000');
});

t.test('row 16: several signatures after one VERIFY', async (t) => {
  const { tx } = mk();
  tx(JPKI);
  tx(sel('0018'));
  tx(verifyPin('1234'));
  tx(sel('0017'));
  for (let i = 0; i < 3; i++) t.equal(tx(signApdu(digestInfo(`m${i}`))).sw, '9000');
});

t.test('row 17: sign with no current EF → 6986; current EF not a key → 6981', async (t) => {
  const { tx } = mk();
  t.equal(tx(signApdu(digestInfo('x'))).sw, '6986', 'nothing selected');
  tx(JPKI);
  t.equal(tx(signApdu(digestInfo('x'))).sw, '6986', 'AP but no EF');
  tx(sel('000A'));
  t.equal(tx(signApdu(digestInfo('x'))).sw, '6981', 'certificate EF is not a key');
});

t.test('row 18: sign P1 ≠ 00 → 6A86; Lc 0 → 6700; Lc > 245 → 6985', async (t) => {
  const { tx } = mk();
  tx(JPKI);
  tx(sel('0018'));
  tx(verifyPin('1234'));
  tx(sel('0017'));
  for (const p1 of ['01', '02', '03', '04', '05', 'FF'])
    t.equal(tx(signApdu(digestInfo('x'), p1)).sw, '6A86', `P1 ${p1}`);
  t.equal(tx('802A0080').sw, '6700', 'no data (case 1)');
  t.equal(tx('802A008000').sw, '6700', 'case 2');
  t.equal(tx(signApdu(Buffer.alloc(246, 1))).sw, '6985', 'Lc 246');
  t.equal(tx(signApdu(Buffer.alloc(245, 1))).sw, '9000', 'Lc 245 accepted');
  t.equal(tx('802A0080FF' + '00'.repeat(10)).sw, '6700', 'Lc disagrees with the data');
});

t.test('row 19: SFI forms equal explicit SELECT + command', async (t) => {
  const { tx, m } = mk();
  tx(JPKI);
  const viaSfi = tx('00B08A0004');
  tx(sel('000A'));
  const explicit = tx('00B0000004');
  t.same(viaSfi.data, explicit.data);
  t.equal(viaSfi.sw, '9000');
  t.equal(tx('00B08A0010').sw, '9000', 'READ P1 8A P2 offset');
  t.equal(tx('00200098').sw, '63C3', 'empty VERIFY via P2 98');
  t.equal(tx('002000980431323334').sw, '9000', 'VERIFY 0018 via P2 98');
  t.ok(m.isVerified('jpki', 0x18));
  t.equal(tx('0020009B').sw, '63C5', 'empty VERIFY 001B via P2 9B');
  t.equal(tx(signApdu(digestInfo('s'), '00', '97')).sw, '9000', 'sign via P2 97');
  t.equal(tx(signApdu(digestInfo('s'), '00', '9A')).sw, '6982', 'sign key via P2 9A needs the password');
  t.equal(tx('00B0990000').sw, '6A82', 'unknown SFI');
});

t.test('row 20: unknown INS / CLA / channel ≠ 0 → 6D00 / 6E00 / 6881', async (t) => {
  const { tx } = mk();
  t.equal(tx('00CA000000').sw, '6D00', 'GET DATA not supported');
  t.equal(tx('00840000 08'.replace(' ', '')).sw, '6D00', 'GET CHALLENGE not supported');
  t.equal(tx('80A4040C0AD392F000260100000001').sw, '6D00', 'proprietary class SELECT');
  t.equal(tx('A0A4000C023F00').sw, '6E00', 'GSM class');
  t.equal(tx('FFCA000000').sw, '6E00', 'PC/SC pseudo-APDU class');
  t.equal(tx('01A4040C0AD392F000260100000001').sw, '6881', 'channel 1');
  t.equal(tx('0CA4040C0AD392F000260100000001').sw, '6882', 'secure messaging');
  t.equal(tx('00A4').sw, '6700', 'too short');
  t.equal(tx('00A4040C0AD392F0').sw, '6700', 'Lc longer than data');
  t.equal(tx('00B0000000').sw, '6986', 'READ with no EF');
});

t.test('row 21: SELECT Kenhojo / Kenkaku answers 9000 and is flagged', async (t) => {
  const { tx } = mk();
  const a = tx(KENHOJO);
  t.equal(a.sw, '9000');
  t.ok(a.forbidden, 'Kenhojo flagged');
  tx(sel('0001'));
  t.equal(tx('00B0000000').sw, '6982', 'My Number EF behind its PIN');
  const b = tx(KENKAKU);
  t.equal(b.sw, '9000');
  t.ok(b.forbidden, 'Kenkaku flagged');
  const c = tx(JPKI);
  t.notOk(c.forbidden, 'JPKI not flagged');
  // JICSAP prefix selection: a short AID lands in a 券面 AP — why clients send the full AID.
  const prefix = tx('00A4040C09D39210003100010104');
  t.equal(prefix.sw, '9000');
  t.ok(prefix.forbidden, 'prefix select lands in a forbidden AP');
  t.equal(tx('00A4040C05D392F00026').sw, '9000', 'JPKI prefix matches JPKI');
});

t.test('row 22: PINs 0018 and 001B are independent (3 vs 5, separate flags)', async (t) => {
  const { tx, m } = mk();
  tx(JPKI);
  tx(sel('001B'));
  t.equal(tx('00200080').sw, '63C5');
  t.equal(tx(verifyPin('WRONG1')).sw, '63C4');
  tx(sel('0018'));
  t.equal(tx('00200080').sw, '63C3', 'auth counter untouched');
  t.equal(tx(verifyPin('0000')).sw, '63C2');
  tx(sel('001B'));
  t.equal(tx('00200080').sw, '63C4', 'sign counter untouched by the auth failure');
  tx(sel('0018'));
  tx(verifyPin('1234'));
  t.ok(m.isVerified('jpki', 0x18));
  t.notOk(m.isVerified('jpki', 0x1b));
  t.equal(m.pin('jpki', 0x1b)!.remaining, 4, 'auth success does not reset the sign counter');
});
