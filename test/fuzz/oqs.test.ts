// Fuzzing the OQS codecs with what central or the file-exchange folder could send: arbitrary bytes,
// mutated real documents, hostile markup, deep nesting, and arbitrary JSON for the Web API form.
// Property: a decoder returns, or throws an OqsError with a known code — nothing else, never slowly.
import t from 'tap';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import {
  OqsError,
  decodeBatchFetchJson,
  decodeBatchFetchXml,
  decodeBatchReceiptJson,
  decodeBatchReceiptXml,
  decodeBatchResultJson,
  decodeBatchResultXml,
  decodeBatchSubmitJson,
  decodeBatchSubmitXml,
  decodeRequestJson,
  decodeRequestXml,
  decodeResponseJson,
  decodeResponseXml,
  encodeResponseJson,
  fromJsonForm,
  parseXmlDocument,
} from '../../src/oqs/index.js';
import { fuzzParams, mutatedBytes, typedOnly } from '../helpers/fuzz.js';

const OQS_CODES = [
  'OQS_XML_TOO_LARGE',
  'OQS_XML_MALFORMED',
  'OQS_XML_FORBIDDEN',
  'OQS_XML_TOO_DEEP',
  'OQS_ENCODING_UNSUPPORTED',
  'OQS_ENCODING_MISMATCH',
  'OQS_ENCODING_UNREPRESENTABLE',
  'OQS_MESSAGE_INVALID',
] as const;

const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/oqs/${name}`, import.meta.url));
const REQUESTS = [fixture('req-10.1.xml'), fixture('req-10.1.sjis.xml')];
const RESPONSES = [fixture('res-10.2.xml'), fixture('res-10.3-face.xml')];
// Batch inquiry (一括照会): the file-exchange request and central's receipt, in the spec's shape.
const SEARCH =
  '<QualificationConfirmSearchInfo><InsurerNumber>06139992</InsurerNumber><InsuredCardSymbol>テスト</InsuredCardSymbol>' +
  '<InsuredIdentificationNumber>12345</InsuredIdentificationNumber><InsuredBranchNumber>00</InsuredBranchNumber><Birthdate>19800401</Birthdate>' +
  '<LimitApplicationCertificateRelatedConsFlg>0</LimitApplicationCertificateRelatedConsFlg></QualificationConfirmSearchInfo>';
const BATCH = [
  `<?xml version="1.0" encoding="UTF-8"?><XmlMsg><MessageHeader><QualificationConfirmationDate>20250402</QualificationConfirmationDate>
<MedicalInstitutionCode>1319999994</MedicalInstitutionCode><ArbitraryFileIdentifier>B1</ArbitraryFileIdentifier></MessageHeader>
<MessageBody>${SEARCH}${SEARCH}</MessageBody></XmlMsg>`,
  `<?xml version="1.0" encoding="UTF-8"?><XmlMsg><MessageHeader><ProcessExecutionTime>20250401180000</ProcessExecutionTime>
<MedicalInstitutionCode>1319999994</MedicalInstitutionCode><ArbitraryFileIdentifier>B1</ArbitraryFileIdentifier><SegmentOfResult>1</SegmentOfResult>
<CharacterCodeIdentifier>0</CharacterCodeIdentifier></MessageHeader><MessageBody><ReceptionNumber>R0000000001</ReceptionNumber>
<ReceptionDateTime>20250401180000</ReceptionDateTime></MessageBody></XmlMsg>`,
  `<XmlMsg><MessageHeader><MedicalInstitutionCode>1319999994</MedicalInstitutionCode></MessageHeader>
<MessageBody><ReceptionNumber>R0000000001</ReceptionNumber></MessageBody></XmlMsg>`,
].map((x) => Buffer.from(x, 'utf8'));

const XML_DECODERS: Array<(b: Buffer) => unknown> = [
  parseXmlDocument,
  decodeRequestXml,
  decodeResponseXml,
  decodeBatchSubmitXml,
  decodeBatchReceiptXml,
  decodeBatchFetchXml,
  decodeBatchResultXml,
];
const JSON_DECODERS: Array<(j: unknown) => unknown> = [
  fromJsonForm,
  decodeRequestJson,
  decodeResponseJson,
  decodeBatchSubmitJson,
  decodeBatchReceiptJson,
  decodeBatchFetchJson,
  decodeBatchResultJson,
];

const HOSTILE = [
  '<!DOCTYPE XmlMsg [<!ENTITY x "y">]>',
  '<!ENTITY a SYSTEM "file:///etc/passwd">',
  '&x;',
  '&#0;',
  '&#x110000;',
  '&#xD800;',
  '&amp',
  '&',
  '<?php x?>',
  '<?xml version="1.0"?>',
  '<![CDATA[',
  ']]>',
  '<![CDATA[x]]>',
  '<a:b>',
  ' id="1"',
  '<__proto__>',
  '</__proto__>',
  '<constructor>x</constructor>',
  '<toString/>',
  '<hasOwnProperty>1</hasOwnProperty>',
  '<valueOf></valueOf>',
  '</XmlMsg>',
  '<XmlMsg>',
  '\uFEFF',
  '\u0000',
  '\u0085',
  '\uFFFE',
  '髙﨑',
  '<!--',
  '-->',
  '<!-- -- -->',
  '<ResultList/>',
  '<ResultList><ResultOfQualificationConfirmation/></ResultList>',
  '<MessageBody/>',
  '<MessageHeader></MessageHeader>',
  '<CharacterCodeIdentifier>1</CharacterCodeIdentifier>',
  '<CharacterCodeIdentifier>9</CharacterCodeIdentifier>',
  '<SegmentOfResult>2</SegmentOfResult>',
  '<ProcessingResultStatus>1</ProcessingResultStatus>',
  '<InsurerNumber>x</InsurerNumber>',
  '<Birthdate>99999999</Birthdate>',
  '<a><a><a><a><a><a><a><a>',
  '</a></a></a></a>',
  '\r\n',
  '\r',
  '<?xml version="1.0" encoding="UTF-16"?>',
  '<?xml version="1.0" encoding="EUC-JP"?>',
  '<?xml version="1.1"?>',
];

const decodeAll = (b: Buffer) => () => {
  // Every entry point that takes these bytes from outside, one after the other.
  for (const d of XML_DECODERS) typedOnly(() => d(b), OqsError, OQS_CODES);
};

t.test('arbitrary bytes', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2048 }), (u) => {
      decodeAll(Buffer.from(u))();
    }),
    fuzzParams(),
  );
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 512 }), (s) => {
      decodeAll(Buffer.from(s, 'utf8'))();
    }),
    fuzzParams(),
  );
  t.pass();
});

t.test('mutated central answers and file-exchange requests', async (t) => {
  fc.assert(
    fc.property(mutatedBytes([...RESPONSES, ...REQUESTS, ...BATCH], HOSTILE), (b) => {
      decodeAll(b)();
    }),
    fuzzParams(2),
  );
  t.pass();
});

/**
 * Well-formed documents with wrong values: a leaf's text replaced, a leaf removed or repeated. These
 * get past the XML reader and exercise the message layer's validation.
 */
function mutatedLeaves(seeds: readonly Buffer[]): fc.Arbitrary<Buffer> {
  const texts = seeds.map((b) => b.toString('utf8'));
  const value = fc.oneof(
    fc.constantFrom(
      '',
      ' ',
      '0',
      '1',
      '2',
      '3',
      '9',
      '00',
      '20250431',
      '99999999',
      '  139998',
      '06139992',
      '１２',
      'テスト',
      '髙',
      '&amp;',
      '&lt;x&gt;',
      '<![CDATA[1]]>',
    ),
    fc.string({ maxLength: 20 }).map((x) => x.replace(/[<&\u0000-\u001f\ud800-\udfff\ufffe\uffff]/g, '')),
    fc.integer({ min: 1, max: 5000 }).map((n) => '9'.repeat(n)),
  );
  const op = fc.record({ which: fc.nat(), kind: fc.constantFrom('set', 'drop', 'dup', 'wrap'), value });
  return fc.tuple(fc.nat({ max: texts.length - 1 }), fc.array(op, { minLength: 1, maxLength: 4 })).map(([i, ops]) => {
    let x = texts[i]!;
    for (const o of ops) {
      const leaves = [...x.matchAll(/<([A-Za-z][A-Za-z0-9]*)>([^<]*)<\/\1>\n?/g)];
      if (leaves.length === 0) break;
      const m = leaves[o.which % leaves.length]!;
      const [whole, name] = m;
      const at = m.index;
      const repl =
        o.kind === 'set'
          ? `<${name}>${o.value}</${name}>`
          : o.kind === 'drop'
            ? ''
            : o.kind === 'dup'
              ? whole + whole
              : `<${name}><${name}>${o.value}</${name}></${name}>`;
      x = x.slice(0, at) + repl + x.slice(at + whole.length);
    }
    return Buffer.from(x, 'utf8');
  });
}

t.test('well-formed documents with wrong values, missing or repeated elements', async (t) => {
  const utf8 = [...RESPONSES, REQUESTS[0]!, ...BATCH];
  const outcomes = new Map<string, number>();
  fc.assert(
    fc.property(mutatedLeaves(utf8), (b) => {
      for (const d of XML_DECODERS.slice(1)) {
        const r = typedOnly(() => d(b), OqsError, OQS_CODES);
        const k = r.ok ? 'ok' : r.code!;
        outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
      }
    }),
    fuzzParams(2),
  );
  t.ok(
    (outcomes.get('OQS_MESSAGE_INVALID') ?? 0) > 0 && (outcomes.get('ok') ?? 0) > 0,
    `reaches the message layer: ${JSON.stringify([...outcomes])}`,
  );
});

t.test('well-formed trees of the wrong shape', async (t) => {
  // Valid XML whose elements are in the wrong place, repeated, empty, or nested where text belongs.
  const name = fc.constantFrom(
    'MessageHeader',
    'MessageBody',
    'ResultList',
    'ResultOfQualificationConfirmation',
    'CharacterCodeIdentifier',
    'SegmentOfResult',
    'ProcessingResultStatus',
    'QualificationValidity',
    'InsurerNumber',
    'Birthdate',
    'Name',
    'constructor',
    'toString',
    'X',
  );
  const leaf = fc.constantFrom('', '0', '1', '2', '9', '20250401', '  139998', 'テスト', '&amp;', 'x'.repeat(300));
  const tree = fc.letrec<{ node: string }>((tie) => ({
    node: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf,
      fc.tuple(name, fc.array(tie('node'), { maxLength: 4 })).map(([n, kids]) => `<${n}>${kids.join('')}</${n}>`),
    ),
  })).node;
  const doc = fc
    .array(
      fc.tuple(name, tree).map(([n, v]) => `<${n}>${v}</${n}>`),
      { maxLength: 5 },
    )
    .map((parts) => Buffer.from(`<?xml version="1.0" encoding="UTF-8"?><XmlMsg>${parts.join('')}</XmlMsg>`));
  fc.assert(
    fc.property(doc, (b) => {
      decodeAll(b)();
    }),
    fuzzParams(2),
  );
  t.pass();
});

t.test('size, depth and element bombs stay bounded', async (t) => {
  const bomb = fc.oneof(
    fc.integer({ min: 1, max: 5000 }).map((n) => `<XmlMsg>${'<a>'.repeat(n)}${'</a>'.repeat(n)}</XmlMsg>`),
    fc.integer({ min: 1, max: 150_000 }).map((n) => `<XmlMsg>${'<a/>'.repeat(n)}</XmlMsg>`),
    fc.integer({ min: 1, max: 100_000 }).map((n) => `<XmlMsg><a>${'&amp;'.repeat(n)}</a></XmlMsg>`),
    fc.integer({ min: 1, max: 50_000 }).map((n) => `<XmlMsg><!--${'-'.repeat(n)}</XmlMsg>`),
    fc.integer({ min: 1, max: 50_000 }).map((n) => `<XmlMsg>${'<'.repeat(n)}`),
  );
  fc.assert(
    fc.property(bomb, (s) => {
      decodeAll(Buffer.from(s))();
    }),
    fuzzParams(0.1),
  );
  // Over the byte limit: refused before parsing.
  t.equal(
    typedOnly(() => parseXmlDocument(Buffer.alloc(4 * 1024 * 1024 + 1, 0x20)), OqsError, OQS_CODES).code,
    'OQS_XML_TOO_LARGE',
  );
});

const ANY = fc.anything({
  maxDepth: 4,
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
  withUnicodeString: true,
});

/** The valid JSON form with one value somewhere replaced by anything. */
function mutatedJson(): fc.Arbitrary<unknown> {
  const base = encodeResponseJson(decodeResponseXml(RESPONSES[0]!));
  return fc.tuple(fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), ANY).map(([path, value]) => {
    const root = structuredClone(base) as Record<string, unknown>;
    let node: unknown = root;
    for (let i = 0; i < path.length - 1; i++) {
      if (typeof node !== 'object' || node === null) break;
      const keys = Object.keys(node);
      if (keys.length === 0) break;
      node = (node as Record<string, unknown>)[keys[path[i]! % keys.length]!];
    }
    if (typeof node === 'object' && node !== null) {
      const keys = Object.keys(node);
      if (keys.length > 0) (node as Record<string, unknown>)[keys[path[path.length - 1]! % keys.length]!] = value;
    }
    return root;
  });
}

t.test('Web API JSON from central: arbitrary values and mutated answers', async (t) => {
  const decode = (j: unknown) => {
    for (const d of JSON_DECODERS) typedOnly(() => d(j), OqsError, OQS_CODES);
  };
  fc.assert(fc.property(ANY, decode), fuzzParams());
  fc.assert(
    fc.property(
      ANY.map((v) => ({ XmlMsg: v })),
      decode,
    ),
    fuzzParams(),
  );
  fc.assert(fc.property(mutatedJson(), decode), fuzzParams(2));
  fc.assert(
    fc.property(fc.json({ maxDepth: 6 }), (s) => decode(JSON.parse(s))),
    fuzzParams(),
  );
  // Prototype keys as JSON.parse creates them (own properties), never a polluted Object.prototype.
  for (const s of [
    '{"XmlMsg":{"__proto__":{"polluted":"1"}}}',
    '{"XmlMsg":{"constructor":{"prototype":{"polluted":"1"}}}}',
    '{"__proto__":{"XmlMsg":{}}}',
  ]) {
    decode(JSON.parse(s));
  }
  t.equal(({} as Record<string, unknown>)['polluted'], undefined, 'Object.prototype untouched');
  // Deeply nested JSON: refused by depth, not by a stack overflow.
  let deep: unknown = 'x';
  for (let i = 0; i < 100_000; i++) deep = { A: deep };
  t.equal(typedOnly(() => decodeResponseJson({ XmlMsg: deep }), OqsError, OQS_CODES).code, 'OQS_MESSAGE_INVALID');
});
