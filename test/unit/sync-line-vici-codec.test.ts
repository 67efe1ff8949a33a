import type FastCheck from 'fast-check';
import t from 'tap';
import {
  decodeMessage,
  decodePacket,
  encodeMessage,
  encodePacket,
  FrameReader,
  VICI_MAX_SEGMENT,
  type ViciMessage,
} from '../../src/sync/line/vici/codec.js';

const bytes = (...parts: (number | string)[]): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'number' ? Buffer.of(p) : Buffer.from(p, 'latin1'))));

// The example of the protocol description, byte by byte:
//   key1 = value1, section1 = { sub-section = { key2 = value2 }, list1 = [item1, item2] }
const EXAMPLE = bytes(
  3,
  4,
  'key1',
  0,
  6,
  'value1',
  1,
  8,
  'section1',
  1,
  11,
  'sub-section',
  3,
  4,
  'key2',
  0,
  6,
  'value2',
  2,
  4,
  5,
  'list1',
  5,
  0,
  5,
  'item1',
  5,
  0,
  5,
  'item2',
  6,
  2,
);
const EXAMPLE_TREE: ViciMessage = {
  key1: 'value1',
  section1: { 'sub-section': { key2: 'value2' }, list1: ['item1', 'item2'] },
};

t.test('the documented example encodes to its bytes and decodes back', async (t) => {
  t.same(encodeMessage(EXAMPLE_TREE), EXAMPLE);
  t.same(decodeMessage(EXAMPLE), EXAMPLE_TREE);
});

t.test('packets: frame length, type byte, name, message', async (t) => {
  // CMD_REQUEST "version" with no message: length 1 + 1 + 7 = 9.
  t.same(encodePacket({ type: 'CMD_REQUEST', name: 'version' }), bytes(0, 0, 0, 9, 0, 7, 'version'));
  t.same(encodePacket({ type: 'EVENT_REGISTER', name: 'ike-updown' }), bytes(0, 0, 0, 12, 3, 10, 'ike-updown'));
  t.same(encodePacket({ type: 'EVENT_UNREGISTER', name: 'list-sa' }), bytes(0, 0, 0, 9, 4, 7, 'list-sa'));
  // Numbers and booleans become the strings charon expects; undefined keys are left out.
  t.same(
    encodePacket({
      type: 'CMD_REQUEST',
      name: 'initiate',
      message: { child: 'c', timeout: 500, x: undefined, y: true },
    }),
    bytes(
      0,
      0,
      0,
      42,
      0,
      8,
      'initiate',
      3,
      5,
      'child',
      0,
      1,
      'c',
      3,
      7,
      'timeout',
      0,
      3,
      '500',
      3,
      1,
      'y',
      0,
      3,
      'yes',
    ),
  );
  t.same(decodePacket(bytes(1, 3, 7, 'success', 0, 3, 'yes')), { type: 'CMD_RESPONSE', message: { success: 'yes' } });
  t.same(decodePacket(bytes(2)), { type: 'CMD_UNKNOWN' });
  t.same(decodePacket(bytes(5)), { type: 'EVENT_CONFIRM' });
  t.same(decodePacket(bytes(6)), { type: 'EVENT_UNKNOWN' });
  t.same(decodePacket(bytes(7, 10, 'ike-updown', 3, 2, 'up', 0, 3, 'yes')), {
    type: 'EVENT',
    name: 'ike-updown',
    message: { up: 'yes' },
  });
});

t.test('the frame reader splits a stream cut anywhere', async (t) => {
  const stream = Buffer.concat([
    encodePacket({ type: 'CMD_REQUEST', name: 'list-sas', message: { noblock: 'yes' } }),
    encodePacket({ type: 'EVENT_REGISTER', name: 'child-updown' }),
  ]);
  for (let cut = 0; cut <= stream.length; cut++) {
    const r = new FrameReader();
    const segs = [...r.push(stream.subarray(0, cut)), ...r.push(stream.subarray(cut))];
    t.equal(segs.length, 2, `cut at ${cut}`);
    t.same(decodePacket(segs[1]!), { type: 'EVENT_REGISTER', name: 'child-updown' });
    t.equal(r.buffered, 0);
  }
  t.throws(() => new FrameReader().push(bytes(0, 8, 0, 1)), { code: 'VICI_TOO_LARGE' }, 'a length past 512 KiB');
  t.throws(() => new FrameReader().push(bytes(0, 0, 0, 0)), { code: 'VICI_MALFORMED' }, 'an empty segment');
});

t.test('malformed and truncated input ends in VICI_MALFORMED, never a partial tree', async (t) => {
  for (let n = 1; n < EXAMPLE.length; n++) {
    if (n === 14) continue; // "key1 = value1" alone is a whole message
    t.throws(() => decodeMessage(EXAMPLE.subarray(0, n)), { code: 'VICI_MALFORMED' }, `cut to ${n} bytes`);
  }
  const bad: [string, Buffer][] = [
    ['unknown element type', bytes(9)],
    ['SECTION_END at the root', bytes(2)],
    ['LIST_ITEM outside a list', bytes(5, 0, 1, 'x')],
    ['LIST_END without a list', bytes(6)],
    ['a key/value inside a list', bytes(4, 1, 'l', 3, 1, 'k', 0, 1, 'v', 6)],
    ['a list left open', bytes(4, 1, 'l', 5, 0, 1, 'x')],
    ['a duplicate key', bytes(3, 1, 'k', 0, 1, 'a', 3, 1, 'k', 0, 1, 'b')],
    ['an empty name', bytes(3, 0, 0, 1, 'v')],
  ];
  for (const [what, buf] of bad) t.throws(() => decodeMessage(buf), { code: 'VICI_MALFORMED' }, what);
  t.throws(() => decodePacket(bytes(8)), { code: 'VICI_MALFORMED' }, 'unknown packet type');
  t.throws(() => decodePacket(bytes(5, 1)), { code: 'VICI_MALFORMED' }, 'EVENT_CONFIRM with a body');
  t.throws(() => decodePacket(bytes(7, 20, 'short')), { code: 'VICI_MALFORMED' }, 'a name past the end');
  const deep = Buffer.concat([
    ...Array.from({ length: 40 }, () => bytes(1, 1, 's')),
    ...Array.from({ length: 40 }, () => bytes(2)),
  ]);
  t.throws(() => decodeMessage(deep), { code: 'VICI_MALFORMED' }, 'sections nested past the bound');
});

t.test('a key named __proto__ is data, not a prototype', async (t) => {
  const m = decodeMessage(bytes(3, 9, '__proto__', 0, 1, 'x'));
  t.equal(Object.getPrototypeOf(m), Object.prototype);
  t.same(Object.keys(m), ['__proto__']);
});

t.test('what cannot be encoded is refused with VICI_ENCODE / VICI_TOO_LARGE', async (t) => {
  t.throws(() => encodeMessage({ ['k'.repeat(256)]: 'v' }), { code: 'VICI_ENCODE' }, 'a 256-byte name');
  t.throws(() => encodeMessage({ k: 'v'.repeat(65536) }), { code: 'VICI_ENCODE' }, 'a 64 KiB value');
  t.throws(() => encodeMessage({ l: [{ nested: 'x' }] as never }), { code: 'VICI_ENCODE' }, 'a section in a list');
  t.throws(() => encodeMessage({ n: Number.NaN }), { code: 'VICI_ENCODE' });
  const big = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, 'v'.repeat(60_000)]));
  t.throws(() => encodeMessage(big), { code: 'VICI_TOO_LARGE' }, `past ${VICI_MAX_SEGMENT} bytes`);
});

t.test('property: any tree round-trips through bytes', async (t) => {
  const { default: fc } = await import('fast-check');
  const name = fc.string({ minLength: 1, maxLength: 12 }).filter((s) => Buffer.byteLength(s) <= 255);
  const value = fc.string({ maxLength: 20 });
  const tree: FastCheck.Arbitrary<ViciMessage> = fc.letrec<{ node: ViciMessage }>((tie) => ({
    node: fc.dictionary(
      name,
      fc.oneof({ depthSize: 'small', maxDepth: 4 }, value, fc.array(value, { maxLength: 4 }), tie('node')),
      { maxKeys: 5 },
    ) as FastCheck.Arbitrary<ViciMessage>,
  })).node;
  fc.assert(
    fc.property(tree, (m: ViciMessage) => {
      t.same(decodeMessage(encodeMessage(m)), m);
    }),
    { numRuns: 300 },
  );
  // And random bytes never throw anything but a typed error.
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
      try {
        decodePacket(Buffer.from(b));
      } catch (e) {
        if ((e as { code?: string }).code !== 'VICI_MALFORMED') throw e;
      }
    }),
    { numRuns: 2000 },
  );
});
