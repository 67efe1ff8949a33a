/**
 * The My Number card's behaviour as a pure APDU processor (spec/jpki-card.md §5), independent of
 * transport. Volatile state (current DF/EF, verified PINs) is dropped on power events and on any
 * SELECT of an application; retry counters are persistent and reported through onCounterChange.
 */
import { constants, privateEncrypt, type KeyObject } from 'node:crypto';

export const JPKI_AID_HEX = 'D392F000260100000001';
/** 券面事項入力補助AP — the reader must never select it. */
export const KENHOJO_AID_HEX = 'D3921000310001010408';
/** 券面事項確認AP — the reader must never select it. */
export const KENKAKU_AID_HEX = 'D3921000310001010402';
export const FORBIDDEN_AIDS_HEX: readonly string[] = [KENHOJO_AID_HEX, KENKAKU_AID_HEX];

export type EfDef =
  | { kind: 'data'; data: Buffer; readPin?: number }
  | { kind: 'key'; key: KeyObject; pin: number }
  | { kind: 'pin'; pin: number };

export interface PinDef {
  value: Buffer;
  max: number;
  remaining: number;
}

export interface DfDef {
  name: string;
  aid: Buffer;
  files: Map<number, EfDef>;
  pins: Map<number, PinDef>;
  forbidden: boolean;
}

/** Which commands a hostile rule applies to. `tries` is the empty VERIFY, `verify` one with data. */
export type CommandKind = 'select-ap' | 'select-ef' | 'read' | 'tries' | 'verify' | 'sign' | 'other' | 'any';

/**
 * How a hostile card spoils an answer (the command is still processed, so counters move as on a real
 * card): cut the whole response (`truncate`, < 2 bytes = not even a status word), return fewer data
 * bytes than asked with 9000 (`cut-data`), add filler before the status word (`oversize`), answer
 * another status word (`sw`), replace the data (`data`), or answer noise (`garbage`).
 */
export type HostileAction =
  | { kind: 'truncate'; keep: number }
  | { kind: 'cut-data'; keep: number }
  | { kind: 'oversize'; extra: number }
  | { kind: 'sw'; sw: number; keepData?: boolean }
  | { kind: 'data'; data: Buffer; sw?: number }
  | { kind: 'garbage'; length: number };

export interface HostileRule {
  on: CommandKind;
  action: HostileAction;
}

export function commandKind(apdu: Buffer): CommandKind {
  if (apdu.length < 4) return 'other';
  const ins = apdu[1]!;
  if (ins === 0xa4) return apdu[2] === 0x04 ? 'select-ap' : apdu[2] === 0x02 ? 'select-ef' : 'other';
  if (ins === 0xb0) return 'read';
  if (ins === 0x20) return apdu.length === 4 ? 'tries' : 'verify';
  if (ins === 0x2a) return 'sign';
  return 'other';
}

/** Applies the first matching rule to a response (data ‖ SW). Deterministic, so tests can repeat it. */
export function spoil(response: Buffer, action: HostileAction, seq: number): Buffer {
  const data = response.subarray(0, Math.max(0, response.length - 2));
  const swBytes = response.subarray(Math.max(0, response.length - 2));
  switch (action.kind) {
    case 'truncate':
      return Buffer.from(response.subarray(0, Math.max(0, action.keep)));
    case 'cut-data':
      return Buffer.concat([data.subarray(0, Math.max(0, action.keep)), Buffer.from([0x90, 0x00])]);
    case 'oversize':
      return Buffer.concat([data, Buffer.alloc(action.extra, 0xee), swBytes]);
    case 'sw':
      return Buffer.concat([action.keepData ? data : Buffer.alloc(0), sw(action.sw)]);
    case 'data':
      return Buffer.concat([action.data, sw(action.sw ?? 0x9000)]);
    case 'garbage': {
      // A small LCG: noise that is the same at every run.
      const out = Buffer.alloc(action.length);
      let x = (seq * 2654435761 + 12345) >>> 0;
      for (let i = 0; i < out.length; i++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        out[i] = x >>> 24;
      }
      return out;
    }
  }
}

export interface CardModelOptions {
  dfs: DfDef[];
  /** Spoil the answers to chosen commands (hostile card profiles); the first matching rule wins. */
  hostile?: readonly HostileRule[];
  /** SW for VERIFY with data on a blocked PIN: 6984 (JICSAP, default) or 6983 (generic ISO). */
  blockedSw?: 0x6984 | 0x6983;
  onCounterChange?: (df: string, pinFid: number, remaining: number) => void;
}

export interface ProcessResult {
  response: Buffer;
  selectedDf?: string;
  forbidden: boolean;
}

const sw = (v: number): Buffer => Buffer.from([v >> 8, v & 0xff]);

interface Parsed {
  cla: number;
  ins: number;
  p1: number;
  p2: number;
  data?: Buffer;
  le?: number;
}

/** Short APDUs only, as the card uses. Returns undefined for a malformed length. */
function parse(apdu: Buffer): Parsed | undefined {
  if (apdu.length < 4) return undefined;
  const [cla, ins, p1, p2] = [apdu[0]!, apdu[1]!, apdu[2]!, apdu[3]!];
  if (apdu.length === 4) return { cla, ins, p1, p2 };
  if (apdu.length === 5) return { cla, ins, p1, p2, le: apdu[4]! || 256 };
  const lc = apdu[4]!;
  if (lc === 0) return undefined; // extended length: not supported by this card
  if (apdu.length === 5 + lc) return { cla, ins, p1, p2, data: apdu.subarray(5, 5 + lc) };
  if (apdu.length === 6 + lc) return { cla, ins, p1, p2, data: apdu.subarray(5, 5 + lc), le: apdu[5 + lc]! || 256 };
  return undefined;
}

export class CardModel {
  private readonly dfs: DfDef[];
  private readonly blockedSw: number;
  private readonly onCounterChange: CardModelOptions['onCounterChange'];
  private currentDf: DfDef | undefined;
  private currentEf: number | undefined;
  private readonly verified = new Set<string>();
  private readonly hostile: readonly HostileRule[];
  private processed = 0;

  constructor(opts: CardModelOptions) {
    this.dfs = opts.dfs;
    this.hostile = opts.hostile ?? [];
    this.blockedSw = opts.blockedSw ?? 0x6984;
    this.onCounterChange = opts.onCounterChange;
  }

  /** vpcd control bytes 00 (off), 01 (on), 02 (reset): all volatile state is lost. */
  powerEvent(): void {
    this.currentDf = undefined;
    this.currentEf = undefined;
    this.verified.clear();
  }

  pin(dfName: string, fid: number): PinDef | undefined {
    return this.dfs.find((d) => d.name === dfName)?.pins.get(fid);
  }

  isVerified(dfName: string, fid: number): boolean {
    return this.verified.has(`${dfName}:${fid}`);
  }

  get selectedDf(): string | undefined {
    return this.currentDf?.name;
  }

  process(apdu: Buffer): ProcessResult {
    const r = this.processHonestly(apdu);
    if (this.hostile.length === 0) return r;
    const kind = commandKind(apdu);
    const rule = this.hostile.find((h) => h.on === 'any' || h.on === kind);
    return rule ? { ...r, response: spoil(r.response, rule.action, this.processed++) } : r;
  }

  private processHonestly(apdu: Buffer): ProcessResult {
    const none = (v: number): ProcessResult => ({ response: sw(v), forbidden: false });
    if (apdu.length < 4) return none(0x6700);
    const cla = apdu[0]!;
    // Class byte checks first: unknown class, then channel, then secure messaging.
    const base = cla & 0xf0;
    if (base !== 0x00 && base !== 0x80) return none(0x6e00);
    if ((cla & 0x03) !== 0) return none(0x6881);
    if ((cla & 0x0c) !== 0) return none(0x6882);
    const ins = apdu[1]!;
    const known = base === 0x00 ? [0xa4, 0xb0, 0x20] : [0x2a];
    if (!known.includes(ins)) return none(0x6d00);
    const p = parse(apdu);
    if (!p) return none(0x6700);
    switch (ins) {
      case 0xa4:
        return this.select(p);
      case 0xb0: {
        const r = this.readBinary(p);
        return typeof r === 'number' ? none(r) : { response: Buffer.concat([r, sw(0x9000)]), forbidden: false };
      }
      case 0x20:
        return none(this.verify(p));
      case 0x2a:
        return this.sign(p);
      default:
        return none(0x6d00);
    }
  }

  private select(p: Parsed): ProcessResult {
    const res = (v: number, extra: Partial<ProcessResult> = {}): ProcessResult => ({
      response: sw(v),
      forbidden: false,
      ...extra,
    });
    if (p.p2 !== 0x0c && p.p2 !== 0x00 && p.p2 !== 0x04) return res(0x6a86);
    if (p.p1 === 0x04) {
      if (!p.data) return res(0x6700);
      // JICSAP selects by AID prefix too, which is why clients must send the full AID.
      const df =
        p.data.length >= 5 ? this.dfs.find((d) => d.aid.subarray(0, p.data!.length).equals(p.data!)) : undefined;
      if (!df) return res(0x6a82);
      this.currentDf = df;
      this.currentEf = undefined;
      this.verified.clear();
      return res(0x9000, { selectedDf: df.name, forbidden: df.forbidden });
    }
    if (p.p1 === 0x02) {
      if (p.data?.length !== 2) return res(0x6700);
      const fid = p.data.readUInt16BE(0);
      if (!this.currentDf?.files.has(fid)) return res(0x6a82);
      this.currentEf = fid;
      return res(0x9000);
    }
    if (p.p1 === 0x00) {
      // "select MF" is unreliable on this card: 6A86 after reset, no effect inside an AP, 3F00 unknown.
      if (p.data && p.data.length === 2) return res(0x6a82);
      if (p.data) return res(0x6700);
      return res(this.currentDf ? 0x9000 : 0x6a86);
    }
    return res(0x6a86);
  }

  private efBySfi(sfi: number): number | undefined {
    if (!this.currentDf) return undefined;
    for (const fid of this.currentDf.files.keys()) if (fid <= 0x1f && fid === sfi) return fid;
    return undefined;
  }

  /** Data on success, else the status word. */
  private readBinary(p: Parsed): Buffer | number {
    const fail = (v: number): number => v;
    let offset: number;
    if (p.p1 & 0x80) {
      if ((p.p1 & 0x60) !== 0) return fail(0x6a86);
      if (!this.currentDf) return fail(0x6a82);
      const fid = this.efBySfi(p.p1 & 0x1f);
      if (fid === undefined) return fail(0x6a82);
      this.currentEf = fid;
      offset = p.p2;
    } else {
      offset = (p.p1 << 8) | p.p2;
    }
    if (p.data || p.le === undefined) return fail(0x6700);
    if (!this.currentDf || this.currentEf === undefined) return fail(0x6986);
    const ef = this.currentDf.files.get(this.currentEf)!;
    if (ef.kind !== 'data') return fail(0x6981); // keys and PINs are internal EFs: never readable
    if (ef.readPin !== undefined && !this.verified.has(`${this.currentDf.name}:${ef.readPin}`)) return fail(0x6982);
    if (offset >= ef.data.length) return fail(0x6b00);
    return ef.data.subarray(offset, Math.min(ef.data.length, offset + p.le));
  }

  private pinRef(p2: number): { df: DfDef; fid: number; pin: PinDef } | number {
    if (!this.currentDf) return 0x6986;
    let fid: number;
    if (p2 === 0x80) {
      if (this.currentEf === undefined) return 0x6986;
      fid = this.currentEf;
    } else if ((p2 & 0xe0) === 0x80) {
      const f = this.efBySfi(p2 & 0x1f);
      if (f === undefined) return 0x6a88;
      fid = f;
      this.currentEf = fid;
    } else {
      return 0x6a86;
    }
    const ef = this.currentDf.files.get(fid);
    if (ef?.kind !== 'pin') return 0x6a88;
    const pin = this.currentDf.pins.get(ef.pin);
    if (!pin) return 0x6a88;
    return { df: this.currentDf, fid: ef.pin, pin };
  }

  private verify(p: Parsed): number {
    if (p.p1 !== 0x00) return 0x6a86;
    if (p.le !== undefined && !p.data) return 0x6700;
    const ref = this.pinRef(p.p2);
    if (typeof ref === 'number') return ref;
    const { df, fid, pin } = ref;
    if (!p.data) return 0x63c0 | pin.remaining; // tries left, even after a successful VERIFY
    if (pin.remaining === 0) return this.blockedSw;
    // Wrong length or non-digit data is simply a wrong PIN: it costs a try (§5 row 12).
    if (p.data.equals(pin.value)) {
      this.setRemaining(df, fid, pin, pin.max);
      this.verified.add(`${df.name}:${fid}`);
      return 0x9000;
    }
    this.setRemaining(df, fid, pin, pin.remaining - 1);
    this.verified.delete(`${df.name}:${fid}`);
    return 0x63c0 | pin.remaining;
  }

  private setRemaining(df: DfDef, fid: number, pin: PinDef, remaining: number): void {
    if (pin.remaining === remaining) return;
    pin.remaining = remaining;
    this.onCounterChange?.(df.name, fid, remaining);
  }

  private sign(p: Parsed): ProcessResult {
    const res = (v: number): ProcessResult => ({ response: sw(v), forbidden: false });
    if (!this.currentDf) return res(0x6986);
    let fid: number | undefined;
    if (p.p2 === 0x80) {
      fid = this.currentEf;
      if (fid === undefined) return res(0x6986);
    } else if ((p.p2 & 0xe0) === 0x80) {
      fid = this.efBySfi(p.p2 & 0x1f);
      if (fid === undefined) return res(0x6a88);
      this.currentEf = fid;
    } else {
      return res(0x6a86);
    }
    const ef = this.currentDf.files.get(fid);
    if (ef?.kind !== 'key') return res(0x6981);
    if (p.p1 !== 0x00) return res(0x6a86); // schemes 01–05 are not emulated
    if (!p.data) return res(0x6700);
    if (p.data.length > 245) return res(0x6985);
    if (!this.verified.has(`${this.currentDf.name}:${ef.pin}`)) return res(0x6982);
    const sig = privateEncrypt({ key: ef.key, padding: constants.RSA_PKCS1_PADDING }, p.data);
    return { response: Buffer.concat([sig, sw(0x9000)]), forbidden: false };
  }
}
