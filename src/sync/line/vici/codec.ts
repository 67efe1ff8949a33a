/**
 * strongSwan's VICI wire format, pure: the transport frame (32-bit big-endian length), the packet
 * (type byte, an 8-bit-length name for the named types, then a message) and the message (a tree of
 * sections, key/values and lists), to and from plain JS objects. Written from the protocol
 * description in strongSwan's vici plugin README; no I/O here.
 */
import { OnshiError } from '../../../core/errors.js';

/** The daemon's own limit on one transport segment (the README: "currently limited to 512KB"). */
export const VICI_MAX_SEGMENT = 512 * 1024;
/** Sections nest "to arbitrary levels" by the spec; nothing charon sends goes past a handful. */
export const VICI_MAX_DEPTH = 32;

export const PACKET_TYPES = {
  CMD_REQUEST: 0,
  CMD_RESPONSE: 1,
  CMD_UNKNOWN: 2,
  EVENT_REGISTER: 3,
  EVENT_UNREGISTER: 4,
  EVENT_CONFIRM: 5,
  EVENT_UNKNOWN: 6,
  EVENT: 7,
} as const;
export type PacketTypeName = keyof typeof PACKET_TYPES;

export const ELEMENT_TYPES = {
  SECTION_START: 1,
  SECTION_END: 2,
  KEY_VALUE: 3,
  LIST_START: 4,
  LIST_ITEM: 5,
  LIST_END: 6,
} as const;

/** A decoded message: values are strings (charon encodes numbers as strings too), lists of strings, sections. */
export type ViciValue = string | string[] | ViciMessage;
export interface ViciMessage {
  [key: string]: ViciValue;
}

/** What may be encoded: numbers and booleans become the strings charon expects ("yes"/"no"). */
export type ViciInputScalar = string | number | boolean | Uint8Array;
export type ViciInputValue = ViciInputScalar | readonly ViciInputScalar[] | ViciInput | undefined;
export interface ViciInput {
  readonly [key: string]: ViciInputValue;
}

export type ViciPacket =
  | { type: 'CMD_REQUEST'; name: string; message: ViciMessage }
  | { type: 'CMD_RESPONSE'; message: ViciMessage }
  | { type: 'CMD_UNKNOWN' }
  | { type: 'EVENT_REGISTER'; name: string }
  | { type: 'EVENT_UNREGISTER'; name: string }
  | { type: 'EVENT_CONFIRM' }
  | { type: 'EVENT_UNKNOWN' }
  | { type: 'EVENT'; name: string; message: ViciMessage };

/** What the client sends: the request's message may be given as input (numbers, booleans, blobs). */
export type ViciOutPacket =
  | { type: 'CMD_REQUEST'; name: string; message?: ViciInput }
  | { type: 'EVENT_REGISTER' | 'EVENT_UNREGISTER'; name: string };

const malformed = (message: string, details: Record<string, unknown> = {}): OnshiError<'VICI_MALFORMED'> =>
  new OnshiError('VICI_MALFORMED', `malformed VICI data: ${message}`, { details });

const unencodable = (message: string): OnshiError<'VICI_ENCODE'> =>
  new OnshiError('VICI_ENCODE', `cannot encode as VICI: ${message}`);

// ---------------------------------------------------------------------------------------------
// Encoding

class Writer {
  private readonly parts: Buffer[] = [];
  private size = 0;
  byte(b: number): void {
    this.push(Buffer.of(b));
  }
  name(s: string): void {
    const b = Buffer.from(s, 'utf8');
    if (b.length === 0 || b.length > 255) throw unencodable(`a name is 1..255 bytes ("${s.slice(0, 40)}")`);
    this.push(Buffer.of(b.length));
    this.push(b);
  }
  value(v: ViciInputScalar): void {
    const b = scalarBytes(v);
    if (b.length > 0xffff) throw unencodable(`a value is at most 65535 bytes (got ${b.length})`);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(b.length);
    this.push(len);
    this.push(b);
  }
  private push(b: Buffer): void {
    this.size += b.length;
    if (this.size > VICI_MAX_SEGMENT)
      throw new OnshiError('VICI_TOO_LARGE', `a VICI message is at most ${VICI_MAX_SEGMENT} bytes`);
    this.parts.push(b);
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts, this.size);
  }
}

function scalarBytes(v: ViciInputScalar): Buffer {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (typeof v === 'boolean') return Buffer.from(v ? 'yes' : 'no');
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw unencodable(`a number must be finite (got ${v})`);
    return Buffer.from(String(v));
  }
  if (v instanceof Uint8Array) return Buffer.from(v);
  throw unencodable(`unsupported value type ${typeof v}`);
}

const isScalar = (v: unknown): v is ViciInputScalar =>
  typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || v instanceof Uint8Array;

function writeSection(w: Writer, section: ViciInput, depth: number): void {
  if (depth > VICI_MAX_DEPTH) throw unencodable(`sections nest at most ${VICI_MAX_DEPTH} deep`);
  for (const [key, v] of Object.entries(section)) {
    if (v === undefined) continue;
    if (isScalar(v)) {
      w.byte(ELEMENT_TYPES.KEY_VALUE);
      w.name(key);
      w.value(v);
    } else if (Array.isArray(v)) {
      w.byte(ELEMENT_TYPES.LIST_START);
      w.name(key);
      for (const item of v as readonly unknown[]) {
        if (!isScalar(item)) throw unencodable(`list "${key}" holds only values (lists do not nest)`);
        w.byte(ELEMENT_TYPES.LIST_ITEM);
        w.value(item);
      }
      w.byte(ELEMENT_TYPES.LIST_END);
    } else if (typeof v === 'object' && v !== null) {
      w.byte(ELEMENT_TYPES.SECTION_START);
      w.name(key);
      writeSection(w, v as ViciInput, depth + 1);
      w.byte(ELEMENT_TYPES.SECTION_END);
    } else throw unencodable(`unsupported value for "${key}"`);
  }
}

/** The element sequence of a message (no frame, no packet header). */
export function encodeMessage(message: ViciInput = {}): Buffer {
  const w = new Writer();
  writeSection(w, message, 0);
  return w.bytes();
}

/** One packet with its transport frame, ready to write to the socket. */
export function encodePacket(p: ViciOutPacket | ViciPacket): Buffer {
  const w = new Writer();
  w.byte(PACKET_TYPES[p.type]);
  if ('name' in p) w.name(p.name);
  const body = 'message' in p ? encodeMessage(p.message as ViciInput | undefined) : Buffer.alloc(0);
  const head = w.bytes();
  const length = head.length + body.length;
  if (length > VICI_MAX_SEGMENT)
    throw new OnshiError('VICI_TOO_LARGE', `a VICI packet is at most ${VICI_MAX_SEGMENT} bytes (got ${length})`);
  const frame = Buffer.alloc(4);
  frame.writeUInt32BE(length);
  return Buffer.concat([frame, head, body]);
}

// ---------------------------------------------------------------------------------------------
// Decoding

class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  byte(what: string): number {
    if (this.pos >= this.buf.length) throw malformed(`truncated before ${what}`, { offset: this.pos });
    return this.buf[this.pos++]!;
  }
  take(n: number, what: string): Buffer {
    if (this.pos + n > this.buf.length)
      throw malformed(`truncated ${what}: ${n} bytes announced, ${this.buf.length - this.pos} left`, {
        offset: this.pos,
      });
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  name(): string {
    const len = this.byte('a name length');
    if (len === 0) throw malformed('an empty name', { offset: this.pos });
    return this.take(len, 'name').toString('utf8');
  }
  value(): string {
    const len = this.take(2, 'value length').readUInt16BE(0);
    return this.take(len, 'value').toString('utf8');
  }
}

function setOnce(target: ViciMessage, key: string, value: ViciValue, offset: number): void {
  if (Object.hasOwn(target, key)) throw malformed(`duplicate key "${key}"`, { offset });
  // defineProperty: a key named "__proto__" is data, not a prototype change.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A message's element sequence to a plain object; sections and lists must be balanced. */
export function decodeMessage(buf: Buffer): ViciMessage {
  if (buf.length > VICI_MAX_SEGMENT) throw new OnshiError('VICI_TOO_LARGE', 'a VICI message past the segment limit');
  const r = new Reader(buf);
  const root: ViciMessage = {};
  const stack: ViciMessage[] = [root];
  let list: string[] | undefined;
  while (!r.done) {
    const at = r.pos;
    const type = r.byte('an element type');
    const current = stack[stack.length - 1]!;
    if (list && type !== ELEMENT_TYPES.LIST_ITEM && type !== ELEMENT_TYPES.LIST_END)
      throw malformed(`element ${type} inside a list`, { offset: at });
    switch (type) {
      case ELEMENT_TYPES.SECTION_START: {
        if (stack.length > VICI_MAX_DEPTH) throw malformed(`sections nested past ${VICI_MAX_DEPTH}`, { offset: at });
        const section: ViciMessage = {};
        setOnce(current, r.name(), section, at);
        stack.push(section);
        break;
      }
      case ELEMENT_TYPES.SECTION_END:
        if (stack.length === 1) throw malformed('SECTION_END without a section', { offset: at });
        stack.pop();
        break;
      case ELEMENT_TYPES.KEY_VALUE: {
        const key = r.name();
        setOnce(current, key, r.value(), at);
        break;
      }
      case ELEMENT_TYPES.LIST_START: {
        const key = r.name();
        list = [];
        setOnce(current, key, list, at);
        break;
      }
      case ELEMENT_TYPES.LIST_ITEM:
        if (!list) throw malformed('LIST_ITEM outside a list', { offset: at });
        list.push(r.value());
        break;
      case ELEMENT_TYPES.LIST_END:
        if (!list) throw malformed('LIST_END without a list', { offset: at });
        list = undefined;
        break;
      default:
        throw malformed(`unknown element type ${type}`, { offset: at });
    }
  }
  if (list) throw malformed('a list left open');
  if (stack.length !== 1) throw malformed(`${stack.length - 1} section(s) left open`);
  return root;
}

const TYPE_BY_CODE = new Map<number, PacketTypeName>(
  Object.entries(PACKET_TYPES).map(([k, v]) => [v, k as PacketTypeName]),
);

/** One transport segment (the bytes after the 4-byte length) to a packet. */
export function decodePacket(segment: Buffer): ViciPacket {
  const r = new Reader(segment);
  const code = r.byte('the packet type');
  const type = TYPE_BY_CODE.get(code);
  if (!type) throw malformed(`unknown packet type ${code}`);
  const rest = (): Buffer => segment.subarray(r.pos);
  const empty = (): void => {
    if (!r.done) throw malformed(`${type} carries ${segment.length - r.pos} unexpected bytes`);
  };
  switch (type) {
    case 'CMD_REQUEST':
    case 'EVENT': {
      const name = r.name();
      return { type, name, message: decodeMessage(rest()) };
    }
    case 'CMD_RESPONSE':
      return { type, message: decodeMessage(rest()) };
    case 'EVENT_REGISTER':
    case 'EVENT_UNREGISTER': {
      const name = r.name();
      empty();
      return { type, name };
    }
    default:
      empty();
      return { type };
  }
}

/**
 * Splits a byte stream into transport segments. A length past the segment limit is an error, not a
 * buffer to grow: the stream cannot be trusted after it, so the caller drops the connection.
 */
export class FrameReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  push(chunk: Buffer): Buffer[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.pendingBytes < 4) return out;
      const buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [buf];
      const length = buf.readUInt32BE(0);
      if (length > VICI_MAX_SEGMENT)
        throw new OnshiError('VICI_TOO_LARGE', `a VICI segment of ${length} bytes is past the limit`, {
          details: { length },
        });
      if (length === 0) throw malformed('an empty segment');
      if (buf.length < 4 + length) return out;
      out.push(Buffer.from(buf.subarray(4, 4 + length)));
      const rest = buf.subarray(4 + length);
      this.pending = rest.length > 0 ? [rest] : [];
      this.pendingBytes = rest.length;
    }
  }

  /** Bytes of an incomplete segment still waiting for the rest. */
  get buffered(): number {
    return this.pendingBytes;
  }
}
