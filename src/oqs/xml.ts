import iconv from 'iconv-lite';
import { OqsError } from './errors.js';
import type { WireEncoding, XmlTree, XmlValue } from './types.js';

/**
 * A strict, small XML reader/writer for the XmlMsg vocabulary (elements and text only).
 * Written by hand so that the security posture is guaranteed rather than configured: no DTD,
 * no entities beyond the predefined five, no processing instructions, no attributes, explicit
 * size/depth/element limits, and an iterative (non-recursive) parser that is linear in the input.
 */

export interface XmlLimits {
  maxBytes: number;
  maxDepth: number;
  maxElements: number;
}

export const DEFAULT_XML_LIMITS: Readonly<XmlLimits> = Object.freeze({
  maxBytes: 4 * 1024 * 1024,
  maxDepth: 32,
  maxElements: 100_000,
});

/**
 * iconv-lite maps every Shift_JIS alias (Shift_JIS, sjis, cp932, windows-31j…) to one codec whose
 * table is the Windows-31J superset (NEC row 13 ①, NEC-selected and IBM extensions 﨑 髙,
 * user area F040–F9FC → U+E000…). We name it cp932 to say which table we rely on.
 */
const SJIS_CODEC = 'cp932';

const SJIS_NAMES = new Set(['shift_jis', 'sjis', 'windows-31j', 'cp932']);
const UTF8_NAMES = new Set(['utf-8', 'utf8']);

// Element names: ASCII XML names without namespaces (the XmlMsg vocabulary needs nothing more).
const NAME_RE = /^[A-Za-z_][A-Za-z0-9._-]*$/;
const NAME_AT = /[A-Za-z_][A-Za-z0-9._-]*/y;
// Characters XML 1.0 forbids anywhere (controls, unpaired surrogates, U+FFFE/U+FFFF).
const NON_XML_CHAR =
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const REF_AT = /&(?:#x([0-9A-Fa-f]{1,6})|#([0-9]{1,7})|([A-Za-z_][A-Za-z0-9._-]*));/y;
const PREDEFINED: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' };

export function isXmlName(name: string): boolean {
  return NAME_RE.test(name) && name !== '__proto__';
}

// ---------------------------------------------------------------------------------------------
// Reader

interface Frame {
  name: string;
  children: Array<[string, XmlValue]>;
  text: string;
  /** Offset of the first non-whitespace text, -1 when all text so far is whitespace. */
  textAt: number;
}

/** Line and column (1-based, UTF-16 units) of `offset` in `src`. Only computed on error. */
function lineCol(src: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, src.length);
  for (let i = src.indexOf('\n'); i !== -1 && i < end; i = src.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: end - lineStart + 1 };
}

function errAt(
  code: 'OQS_XML_MALFORMED' | 'OQS_XML_FORBIDDEN' | 'OQS_XML_TOO_DEEP' | 'OQS_XML_TOO_LARGE',
  src: string,
  offset: number,
  reason: string,
): OqsError {
  const { line, column } = lineCol(src, offset);
  return new OqsError(code, `XML ${reason} at line ${line}, column ${column}`, { details: { reason, line, column } });
}

function asBuffer(input: Buffer | Uint8Array): Buffer {
  return Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
}

interface Declaration {
  encoding: WireEncoding;
  declared: boolean;
}

/** Reads the XML declaration from the raw bytes (it is ASCII in every encoding we accept). */
function readDeclaration(bytes: Buffer, hasBom: boolean): Declaration {
  const start = hasBom ? 3 : 0;
  const head = bytes.subarray(start, start + 256).toString('latin1');
  if (!/^<\?xml[ \t\r\n]/.test(head)) return { encoding: 'UTF-8', declared: false };
  const end = head.indexOf('?>');
  const malformed = (reason: string): OqsError =>
    new OqsError('OQS_XML_MALFORMED', `XML declaration: ${reason}`, {
      details: { reason: `declaration ${reason}`, line: 1, column: 1 },
    });
  if (end === -1) throw malformed('unterminated');
  const decl = head.slice(0, end + 2);
  const m =
    /^<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(["'])([^"']*)\1(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(["'])([^"']*)\3)?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(["'])(yes|no)\5)?[ \t\r\n]*\?>$/.exec(
      decl,
    );
  if (m === null) throw malformed('syntax');
  if (m[2] !== '1.0') throw malformed('version must be 1.0');
  const name = m[4];
  if (name === undefined) return { encoding: 'UTF-8', declared: true };
  const lower = name.toLowerCase();
  if (UTF8_NAMES.has(lower)) return { encoding: 'UTF-8', declared: true };
  if (SJIS_NAMES.has(lower)) return { encoding: 'Shift_JIS', declared: true };
  // Echo the declared name only when it is short and harmless.
  const shown = /^[A-Za-z0-9._-]{1,40}$/.test(name) ? name : '(invalid)';
  throw new OqsError('OQS_ENCODING_UNSUPPORTED', `unsupported encoding ${shown}`, { details: { encoding: shown } });
}

/** The encoding a document's XML declaration names (UTF-8 without one), or undefined when it is unreadable or unsupported. */
export function declaredEncoding(input: Buffer | Uint8Array): WireEncoding | undefined {
  const raw = asBuffer(input);
  const hasBom = raw.length >= 3 && raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf;
  try {
    return readDeclaration(raw, hasBom).encoding;
  } catch {
    return undefined;
  }
}

function decodeText(bytes: Buffer, encoding: WireEncoding): string {
  if (encoding === 'UTF-8') {
    try {
      return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch (cause) {
      throw new OqsError('OQS_ENCODING_MISMATCH', 'bytes are not valid UTF-8', { details: { encoding }, cause });
    }
  }
  const text = iconv.decode(bytes, SJIS_CODEC);
  // iconv-lite substitutes U+FFFD for invalid sequences; no Shift_JIS code maps to U+FFFD itself.
  const bad = text.indexOf('\uFFFD');
  if (bad !== -1) {
    throw new OqsError('OQS_ENCODING_MISMATCH', 'bytes are not valid Shift_JIS', {
      details: { encoding, ...lineCol(text, bad) },
    });
  }
  return text;
}

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d;
}

function firstNonWs(s: string): number {
  for (let i = 0; i < s.length; i++) if (!isWs(s.charCodeAt(i))) return i;
  return -1;
}

function isXmlCharCode(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

/** Adds a child to the tree under construction; a repeated name becomes an array in document order. */
function addChild(obj: XmlTree, name: string, value: XmlValue): void {
  if (!Object.hasOwn(obj, name)) {
    obj[name] = value;
    return;
  }
  const prev = obj[name] as XmlValue;
  if (Array.isArray(prev)) prev.push(value);
  else obj[name] = [prev, value];
}

function closeFrame(f: Frame): XmlValue {
  if (f.children.length === 0) return f.text; // verbatim, never trimmed
  const obj: XmlTree = {};
  for (const [n, v] of f.children) addChild(obj, n, v);
  return obj;
}

/**
 * Parses an XmlMsg-style document. Returns the root element name, its content as a tree
 * (element → object, text-only element → its text verbatim, empty → '', repeats → array) and
 * the encoding the bytes were decoded with. Throws OqsError only.
 */
export function parseXmlDocument(
  input: Buffer | Uint8Array,
  limits?: Partial<XmlLimits>,
): { root: string; tree: XmlTree; encoding: WireEncoding } {
  const lim: XmlLimits = { ...DEFAULT_XML_LIMITS, ...limits };
  const raw = asBuffer(input);
  if (raw.length > lim.maxBytes) {
    throw new OqsError('OQS_XML_TOO_LARGE', `XML document exceeds ${lim.maxBytes} bytes`, {
      details: { reason: 'bytes', size: raw.length, maxBytes: lim.maxBytes },
    });
  }
  const hasBom = raw.length >= 3 && raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf;
  if (raw.length >= 2 && ((raw[0] === 0xfe && raw[1] === 0xff) || (raw[0] === 0xff && raw[1] === 0xfe))) {
    throw new OqsError('OQS_ENCODING_UNSUPPORTED', 'UTF-16 documents are not supported', {
      details: { encoding: 'UTF-16' },
    });
  }
  const decl = readDeclaration(raw, hasBom);
  if (hasBom && decl.encoding !== 'UTF-8') {
    throw new OqsError('OQS_ENCODING_MISMATCH', 'UTF-8 byte order mark on a document declared Shift_JIS', {
      details: { declared: decl.encoding },
    });
  }
  // XML end-of-line handling: CRLF and lone CR become LF before parsing.
  const src = decodeText(hasBom ? raw.subarray(3) : raw, decl.encoding).replace(/\r\n?/g, '\n');
  const badChar = NON_XML_CHAR.exec(src);
  if (badChar !== null) throw errAt('OQS_XML_MALFORMED', src, badChar.index, 'character not allowed in XML');
  const pos = decl.declared ? src.indexOf('?>') + 2 : 0;
  const { root, value } = parseBody(src, pos, lim);
  if (typeof value === 'string') {
    if (firstNonWs(value) !== -1)
      throw errAt('OQS_XML_MALFORMED', src, 0, 'root element must contain elements, not text');
    return { root, tree: {}, encoding: decl.encoding };
  }
  return { root, tree: value as XmlTree, encoding: decl.encoding };
}

/** The element grammar, after the declaration. Iterative: depth never touches the JS stack. */
function parseBody(src: string, start: number, lim: XmlLimits): { root: string; value: XmlValue } {
  return new BodyParser(src, start, lim).run();
}

/** The state of one parse: the position, the open elements, the root once closed. */
class BodyParser {
  private readonly stack: Frame[] = [];
  private root: { root: string; value: XmlValue } | undefined;
  private elements = 0;
  private readonly len: number;
  private readonly textEnd = /[<&]/g;

  constructor(
    private readonly src: string,
    private pos: number,
    private readonly lim: XmlLimits,
  ) {
    this.len = this.src.length;
  }

  private fail(reason: string, at = this.pos): OqsError {
    return errAt('OQS_XML_MALFORMED', this.src, at, reason);
  }

  private appendText(f: Frame, text: string, at: number): void {
    if (text === '') return;
    if (f.textAt === -1) {
      const i = firstNonWs(text);
      if (i !== -1) {
        f.textAt = at + i;
        if (f.children.length > 0) throw this.fail('text mixed with child elements', f.textAt);
      }
    }
    f.text += text;
  }

  /** `<!--` at pos: skips the comment. */
  private skipComment(): void {
    const end = this.src.indexOf('-->', this.pos + 4);
    if (end === -1) throw this.fail('unterminated comment');
    const body = this.src.slice(this.pos + 4, end);
    if (body.includes('--') || body.endsWith('-')) throw this.fail('"--" inside a comment');
    this.pos = end + 3;
  }

  /** `<?` at pos: a processing instruction other than the leading declaration. */
  private rejectPi(): never {
    NAME_AT.lastIndex = this.pos + 2;
    const m = NAME_AT.exec(this.src);
    if (m !== null && m[0].toLowerCase() === 'xml') throw this.fail('XML declaration not at the start of the document');
    throw errAt('OQS_XML_FORBIDDEN', this.src, this.pos, 'processing instruction');
  }

  /** `<!` (not a comment, not CDATA in content) at pos. */
  private rejectMarkupDecl(): never {
    const what = /^<!(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)/.exec(this.src.slice(this.pos, this.pos + 10));
    throw errAt(
      'OQS_XML_FORBIDDEN',
      this.src,
      this.pos,
      what !== null ? `<!${what[1]} declaration` : 'markup declaration',
    );
  }

  private openElement(): void {
    NAME_AT.lastIndex = this.pos + 1;
    const m = NAME_AT.exec(this.src);
    if (m === null) throw this.fail(this.pos + 1 >= this.len ? 'unexpected end of input' : 'invalid element name');
    const name = m[0];
    let p = this.pos + 1 + name.length;
    if (p < this.len && this.src.charAt(p) === ':') throw this.fail('namespaces are not allowed');
    if (name === '__proto__') throw errAt('OQS_XML_FORBIDDEN', this.src, this.pos, 'reserved element name');
    while (p < this.len && isWs(this.src.charCodeAt(p))) p++;
    if (p >= this.len) throw this.fail('unexpected end of input', p);
    const c = this.src.charAt(p);
    let selfClosing = false;
    if (c === '/') {
      if (this.src.charAt(p + 1) !== '>')
        throw this.fail(p + 1 >= this.len ? 'unexpected end of input' : 'expected ">"', p + 1);
      selfClosing = true;
      p += 2;
    } else if (c === '>') {
      p += 1;
    } else if (p > this.pos + 1 + name.length && /[A-Za-z_:]/.test(c)) {
      throw this.fail('attributes are not allowed', p);
    } else {
      throw this.fail('invalid character in tag', p);
    }
    if (this.stack.length + 1 > this.lim.maxDepth) {
      throw errAt('OQS_XML_TOO_DEEP', this.src, this.pos, `nesting deeper than ${this.lim.maxDepth}`);
    }
    if (++this.elements > this.lim.maxElements) {
      throw errAt('OQS_XML_TOO_LARGE', this.src, this.pos, `more than ${this.lim.maxElements} elements`);
    }
    const parent = this.stack[this.stack.length - 1];
    if (parent !== undefined && parent.textAt !== -1) throw this.fail('text mixed with child elements', parent.textAt);
    const frame: Frame = { name, children: [], text: '', textAt: -1 };
    this.pos = p;
    if (selfClosing) this.finish(frame, '');
    else this.stack.push(frame);
  }

  private finish(frame: Frame, value: XmlValue): void {
    const parent = this.stack[this.stack.length - 1];
    if (parent !== undefined) parent.children.push([frame.name, value]);
    else this.root = { root: frame.name, value };
  }

  private closeElement(): void {
    const top = this.stack[this.stack.length - 1];
    NAME_AT.lastIndex = this.pos + 2;
    const m = NAME_AT.exec(this.src);
    if (m === null) throw this.fail(this.pos + 2 >= this.len ? 'unexpected end of input' : 'invalid end tag');
    let p = this.pos + 2 + m[0].length;
    while (p < this.len && isWs(this.src.charCodeAt(p))) p++;
    if (p >= this.len) throw this.fail('unexpected end of input', p);
    if (this.src.charAt(p) !== '>') throw this.fail('expected ">"', p);
    if (top === undefined) throw this.fail('end tag without a start tag');
    if (m[0] !== top.name) throw this.fail(`end tag does not match <${top.name}>`);
    this.stack.pop();
    this.finish(top, closeFrame(top));
    this.pos = p + 1;
  }

  private readReference(f: Frame): void {
    REF_AT.lastIndex = this.pos;
    const m = REF_AT.exec(this.src);
    if (m === null) throw this.fail('"&" that does not start a character or entity reference');
    const [whole, hex, dec, name] = m;
    let ch: string;
    if (name !== undefined) {
      const v = Object.hasOwn(PREDEFINED, name) ? PREDEFINED[name] : undefined;
      if (v === undefined)
        throw errAt('OQS_XML_FORBIDDEN', this.src, this.pos, 'entity reference other than the predefined five');
      ch = v;
    } else {
      const cp = hex !== undefined ? parseInt(hex, 16) : parseInt(dec ?? '', 10);
      if (!isXmlCharCode(cp)) throw this.fail('character reference to a character not allowed in XML');
      ch = String.fromCodePoint(cp);
    }
    this.appendText(f, ch, this.pos);
    this.pos += whole.length;
  }

  run(): { root: string; value: XmlValue } {
    // Prolog, root element, epilog.
    while (this.pos < this.len) {
      const top = this.stack[this.stack.length - 1];
      const c = this.src.charCodeAt(this.pos);
      if (top === undefined) {
        if (isWs(c)) {
          this.pos++;
          continue;
        }
        if (c !== 0x3c /* < */)
          throw this.fail(this.root === undefined ? 'text before the root element' : 'text after the root element');
        if (this.src.startsWith('<!--', this.pos)) this.skipComment();
        else if (this.src.startsWith('<?', this.pos)) this.rejectPi();
        else if (this.src.startsWith('<![CDATA[', this.pos)) throw this.fail('CDATA outside the root element');
        else if (this.src.startsWith('<!', this.pos)) this.rejectMarkupDecl();
        else if (this.src.startsWith('</', this.pos)) throw this.fail('end tag without a start tag');
        else if (this.root !== undefined) throw this.fail('more than one root element');
        else this.openElement();
        continue;
      }
      if (c === 0x3c) {
        if (this.src.startsWith('</', this.pos)) this.closeElement();
        else if (this.src.startsWith('<!--', this.pos)) this.skipComment();
        else if (this.src.startsWith('<![CDATA[', this.pos)) {
          const end = this.src.indexOf(']]>', this.pos + 9);
          if (end === -1) throw this.fail('unterminated CDATA section');
          this.appendText(top, this.src.slice(this.pos + 9, end), this.pos + 9);
          this.pos = end + 3;
        } else if (this.src.startsWith('<?', this.pos)) this.rejectPi();
        else if (this.src.startsWith('<!', this.pos)) this.rejectMarkupDecl();
        else this.openElement();
      } else if (c === 0x26 /* & */) {
        this.readReference(top);
      } else {
        this.textEnd.lastIndex = this.pos;
        const m = this.textEnd.exec(this.src);
        const end = m === null ? this.len : m.index;
        const run = this.src.slice(this.pos, end);
        const bad = run.indexOf(']]>');
        if (bad !== -1) throw this.fail('"]]>" in text', this.pos + bad);
        this.appendText(top, run, this.pos);
        this.pos = end;
      }
    }
    if (this.stack.length > 0)
      throw this.fail(`unexpected end of input inside <${this.stack[this.stack.length - 1]?.name ?? ''}>`, this.len);
    if (this.root === undefined) throw this.fail('no root element', this.len);
    return this.root;
  }
}

// ---------------------------------------------------------------------------------------------
// Writer

const sjisCache = new Map<number, boolean>();

/** True when iconv-lite maps the code point to Shift_JIS and back to itself (it silently writes "?" otherwise). */
export function sjisRepresentable(cp: number): boolean {
  if (cp < 0x80) return true;
  let ok = sjisCache.get(cp);
  if (ok === undefined) {
    const ch = String.fromCodePoint(cp);
    ok = iconv.decode(iconv.encode(ch, SJIS_CODEC), SJIS_CODEC) === ch;
    if (sjisCache.size < 65_536) sjisCache.set(cp, ok);
  }
  return ok;
}

function unrepresentable(path: string, index: number, cp: number, encoding: WireEncoding | 'XML'): OqsError {
  const u = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  return new OqsError('OQS_ENCODING_UNREPRESENTABLE', `${path}: character ${u} cannot be written in ${encoding}`, {
    details: { path, index, codePoint: u, encoding },
  });
}

/** Escapes text for element content after checking every character can be written. */
function escapeText(text: string, path: string, encoding: WireEncoding): string {
  let i = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (!isXmlCharCode(cp)) throw unrepresentable(path, i, cp, 'XML');
    if (encoding === 'Shift_JIS' && !sjisRepresentable(cp)) throw unrepresentable(path, i, cp, encoding);
    i++;
  }
  // CR would be folded to LF by any XML reader; the reference keeps it (it is representable, not a fallback).
  return text.replace(/[&<>\r]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&#13;'));
}

function writerInvalid(path: string, reason: string): OqsError {
  return new OqsError('OQS_MESSAGE_INVALID', `${path || '(root)'}: ${reason}`, { details: { path, reason } });
}

function writeValue(
  out: string[],
  name: string,
  value: unknown,
  path: string,
  depth: number,
  encoding: WireEncoding,
): void {
  if (depth > 64) throw new OqsError('OQS_XML_TOO_DEEP', `${path}: tree nested deeper than 64`, { details: { path } });
  const indent = ' '.repeat(depth);
  if (typeof value === 'string') {
    out.push(
      value === '' ? `${indent}<${name}/>\n` : `${indent}<${name}>${escapeText(value, path, encoding)}</${name}>\n`,
    );
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => {
      if (Array.isArray(v)) throw writerInvalid(`${path}[${i}]`, 'nested array');
      writeValue(out, name, v, `${path}[${i}]`, depth, encoding);
    });
  } else if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value);
    if (entries.length === 0) {
      out.push(`${indent}<${name}/>\n`);
      return;
    }
    out.push(`${indent}<${name}>\n`);
    writeChildren(out, value as XmlTree, path, depth + 1, encoding);
    out.push(`${indent}</${name}>\n`);
  } else {
    throw writerInvalid(path, 'value must be a string, an element tree or an array');
  }
}

function writeChildren(out: string[], tree: XmlTree, path: string, depth: number, encoding: WireEncoding): void {
  for (const [name, v] of Object.entries(tree)) {
    const p = path === '' ? name : `${path}/${name}`;
    if (!isXmlName(name)) throw writerInvalid(p, 'invalid element name');
    writeValue(out, name, v, p, depth, encoding);
  }
}

/**
 * Writes `<root>` with the tree's content, elements in the tree's key order, indented with one
 * space per level. Shift_JIS output refuses any character cp932 cannot hold
 * (OQS_ENCODING_UNREPRESENTABLE): never a character reference, never "?".
 */
export function serializeXmlDocument(root: string, tree: XmlTree, encoding: WireEncoding): Buffer {
  if (!isXmlName(root)) throw writerInvalid('', 'invalid root element name');
  if (typeof tree !== 'object' || tree === null || Array.isArray(tree))
    throw writerInvalid('', 'tree must be an object');
  const out: string[] = [`<?xml version="1.0" encoding="${encoding}" standalone="no"?>\n`];
  writeValue(out, root, tree, '', 0, encoding);
  const text = out.join('');
  return encoding === 'UTF-8' ? Buffer.from(text, 'utf8') : iconv.encode(text, SJIS_CODEC);
}
