import t, { type Test } from 'tap';
import { errorOf } from '../helpers/oqs.js';
import fc from 'fast-check';
import iconv from 'iconv-lite';
import { readFileSync } from 'node:fs';
import {
  OqsError,
  parseXmlDocument,
  serializeXmlDocument,
  type OqsErrorCode,
  type XmlTree,
} from '../../src/oqs/index.js';

const u8 = (s: string): Buffer => Buffer.from(s, 'utf8');
const sjis = (s: string): Buffer => iconv.encode(s, 'cp932');
const DECL_SJIS = '<?xml version="1.0" encoding="Shift_JIS" standalone="no"?>\n';

function code(t: Test, fn: () => unknown): OqsErrorCode | undefined {
  return errorOf(t, fn)?.code;
}

const parse = (s: string | Uint8Array, limits?: Parameters<typeof parseXmlDocument>[1]) =>
  parseXmlDocument(typeof s === 'string' ? u8(s) : s, limits);

t.test('tree form', async (t) => {
  const doc = parse(`<?xml version="1.0"?>
<R>
  <A>  139998</A>
  <E></E><S/>
  <L><I>1</I></L>
  <L><I>2</I><I>3</I></L>
  <W> </W>
  <T>a &amp; b &lt;c&gt; &#x9AD9;&#39;&quot;&apos;<![CDATA[<raw & text>]]><!-- c --></T>
</R>`);
  t.equal(doc.root, 'R');
  t.equal(doc.encoding, 'UTF-8');
  t.strictSame(doc.tree, {
    A: '  139998',
    E: '',
    S: '',
    L: [{ I: '1' }, { I: ['2', '3'] }],
    W: ' ',
    T: `a & b <c> 髙'"'<raw & text>`,
  });
});

t.test('line endings are normalized; CR survives as a reference', async (t) => {
  t.strictSame(parse('<R>\r\n<A>x\r\ny\rz</A></R>').tree, { A: 'x\ny\nz' });
  t.strictSame(parse('<R><A>x&#13;y</A></R>').tree, { A: 'x\ry' });
  const out = serializeXmlDocument('R', { A: 'x\ry' }, 'UTF-8');
  t.strictSame(parse(out).tree, { A: 'x\ry' });
});

t.test('mixed content and structure errors carry line and column', async (t) => {
  const e = errorOf(t, () => parse('<R>\n  <A>1</A>\n  oops\n</R>'));
  t.equal(e?.code, 'OQS_XML_MALFORMED');
  t.equal(e?.details.line, 3);
  t.equal(e?.details.column, 3);
  t.equal(
    code(t, () => parse('<R>text<A/></R>')),
    'OQS_XML_MALFORMED',
  );
  t.equal(
    code(t, () => parse('<R>　<A/></R>')),
    'OQS_XML_MALFORMED',
    'a full-width space is text, not XML whitespace',
  );
  const m = errorOf(t, () => parse('<R><A>1</B></R>'));
  t.equal(m?.code, 'OQS_XML_MALFORMED');
  t.equal(m?.details.line, 1);
  t.equal(m?.details.column, 8);
  t.equal(
    code(t, () => parse('<R><A>1</A>')),
    'OQS_XML_MALFORMED',
    'unclosed',
  );
  t.equal(
    code(t, () => parse('<R/><R/>')),
    'OQS_XML_MALFORMED',
    'two roots',
  );
  t.equal(
    code(t, () => parse('<R/>tail')),
    'OQS_XML_MALFORMED',
    'text after root',
  );
  t.equal(
    code(t, () => parse('')),
    'OQS_XML_MALFORMED',
    'empty',
  );
  t.equal(
    code(t, () => parse('<R>a]]>b</R>')),
    'OQS_XML_MALFORMED',
  );
  t.equal(
    code(t, () => parse('<R><a:b/></R>')),
    'OQS_XML_MALFORMED',
    'namespaces',
  );
  t.equal(
    code(t, () => parse('<R><!-- a -- b --></R>')),
    'OQS_XML_MALFORMED',
  );
  t.equal(
    code(t, () => parse('<R>\u0001</R>')),
    'OQS_XML_MALFORMED',
    'control character',
  );
  t.equal(
    code(t, () => parse('<R>&#0;</R>')),
    'OQS_XML_MALFORMED',
    'reference to NUL',
  );
  t.equal(
    code(t, () => parse('<R>a & b</R>')),
    'OQS_XML_MALFORMED',
    'bare ampersand',
  );
  t.equal(
    code(t, () => parse('<R>text only</R>')),
    'OQS_XML_MALFORMED',
    'root must hold elements',
  );
  t.equal(
    code(t, () => parse('<?xml version="1.1"?><R/>')),
    'OQS_XML_MALFORMED',
  );
  t.equal(
    code(t, () => parse(' <?xml version="1.0"?><R/>')),
    'OQS_XML_MALFORMED',
    'declaration not at the start',
  );
  t.strictSame(parse('<R/>').tree, {});
});

t.test('attributes are refused (the declaration is not an element)', async (t) => {
  const e = errorOf(t, () => parse('<R><A id="1">x</A></R>'));
  t.equal(e?.code, 'OQS_XML_MALFORMED');
  t.equal(e?.details.reason, 'attributes are not allowed');
  t.equal(
    code(t, () => parse('<R xmlns="urn:x"/>')),
    'OQS_XML_MALFORMED',
  );
  t.strictSame(parse(`<?xml version='1.0' encoding='utf-8' standalone='yes' ?><R><A>1</A></R>`).tree, { A: '1' });
});

t.test('hostile XML', async (t) => {
  t.equal(
    code(t, () => parse('<!DOCTYPE R><R/>')),
    'OQS_XML_FORBIDDEN',
    'DOCTYPE',
  );
  const laughs = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz>&lol3;</lolz>`;
  const e = errorOf(t, () => parse(laughs));
  t.equal(e?.code, 'OQS_XML_FORBIDDEN', 'billion laughs');
  t.equal(e?.details.line, 2);
  t.equal(
    code(t, () => parse('<?xml version="1.0"?><!DOCTYPE R [<!ENTITY x SYSTEM "file:///etc/passwd">]><R>&x;</R>')),
    'OQS_XML_FORBIDDEN',
    'external entity',
  );
  t.equal(
    code(t, () => parse('<R><!ENTITY x "y"></R>')),
    'OQS_XML_FORBIDDEN',
    'entity declaration in content',
  );
  t.equal(
    code(t, () => parse('<R><A>&nbsp;</A></R>')),
    'OQS_XML_FORBIDDEN',
    'unknown entity',
  );
  t.equal(
    code(t, () => parse('<R><A>&x;</A></R>')),
    'OQS_XML_FORBIDDEN',
  );
  t.equal(
    code(t, () => parse('<?xml-stylesheet href="x"?><R/>')),
    'OQS_XML_FORBIDDEN',
    'processing instruction',
  );
  t.equal(
    code(t, () => parse('<R><?php echo 1 ?></R>')),
    'OQS_XML_FORBIDDEN',
  );
  t.equal(
    code(t, () => parse('<R><__proto__>x</__proto__></R>')),
    'OQS_XML_FORBIDDEN',
    'prototype pollution name',
  );
  t.equal(({} as Record<string, unknown>).x, undefined);
});

t.test('limits', async (t) => {
  const big = u8(`<R><A>${'x'.repeat(2000)}</A></R>`);
  const e = errorOf(t, () => parse(big, { maxBytes: 1000 }));
  t.equal(e?.code, 'OQS_XML_TOO_LARGE');
  t.equal(e?.details.reason, 'bytes');
  t.equal(
    code(t, () => parse(Buffer.alloc(4 * 1024 * 1024 + 1, 0x20))),
    'OQS_XML_TOO_LARGE',
    'default 4 MiB checked before decoding',
  );
  t.ok(parse(big, { maxBytes: big.length }), 'exactly at the limit is fine');

  const deep = (n: number) => '<a>'.repeat(n) + '</a>'.repeat(n);
  t.ok(parse(deep(32)), 'depth 32 is the default limit');
  t.equal(
    code(t, () => parse(deep(33))),
    'OQS_XML_TOO_DEEP',
  );
  t.equal(
    code(t, () => parse(deep(5), { maxDepth: 4 })),
    'OQS_XML_TOO_DEEP',
  );
  const veryDeep = parse(deep(200_000), { maxBytes: 10_000_000, maxDepth: 1_000_000, maxElements: 1_000_000 });
  t.equal(veryDeep.root, 'a', 'the reader is iterative: 200 000 levels do not overflow the stack');

  const many = `<R>${'<a/>'.repeat(100)}</R>`;
  t.equal(
    code(t, () => parse(many, { maxElements: 100 })),
    'OQS_XML_TOO_LARGE',
  );
  t.equal((parse(many, { maxElements: 101 }).tree.a as string[]).length, 100);
});

t.test('encodings', async (t) => {
  const names = '①﨑髙ﾃｽﾄ　～∥';
  for (const label of ['Shift_JIS', 'shift_jis', 'SJIS', 'Windows-31J', 'cp932']) {
    const doc = parse(sjis(`<?xml version="1.0" encoding="${label}"?><R><N>${names}</N></R>`));
    t.equal(doc.encoding, 'Shift_JIS', label);
    t.equal(doc.tree.N, names, `${label}: NEC/IBM extensions decode`);
  }
  // the raw codes: ① 8740 (NEC row 13), 﨑 FAB1 (IBM), 髙 FBFC (IBM) and EEE0 (NEC-selected IBM)
  t.equal(
    parse(
      Buffer.concat([
        u8('<?xml version="1.0" encoding="Shift_JIS"?><R><N>'),
        Buffer.from([0x87, 0x40, 0xfa, 0xb1, 0xfb, 0xfc, 0xee, 0xe0]),
        u8('</N></R>'),
      ]),
    ).tree.N,
    '①﨑髙髙',
  );
  // user-defined area F040 decodes to U+E000, but cannot be written back (see writer test)
  t.equal(
    parse(
      Buffer.concat([
        u8('<?xml version="1.0" encoding="Shift_JIS"?><R><N>'),
        Buffer.from([0xf0, 0x40]),
        u8('</N></R>'),
      ]),
    ).tree.N,
    '\uE000',
  );

  t.equal(
    code(t, () => parse('<?xml version="1.0" encoding="EUC-JP"?><R/>')),
    'OQS_ENCODING_UNSUPPORTED',
  );
  t.equal(
    code(t, () => parse('<?xml version="1.0" encoding="UTF-16"?><R/>')),
    'OQS_ENCODING_UNSUPPORTED',
  );
  t.equal(
    code(t, () => parse(Buffer.from([0xff, 0xfe, 0x3c, 0x00]))),
    'OQS_ENCODING_UNSUPPORTED',
    'UTF-16 BOM',
  );
  t.equal(
    code(t, () => parse(Buffer.from([0x3c, 0x52, 0x3e, 0xc3, 0x28, 0x3c, 0x2f, 0x52, 0x3e]))),
    'OQS_ENCODING_MISMATCH',
    'invalid UTF-8',
  );
  t.equal(
    code(t, () => parse(Buffer.concat([u8('<R><A>'), Buffer.from([0xed, 0xa0, 0x80]), u8('</A></R>')]))),
    'OQS_ENCODING_MISMATCH',
    'UTF-8 encoded surrogate',
  );
  t.equal(
    code(t, () => parse(Buffer.concat([u8(DECL_SJIS + '<R><A>'), Buffer.from([0x81]), u8('</A></R>')]))),
    'OQS_ENCODING_MISMATCH',
    'broken Shift_JIS',
  );
  t.equal(
    code(t, () => parse(sjis('<R><N>テスト</N></R>'))),
    'OQS_ENCODING_MISMATCH',
    'Shift_JIS bytes without a declaration are read as UTF-8',
  );
  const bom = parse(
    Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), u8('<?xml version="1.0" encoding="UTF-8"?><R><N>髙</N></R>')]),
  );
  t.equal(bom.tree.N, '髙', 'UTF-8 BOM accepted');
  t.equal(
    code(t, () => parse(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), u8(DECL_SJIS + '<R/>')]))),
    'OQS_ENCODING_MISMATCH',
    'BOM vs Shift_JIS',
  );
  t.ok(parse(new Uint8Array(u8('<R><A>1</A></R>'))), 'plain Uint8Array input');
});

t.test('writer', async (t) => {
  const tree: XmlTree = { H: { A: '  139998', B: '', C: ['1', '2'] }, T: 'a&b<c>d' };
  const utf = serializeXmlDocument('XmlMsg', tree, 'UTF-8');
  t.ok(utf.toString('utf8').startsWith('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<XmlMsg>'));
  t.match(utf.toString('utf8'), '<T>a&amp;b&lt;c&gt;d</T>');
  t.strictSame(parse(utf).tree, tree);
  const s = serializeXmlDocument('XmlMsg', { N: '①﨑髙テスト　太郎' }, 'Shift_JIS');
  t.ok(s.toString('latin1').startsWith('<?xml version="1.0" encoding="Shift_JIS" standalone="no"?>'));
  t.ok(s.includes(Buffer.from([0x87, 0x40])), '① written as its cp932 code');
  t.strictSame(parse(s).tree, { N: '①﨑髙テスト　太郎' });

  // UTF-8 keeps what Shift_JIS cannot hold: IVS, private use, astral
  const ivs = '葛\u{E0100}城　\uE000𠮷';
  t.strictSame(parse(serializeXmlDocument('R', { N: ivs }, 'UTF-8')).tree, { N: ivs });
  for (const [ch, label] of [
    ['\u{E0100}', 'IVS selector'],
    ['\uE000', 'private use (decodes from F040 but iconv-lite will not encode it)'],
    ['¥', 'U+00A5 (iconv-lite would write 0x5C)'],
    ['𠮷', 'astral kanji'],
    ['〜', 'U+301C WAVE DASH (cp932 has only U+FF5E)'],
  ] as const) {
    const e = errorOf(t, () => serializeXmlDocument('R', { X: { Name: `テスト${ch}` } }, 'Shift_JIS'));
    t.equal(e?.code, 'OQS_ENCODING_UNREPRESENTABLE', label);
    t.equal(e?.details.path, 'X/Name', `${label}: path`);
    t.equal(e?.details.index, 3, `${label}: index`);
    t.notMatch(e?.message ?? '', /テスト/, 'message has no personal text');
  }
  t.equal(
    code(t, () => serializeXmlDocument('R', { X: 'a\u0001' }, 'UTF-8')),
    'OQS_ENCODING_UNREPRESENTABLE',
    'control char',
  );
  t.equal(
    code(t, () => serializeXmlDocument('R', { X: 'a\uD800' }, 'UTF-8')),
    'OQS_ENCODING_UNREPRESENTABLE',
    'lone surrogate',
  );
  t.equal(
    code(t, () => serializeXmlDocument('R', { 'bad name': 'x' }, 'UTF-8')),
    'OQS_MESSAGE_INVALID',
  );
  t.equal(
    code(t, () => serializeXmlDocument('R', { X: 1 } as unknown as XmlTree, 'UTF-8')),
    'OQS_MESSAGE_INVALID',
  );
  const cyclic: XmlTree = {};
  cyclic.self = cyclic;
  t.equal(
    code(t, () => serializeXmlDocument('R', cyclic, 'UTF-8')),
    'OQS_XML_TOO_DEEP',
    'a cycle cannot hang the writer',
  );
});

t.test('every prefix of a valid document gives a typed error', async (t) => {
  const full = readFileSync(new URL('../fixtures/oqs/req-10.1.sjis.xml', import.meta.url));
  t.ok(parse(full), 'the whole document parses');
  const end = full.lastIndexOf('>') + 1; // only trailing whitespace follows the root's end tag
  t.ok(parse(full.subarray(0, end)));
  let typed = 0;
  for (let n = 0; n < end; n++) {
    try {
      parse(full.subarray(0, n));
      t.fail(`prefix of ${n} bytes parsed`);
    } catch (e) {
      if (e instanceof OqsError) typed++;
      else t.fail(`prefix ${n}: ${String(e)}`);
    }
  }
  t.equal(typed, end);
});

t.test('fuzz: any input parses or throws OqsError', async (t) => {
  const seeds = [
    '<R><A>1</A></R>',
    '<?xml version="1.0" encoding="Shift_JIS"?><R><A>x</A></R>',
    '<R><![CDATA[x]]><!--c--></R>',
    '<!DOCTYPE x><R>&amp;&#x41;</R>',
  ];
  const check = (buf: Uint8Array): boolean => {
    try {
      const doc = parseXmlDocument(buf, { maxBytes: 4096 });
      return typeof doc.root === 'string' && typeof doc.tree === 'object';
    } catch (e) {
      return e instanceof OqsError;
    }
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), check), { numRuns: 2000 });
  fc.assert(
    fc.property(
      fc.string({
        unit: fc.constantFrom(
          '<',
          '>',
          '/',
          '!',
          '?',
          '&',
          ';',
          '#',
          'x',
          'a',
          'R',
          ' ',
          '"',
          '=',
          '[',
          ']',
          '-',
          'CDATA',
          '\r',
          '\u3000',
          '髙',
        ),
        maxLength: 80,
      }),
      (s) => check(u8(s)),
    ),
    { numRuns: 2000 },
  );
  // mutations of valid documents
  fc.assert(
    fc.property(fc.constantFrom(...seeds), fc.nat(), fc.integer({ min: 0, max: 255 }), (seed, at, byte) => {
      const b = u8(seed);
      b[at % b.length] = byte;
      return check(b) && check(b.subarray(0, at % b.length));
    }),
    { numRuns: 2000 },
  );
  t.pass('no crash, no foreign exception');
});
