/**
 * A test receipt computer (レセコン) that knows only the official file exchange, written from
 * shared/spec/oqs-messages.md (§1, §2, §5, §7, §8, §10) and nothing of the gateway's codecs: its
 * requests are string templates, its Shift_JIS is its own iconv-lite call, its answers are read with
 * a few regular expressions. It behaves as the spec says clinic software does: 12-digit
 * `YYYYMMDD` + counter names with a persisted counter, atomic drop (temp name, then rename into
 * req), res watched with events and a scan, an answer accepted after two identical reads, the
 * answer's declaration checked against CharacterCodeIdentifier, res files deleted once read.
 */
import iconv from 'iconv-lite';
import { existsSync, readFileSync, renameSync, rmSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type Encoding = 'UTF-8' | 'Shift_JIS';

export interface Query {
  /** digits as printed: 6 (国保) or 8; sent right-aligned in 8 with spaces (§1) */
  insurerNumber: string;
  symbol?: string;
  number: string;
  branch?: string;
  birthdate: string;
  limitConsent?: '0' | '1';
  arbitraryId?: string;
}

export interface Answer {
  file: string;
  /** from the XML declaration */
  declared: Encoding;
  header: Record<string, string>;
  /** body text fields at the top of MessageBody (ProcessingResultStatus, QualificationValidity, …) */
  body: Record<string, string>;
  /** each ResultOfQualificationConfirmation's simple fields */
  results: Array<Record<string, string>>;
  /** each BulkConfirmUnit: its simple fields, its echo's ArbitraryIdentifier and its results */
  units: Array<{ fields: Record<string, string>; arbitraryId?: string; results: Array<Record<string, string>> }>;
  text: string;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const unesc = (s: string): string =>
  s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#13;/g, '\r')
    .replace(/&amp;/g, '&');

function searchInfo(q: Query): string {
  const lines = [
    `   <InsurerNumber>${q.insurerNumber.padStart(8, ' ')}</InsurerNumber>`,
    q.symbol ? `   <InsuredCardSymbol>${esc(q.symbol)}</InsuredCardSymbol>` : '',
    `   <InsuredIdentificationNumber>${esc(q.number)}</InsuredIdentificationNumber>`,
    q.branch ? `   <InsuredBranchNumber>${q.branch}</InsuredBranchNumber>` : '',
    `   <Birthdate>${q.birthdate}</Birthdate>`,
    `   <LimitApplicationCertificateRelatedConsFlg>${q.limitConsent ?? '0'}</LimitApplicationCertificateRelatedConsFlg>`,
    q.arbitraryId ? `   <ArbitraryIdentifier>${esc(q.arbitraryId)}</ArbitraryIdentifier>` : '',
  ];
  return `  <QualificationConfirmSearchInfo>\n${lines.filter(Boolean).join('\n')}\n  </QualificationConfirmSearchInfo>`;
}

function encode(xml: string, encoding: Encoding): Buffer {
  if (encoding === 'UTF-8') return Buffer.from(xml, 'utf8');
  // §1: never a character reference for what Shift_JIS cannot hold; refuse instead.
  const bytes = iconv.encode(xml, 'Shift_JIS');
  if (iconv.decode(bytes, 'Shift_JIS') !== xml)
    throw new Error('the request holds a character Shift_JIS cannot encode');
  return bytes;
}

const declaration = (e: Encoding): string => `<?xml version="1.0" encoding="${e}" standalone="no"?>\n`;

/** §10.1 */
export function singleRequestXml(o: {
  date: string;
  institutionCode: string;
  fileId: string;
  query: Query;
  encoding: Encoding;
}): Buffer {
  return encode(
    `${declaration(o.encoding)}<XmlMsg>
 <MessageHeader>
  <QualificationConfirmationDate>${o.date}</QualificationConfirmationDate>
  <MedicalInstitutionCode>${o.institutionCode}</MedicalInstitutionCode>
  <ArbitraryFileIdentifier>${o.fileId}</ArbitraryFileIdentifier>
 </MessageHeader>
 <MessageBody>
${searchInfo(o.query)}
 </MessageBody>
</XmlMsg>
`,
    o.encoding,
  );
}

/** §5 step 1 / §10.4 */
export function batchSubmitXml(o: {
  date: string;
  institutionCode: string;
  fileId: string;
  entries: Query[];
  encoding: Encoding;
}): Buffer {
  return encode(
    `${declaration(o.encoding)}<XmlMsg><MessageHeader><QualificationConfirmationDate>${o.date}</QualificationConfirmationDate>
<MedicalInstitutionCode>${o.institutionCode}</MedicalInstitutionCode><ArbitraryFileIdentifier>${o.fileId}</ArbitraryFileIdentifier></MessageHeader>
<MessageBody>
${o.entries.map(searchInfo).join('\n')}
</MessageBody></XmlMsg>
`,
    o.encoding,
  );
}

/** §5 step 3 */
export function batchFetchXml(o: { institutionCode: string; receptionNumber: string; encoding: Encoding }): Buffer {
  return encode(
    `${declaration(o.encoding)}<XmlMsg><MessageHeader><MedicalInstitutionCode>${o.institutionCode}</MedicalInstitutionCode></MessageHeader>
<MessageBody><ReceptionNumber>${o.receptionNumber}</ReceptionNumber></MessageBody></XmlMsg>
`,
    o.encoding,
  );
}

/** The direct text children of an element's content (nested blocks skipped). */
function simpleFields(xml: string): Record<string, string> {
  const out: Record<string, string> = {};
  let rest = xml;
  for (;;) {
    const m = /<([A-Za-z][A-Za-z0-9]*)(\/?)>/.exec(rest);
    if (m === null) return out;
    const name = m[1]!;
    if (m[2] === '/') {
      out[name] ??= '';
      rest = rest.slice(m.index + m[0].length);
      continue;
    }
    const close = rest.indexOf(`</${name}>`, m.index);
    if (close === -1) return out;
    const inner = rest.slice(m.index + m[0].length, close);
    if (!inner.includes('<')) out[name] ??= unesc(inner);
    rest = rest.slice(close + name.length + 3);
  }
}

const blocks = (xml: string, name: string): string[] =>
  [...xml.matchAll(new RegExp(`<${name}>([\\s\\S]*?)</${name}>`, 'g'))].map((m) => m[1]!);

/** Reads an answer file the way §1 and §8 say: decode by the declaration, insist CharacterCodeIdentifier agrees. */
export function parseAnswer(file: string, bytes: Buffer): Answer {
  const decl = /^<\?xml[^>]*encoding="([^"]+)"/.exec(bytes.subarray(0, 200).toString('latin1'));
  const declared: Encoding = decl && /shift_jis/i.test(decl[1]!) ? 'Shift_JIS' : 'UTF-8';
  const text = declared === 'Shift_JIS' ? iconv.decode(bytes, 'Shift_JIS') : bytes.toString('utf8');
  if (text.includes('\uFFFD')) throw new Error(`${file}: bytes do not decode as ${declared}`);
  const header = simpleFields(blocks(text, 'MessageHeader')[0] ?? '');
  const code = header.CharacterCodeIdentifier;
  if (code !== (declared === 'Shift_JIS' ? '1' : '0'))
    throw new Error(`${file}: declared ${declared} but CharacterCodeIdentifier is ${code}`);
  const bodyXml = /<MessageBody>([\s\S]*)<\/MessageBody>/.exec(text)?.[1] ?? '';
  const withoutUnits = bodyXml.replace(/<BulkConfirmUnit>[\s\S]*?<\/BulkConfirmUnit>/g, '');
  const results = (xml: string): Array<Record<string, string>> =>
    blocks(xml, 'ResultOfQualificationConfirmation').map(simpleFields);
  return {
    file,
    declared,
    header,
    text,
    body: simpleFields(
      withoutUnits
        .replace(/<ResultList>[\s\S]*?<\/ResultList>/g, '')
        .replace(/<QualificationConfirmSearchInfo>[\s\S]*?<\/QualificationConfirmSearchInfo>/g, ''),
    ),
    results: results(withoutUnits),
    units: blocks(bodyXml, 'BulkConfirmUnit').map((u) => {
      const arbitraryId = simpleFields(blocks(u, 'QualificationConfirmSearchInfo')[0] ?? '').ArbitraryIdentifier;
      return {
        fields: simpleFields(
          u
            .replace(/<ResultList>[\s\S]*?<\/ResultList>/g, '')
            .replace(/<ResultOfQualificationConfirmation>[\s\S]*?<\/ResultOfQualificationConfirmation>/g, '')
            .replace(/<QualificationConfirmSearchInfo>[\s\S]*?<\/QualificationConfirmSearchInfo>/g, ''),
        ),
        ...(arbitraryId ? { arbitraryId } : {}),
        results: results(u),
      };
    }),
  };
}

export class ReceiptComputer {
  /** names of every answer file this receipt computer has taken, in order */
  readonly taken: string[] = [];
  private readonly counterFile: string;

  constructor(
    private readonly o: {
      reqDir: string;
      resDir: string;
      stateDir: string;
      institutionCode: string;
      encoding: Encoding;
      today: string;
    },
  ) {
    this.counterFile = join(o.stateDir, `counter-${o.today}`);
  }

  /** §7: YYYYMMDD + a 4-digit daily counter, persisted, never reused. */
  nextSuffix(): string {
    const n = existsSync(this.counterFile) ? Number(readFileSync(this.counterFile, 'utf8')) + 1 : 1;
    writeFileSync(this.counterFile, String(n));
    return `${this.o.today}${String(n).padStart(4, '0')}`;
  }

  /** §7: build under a name that does not match *req_*.xml, then rename into req. */
  drop(name: string, bytes: Buffer): void {
    const tmp = join(this.o.reqDir, `${name}.writing`);
    writeFileSync(tmp, bytes);
    renameSync(tmp, join(this.o.reqDir, name));
  }

  /**
   * §7: res is watched with events and a 300 ms scan; the answer is accepted after two identical
   * consecutive reads, then deleted. Rejects after `timeoutMs` (then, per §7, do not resend).
   */
  async take(resName: string, timeoutMs = 20_000): Promise<Answer> {
    const path = join(this.o.resDir, resName);
    let last: Buffer | undefined;
    const end = Date.now() + timeoutMs;
    let wake: (() => void) | undefined;
    const watcher = watch(this.o.resDir, () => wake?.());
    try {
      while (Date.now() < end) {
        let now: Buffer | undefined;
        try {
          now = readFileSync(path);
        } catch {
          now = undefined;
        }
        if (now !== undefined && last !== undefined && now.equals(last)) {
          rmSync(path);
          this.taken.push(resName);
          return parseAnswer(resName, now);
        }
        last = now;
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 300);
        });
      }
    } finally {
      watcher.close();
    }
    throw new Error(`no ${resName} within ${timeoutMs} ms`);
  }

  async singleCheck(query: Query, date = this.o.today): Promise<Answer> {
    const suffix = this.nextSuffix();
    const fileId = `RC${suffix}`;
    this.drop(
      `OQSsiquc01req_${suffix}.xml`,
      singleRequestXml({ date, institutionCode: this.o.institutionCode, fileId, query, encoding: this.o.encoding }),
    );
    const a = await this.take(`OQSsiquc01res_${suffix}.xml`);
    // §7: still check the institution and the file id inside.
    if (a.header.MedicalInstitutionCode !== this.o.institutionCode)
      throw new Error(`${a.file}: another institution's answer`);
    if (a.header.SegmentOfResult === '1' && a.header.ArbitraryFileIdentifier !== fileId)
      throw new Error(`${a.file}: file id ${a.header.ArbitraryFileIdentifier} is not ${fileId}`);
    return a;
  }

  /** §5: 01req → 01res (ReceptionNumber); 02req until SegmentOfResult is not 2 (処理中), each a new file. */
  async batch(
    entries: Query[],
    date = this.o.today,
    retryMs = 500,
  ): Promise<{ receipt: Answer; result: Answer; fetches: number }> {
    const suffix = this.nextSuffix();
    this.drop(
      `OQSmuquc01req_${suffix}.xml`,
      batchSubmitXml({
        date,
        institutionCode: this.o.institutionCode,
        fileId: `B${suffix}`,
        entries,
        encoding: this.o.encoding,
      }),
    );
    const receipt = await this.take(`OQSmuquc01res_${suffix}.xml`);
    const receptionNumber = /<ReceptionNumber>([^<]+)<\/ReceptionNumber>/.exec(receipt.text)?.[1];
    if (receipt.header.SegmentOfResult !== '1' || !receptionNumber) return { receipt, result: receipt, fetches: 0 };
    for (let fetches = 1; ; fetches++) {
      const s = this.nextSuffix();
      this.drop(
        `OQSmuquc02req_${s}.xml`,
        batchFetchXml({ institutionCode: this.o.institutionCode, receptionNumber, encoding: this.o.encoding }),
      );
      const result = await this.take(`OQSmuquc02res_${s}.xml`, 120_000);
      if (result.header.ReceptionNumber !== receptionNumber)
        throw new Error(`${result.file}: reception number ${result.header.ReceptionNumber} is not ${receptionNumber}`);
      if (result.header.SegmentOfResult !== '2') return { receipt, result, fetches };
      await new Promise((r) => setTimeout(r, retryMs));
    }
  }
}
