// The JPKI APDU allowlist (issue 18 item 12): checked where APDUs are built and again on the
// transmit path; a fake PC/SC card records what would have reached pcscd.
import t from 'tap';
import {
  ApduAllowlist,
  ALLOWED_EFS,
  assertAllowedApdu,
  computeSignature,
  readBinary,
  selectEf,
  selectJpkiAp,
  sha256DigestInfo,
  verifyPin,
  verifyTriesLeft,
} from '../../src/reader/apdu.js';
import { allowlistedCard, type PcscCard } from '../../src/reader/pcsc.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const KENHOJO = hex('00A4040C0A D392100031000101 0408');
const KENKAKU = hex('00A4040C0A D392100031000101 0402');
const selectFid = (fid: number) => Buffer.from([0x00, 0xa4, 0x02, 0x0c, 0x02, fid >> 8, fid & 0xff]);

t.test('the builders make nothing outside the allowlist', async (t) => {
  for (const fid of [0x0001, 0x0002, 0x000b, 0x001a, 0x001b, 0x0008, 0x3f00])
    t.throws(() => selectEf(fid), { code: 'READER_APDU_REFUSED' }, `no SELECT of EF ${fid.toString(16)}`);
  for (const fid of ALLOWED_EFS) t.doesNotThrow(() => assertAllowedApdu(selectEf(fid)));
  for (const a of [selectJpkiAp(), readBinary(0, 256), verifyTriesLeft(), verifyPin(Buffer.from('1234'))])
    t.doesNotThrow(() => assertAllowedApdu(a));
  t.doesNotThrow(() => assertAllowedApdu(computeSignature(sha256DigestInfo(Buffer.alloc(32)))));
});

t.test('every other SELECT or READ is refused by shape', async (t) => {
  const refused = [
    KENHOJO,
    KENKAKU,
    hex('00A4040C06D392F0002601'), // a prefix of the JPKI AID
    hex('00A40400 0A D392F000260100000001'), // the JPKI AID asking for FCI
    hex('00A4000C023F00'), // SELECT MF
    hex('00A4020C020001'), // the 署名用 certificate
    hex('00A4020C02001B'), // the 署名用 password
    hex('00A4020C02000B'),
    hex('00A40204020006'), // an EF with FCI
    hex('00B08A0000'), // READ BINARY by short EF id (selects EF 000A implicitly)
    hex('00B0810000'), // … or EF 0001
    hex('00B00000000100'), // extended Le
    hex('00200098 04 31323334'), // VERIFY by short EF id
    hex('0020009B 06 414243313233'), // the 署名用 password
    hex('00240180 04 31323334'), // CHANGE REFERENCE DATA
    hex('00CA0000 00'), // GET DATA
    hex('00B2010400'), // READ RECORD
    hex('00D6000001 00'), // UPDATE BINARY
    hex('802A009A 03 000000 00'), // the signature key by short id
    hex('00A4'),
  ];
  for (const a of refused)
    t.throws(() => assertAllowedApdu(a), { code: 'READER_APDU_REFUSED' }, a.toString('hex').toUpperCase());
  for (let fid = 0; fid <= 0x00ff; fid++)
    if (!ALLOWED_EFS.has(fid))
      t.throws(() => assertAllowedApdu(selectFid(fid)), { code: 'READER_APDU_REFUSED' }, `EF ${fid}`);
});

t.test(
  'on the transmit path: nothing refused reaches the card, and READ/VERIFY/SIGN only where they belong',
  async (t) => {
    const reached: string[] = [];
    let answer = hex('9000');
    const fake: PcscCard = {
      transmit: async (a) => {
        reached.push(a.toString('hex').toUpperCase());
        return answer;
      },
      beginTransaction: async () => undefined,
      endTransaction: async () => undefined,
      status: () => ({ present: true }),
      disconnect: async () => undefined,
    };
    const card = allowlistedCard(fake);
    const refuses = async (a: Buffer, why: string) => {
      const before = reached.length;
      await t.rejects(card.transmit(a), { code: 'READER_APDU_REFUSED' }, why);
      t.equal(reached.length, before, `${why}: nothing reached the card`);
    };
    await refuses(readBinary(0, 32), 'a READ before the JPKI AP is selected');
    await refuses(selectEf(0x000a), 'a SELECT EF before the JPKI AP');
    await refuses(KENHOJO, 'the 券面事項入力補助AP');
    await refuses(KENKAKU, 'the 券面事項確認AP');
    await card.transmit(selectJpkiAp());
    await refuses(readBinary(0, 32), 'a READ with no EF selected');
    await refuses(selectFid(0x0001), 'the 署名用 certificate');
    await refuses(hex('00B0810000'), 'a READ by short EF id');
    await card.transmit(selectEf(0x000a));
    await card.transmit(readBinary(0, 256));
    await card.transmit(selectEf(0x0018));
    await refuses(readBinary(0, 4), 'a READ of the PIN EF');
    await card.transmit(verifyTriesLeft());
    await refuses(computeSignature(sha256DigestInfo(Buffer.alloc(32))), 'a signature outside the key EF');
    await card.transmit(selectEf(0x0017));
    await refuses(readBinary(0, 4), 'a READ of the key EF');
    await refuses(verifyTriesLeft(), 'a VERIFY outside the PIN EF');
    await card.transmit(computeSignature(sha256DigestInfo(Buffer.alloc(32))));
    answer = hex('6A82');
    await card.transmit(selectEf(0x000a));
    await refuses(readBinary(0, 4), 'a READ after a SELECT the card refused');
    t.same(
      reached,
      [
        '00A4040C0AD392F000260100000001',
        '00A4020C02000A',
        '00B0000000',
        '00A4020C020018',
        '00200080',
        '00A4020C020017',
        computeSignature(sha256DigestInfo(Buffer.alloc(32)))
          .toString('hex')
          .toUpperCase(),
        '00A4020C02000A',
      ],
      'only the allowlisted APDUs reached the card',
    );
    const guard = new ApduAllowlist();
    t.throws(() => guard.check(verifyPin(Buffer.from('1234'))), { code: 'READER_APDU_REFUSED' });
    try {
      guard.check(verifyPin(Buffer.from('1234')));
    } catch (e) {
      t.notMatch(JSON.stringify((e as { details?: unknown }).details), /31323334/, 'no PIN in the details');
    }
  },
);
