import t from 'tap';
import fc from 'fast-check';
import {
  selectJpkiAp,
  selectEf,
  readBinary,
  verifyTriesLeft,
  verifyPin,
  computeSignature,
  sha256DigestInfo,
  parseResponse,
  derTotalLength,
  triesFromSw,
  assertAllowedApdu,
  expectOk,
  isValidPin,
  JPKI_AID,
} from '../../src/reader/apdu.js';
import { ReaderError, errorFromSw, isReaderError } from '../../src/reader/errors.js';
import { OnshiError } from '../../src/core/errors.js';

const hex = (b: Buffer) => b.toString('hex').toUpperCase();
const sp = (s: string) => s.replace(/\s+/g, '');

t.test('builders match the spec byte for byte', async (t) => {
  t.equal(hex(selectJpkiAp()), sp('00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01'));
  t.equal(JPKI_AID.length, 10, 'full 10-byte AID');
  t.equal(hex(selectEf(0x000a)), sp('00 A4 02 0C 02 00 0A'));
  t.equal(hex(selectEf(0x0006)), sp('00 A4 02 0C 02 00 06'));
  t.equal(hex(selectEf(0x0018)), sp('00 A4 02 0C 02 00 18'));
  t.equal(hex(selectEf(0x0017)), sp('00 A4 02 0C 02 00 17'));
  t.equal(hex(readBinary(0, 4)), sp('00 B0 00 00 04'));
  t.equal(hex(readBinary(0, 0x20)), sp('00 B0 00 00 20'));
  t.equal(hex(readBinary(0, 256)), sp('00 B0 00 00 00'));
  t.equal(hex(readBinary(0x100, 256)), sp('00 B0 01 00 00'));
  t.equal(hex(readBinary(0x7fff, 1)), sp('00 B0 7F FF 01'));
  t.throws(() => readBinary(0x8000, 1), RangeError, 'offset > 15 bits');
  t.throws(() => readBinary(0, 0), RangeError);
  t.throws(() => readBinary(0, 257), RangeError);
  t.throws(() => readBinary(-1, 1), RangeError);
  t.throws(() => selectEf(0x10000), RangeError);
  t.equal(hex(verifyTriesLeft()), sp('00 20 00 80'));
  t.equal(hex(verifyPin(Buffer.from('1234'))), sp('00 20 00 80 04 31 32 33 34'));
  const hash = Buffer.alloc(32, 0xab);
  const di = sha256DigestInfo(hash);
  t.equal(di.length, 51);
  t.equal(hex(di), sp('30 31 30 0D 06 09 60 86 48 01 65 03 04 02 01 05 00 04 20') + 'AB'.repeat(32));
  t.equal(hex(computeSignature(di)), sp('80 2A 00 80 33') + hex(di) + '00');
  t.throws(() => sha256DigestInfo(Buffer.alloc(20)), RangeError);
  t.throws(() => computeSignature(Buffer.alloc(0)), RangeError);
  t.throws(() => computeSignature(Buffer.alloc(246)), RangeError);
  t.equal(computeSignature(Buffer.alloc(245)).length, 5 + 245 + 1);
});

t.test('verifyPin rejects anything but 4 ASCII digits with CARD_PIN_FORMAT', async (t) => {
  for (const bad of ['123', '12345', '12a4', '', ' 123', '１２３４', '12.4', '12-4']) {
    const e = t.throws(() => verifyPin(Buffer.from(bad))) as unknown;
    t.ok(isReaderError(e, 'CARD_PIN_FORMAT'), `rejects ${JSON.stringify(bad)}`);
    t.ok(e instanceof OnshiError);
  }
  t.throws(() => verifyPin('1234' as unknown as Buffer), { code: 'CARD_PIN_FORMAT' }, 'a string is not a Buffer');
  t.ok(isValidPin(Buffer.from('0000')));
  t.ok(isValidPin(Buffer.from('9999')));
  t.notOk(isValidPin(Buffer.from([0x2f, 0x30, 0x30, 0x30])));
  t.notOk(isValidPin(Buffer.from([0x3a, 0x30, 0x30, 0x30])));
});

t.test('parseResponse and DER lengths', async (t) => {
  t.same(parseResponse(Buffer.from([0x90, 0x00])), { data: Buffer.alloc(0), sw: 0x9000 });
  t.same(parseResponse(Buffer.from([1, 2, 0x63, 0xc2])), { data: Buffer.from([1, 2]), sw: 0x63c2 });
  t.throws(() => parseResponse(Buffer.from([0x90])), { code: 'CARD_BAD_RESPONSE' });
  t.throws(() => parseResponse(Buffer.alloc(0)), { code: 'CARD_BAD_RESPONSE' });
  t.equal(derTotalLength(Buffer.from('30820500', 'hex')), 0x500 + 4, '30 82 HH LL → HHLL + 4');
  t.equal(derTotalLength(Buffer.from('307f', 'hex')), 0x7f + 2, 'short form');
  t.equal(derTotalLength(Buffer.from('3000', 'hex')), 2);
  t.equal(derTotalLength(Buffer.from('3081c8', 'hex')), 0xc8 + 3, '81 LL');
  t.equal(derTotalLength(Buffer.from('3083000100', 'hex')), 0x100 + 5, '83 form');
  t.equal(derTotalLength(Buffer.from('308400000100', 'hex')), 0x100 + 6, '84 form');
  t.throws(() => derTotalLength(Buffer.from('3080', 'hex')), { code: 'CARD_BAD_RESPONSE' }, 'indefinite');
  t.throws(() => derTotalLength(Buffer.from('30850000000001', 'hex')), { code: 'CARD_BAD_RESPONSE' }, '85 oversize');
  t.throws(
    () => derTotalLength(Buffer.from('3084ffffffff', 'hex')),
    { code: 'CARD_BAD_RESPONSE' },
    'too large for the EF',
  );
  t.throws(() => derTotalLength(Buffer.from('3082ff', 'hex')), { code: 'CARD_BAD_RESPONSE' }, 'truncated');
  t.throws(() => derTotalLength(Buffer.from('30', 'hex')), { code: 'CARD_BAD_RESPONSE' });
  t.throws(() => derTotalLength(Buffer.from('ffff', 'hex')), { code: 'CARD_BAD_RESPONSE' }, 'filler');
  t.equal(triesFromSw(0x63c3), 3);
  t.equal(triesFromSw(0x63c0), 0);
  t.equal(triesFromSw(0x6984), 0);
  t.equal(triesFromSw(0x6983), 0);
  t.equal(triesFromSw(0x9000), undefined);
  t.equal(triesFromSw(0x6982), undefined);
});

t.test('every status word of the spec maps to a typed error', async (t) => {
  const table: Array<[number, string, Record<string, unknown>?]> = [
    [0x63c2, 'CARD_PIN_WRONG', { triesLeft: 2 }],
    [0x63c1, 'CARD_PIN_WRONG', { triesLeft: 1 }],
    [0x63c0, 'CARD_PIN_BLOCKED', { triesLeft: 0 }],
    [0x6984, 'CARD_PIN_BLOCKED', { triesLeft: 0 }],
    [0x6983, 'CARD_PIN_BLOCKED', { triesLeft: 0 }],
    [0x6982, 'CARD_SECURITY_STATUS'],
    [0x6985, 'CARD_CONDITIONS_NOT_SATISFIED'],
    [0x6986, 'CARD_NO_CURRENT_EF'],
    [0x6981, 'CARD_COMMAND_NOT_ALLOWED'],
    [0x6a88, 'CARD_REFERENCE_NOT_FOUND'],
    [0x6a82, 'CARD_FILE_NOT_FOUND'],
    [0x6a86, 'CARD_WRONG_PARAMETERS'],
    [0x6700, 'CARD_WRONG_LENGTH'],
    [0x6b00, 'CARD_OFFSET_OUT_OF_RANGE'],
    [0x6d00, 'CARD_INS_NOT_SUPPORTED'],
    [0x6e00, 'CARD_CLA_NOT_SUPPORTED'],
    [0x6881, 'CARD_CHANNEL_NOT_SUPPORTED'],
    [0x6882, 'CARD_SM_NOT_SUPPORTED'],
    [0x6110, 'CARD_UNEXPECTED_SW', { sw: '6110' }],
    [0x6c20, 'CARD_UNEXPECTED_SW', { sw: '6C20' }],
    [0x6f00, 'CARD_UNEXPECTED_SW', { sw: '6F00' }],
  ];
  for (const [sw, code, details] of table) {
    const e = errorFromSw(sw);
    t.ok(e instanceof ReaderError && e instanceof OnshiError, `${sw.toString(16)} is a ReaderError`);
    t.equal(e.code, code, `${sw.toString(16)} → ${code}`);
    if (details) t.match(e.details, details);
  }
  t.equal(errorFromSw(0x6a82, 'select-ap').code, 'CARD_NOT_JPKI', '6A82 on SELECT AP = not a JPKI card');
  t.throws(() => expectOk({ data: Buffer.alloc(0), sw: 0x6982 }, 'sign'), { code: 'CARD_SECURITY_STATUS' });
  t.same(expectOk({ data: Buffer.from([1]), sw: 0x9000 }, 'read'), Buffer.from([1]));
  t.notOk(errorFromSw(0x63c2).details['pin'], 'no PIN in details');
});

t.test('assertAllowedApdu refuses any SELECT by name but the full JPKI AID', async (t) => {
  t.doesNotThrow(() => assertAllowedApdu(selectJpkiAp()));
  t.doesNotThrow(() => assertAllowedApdu(selectEf(0x000a)));
  const prefix = Buffer.from('00A4040C06D392F0002601', 'hex');
  t.throws(() => assertAllowedApdu(prefix), { code: 'READER_APDU_REFUSED' }, 'AID prefix refused');
  const other = Buffer.concat([
    Buffer.from('00A4040C0A', 'hex'),
    Buffer.from('D392100031000101', 'hex'),
    Buffer.from([0x04, 0x08]),
  ]);
  t.throws(() => assertAllowedApdu(other), { code: 'READER_APDU_REFUSED' });
});

t.test('fuzz: parsers return a value or a ReaderError, nothing else', async (t) => {
  const classify = (f: () => unknown): boolean => {
    try {
      f();
      return true;
    } catch (e) {
      return e instanceof ReaderError;
    }
  };
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (b) => classify(() => parseResponse(b))),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 12 }), (b) =>
      classify(() => {
        const n = derTotalLength(b);
        if (!Number.isInteger(n) || n < 2 || n > 0x8000) throw new Error(`bad length ${n}`);
      }),
    ),
    { numRuns: 5000 },
  );
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffff }), (sw) => {
      const e = errorFromSw(sw);
      const tries = triesFromSw(sw);
      return e instanceof ReaderError && (tries === undefined || (tries >= 0 && tries <= 15));
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 8 }), (b) => classify(() => verifyPin(Buffer.from(b)))),
    { numRuns: 2000 },
  );
  // parseResponse round-trip
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 258 }), fc.integer({ min: 0, max: 0xffff }), (d, sw) => {
      const r = parseResponse(Buffer.concat([Buffer.from(d), Buffer.from([sw >> 8, sw & 0xff])]));
      return r.sw === sw && r.data.equals(Buffer.from(d));
    }),
  );
  t.pass('fuzzed');
});
