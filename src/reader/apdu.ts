/**
 * JPKI APDU builders and response parsers. Pure: no I/O, no state.
 * Byte values follow spec/jpki-card.md §2. Only the JPKI AP is ever addressed, and only the APDUs
 * of the allowlist below are ever built or sent.
 */
import { ReaderError, errorFromSw, type SwContext } from './errors.js';

/** 公的個人認証AP, always selected by its full 10-byte AID (a prefix could land in another DF). */
export const JPKI_AID: Readonly<Buffer> = Buffer.from('D392F000260100000001', 'hex');

export const EF = {
  TOKEN_INFO: 0x0006,
  AUTH_CERT: 0x000a,
  AUTH_CA_CERT: 0x000b,
  AUTH_KEY: 0x0017,
  AUTH_PIN: 0x0018,
} as const;

/**
 * The EFs of the JPKI AP the reader may select: the token info (is it a JPKI card), the
 * user-authentication certificate, its PIN and its key. Nothing else — above all nothing of the
 * 署名用 side (0001, 001A, 001B) and, as only the JPKI AP can be selected, no EF of another AP.
 */
export const ALLOWED_EFS: ReadonlySet<number> = new Set([EF.TOKEN_INFO, EF.AUTH_CERT, EF.AUTH_PIN, EF.AUTH_KEY]);
/** Of those, the ones READ BINARY may read. */
export const READABLE_EFS: ReadonlySet<number> = new Set([EF.TOKEN_INFO, EF.AUTH_CERT]);

const refused = (why: string, apdu: Uint8Array): ReaderError =>
  new ReaderError('READER_APDU_REFUSED', `Refused to send an APDU outside the JPKI allowlist: ${why}`, {
    // The header only: a VERIFY's data is the PIN.
    details: { header: Buffer.from(apdu.subarray(0, 4)).toString('hex').toUpperCase() },
  });

export const SW_OK = 0x9000;
export const MAX_READ = 256;
/** READ BINARY offsets are 15 bits (P1 bit 8 selects the SFI form). */
export const MAX_OFFSET = 0x7fff;
/** Longest DigestInfo the card accepts for RSA-2048 PKCS#1 v1.5 (256 − 11). */
export const MAX_DIGEST_INFO = 245;

export const SHA256_DIGEST_INFO_PREFIX: Readonly<Buffer> = Buffer.from('3031300d060960864801650304020105000420', 'hex');

export function selectJpkiAp(): Buffer {
  return Buffer.concat([Buffer.from([0x00, 0xa4, 0x04, 0x0c, JPKI_AID.length]), JPKI_AID]);
}

export function selectEf(fid: number): Buffer {
  if (!Number.isInteger(fid) || fid < 0 || fid > 0xffff) throw new RangeError(`bad FID ${fid}`);
  if (!ALLOWED_EFS.has(fid))
    throw refused(
      `EF ${fid.toString(16).padStart(4, '0').toUpperCase()} is not one the JPKI check needs`,
      Uint8Array.of(0, 0xa4, 2, 0x0c),
    );
  return Buffer.from([0x00, 0xa4, 0x02, 0x0c, 0x02, fid >> 8, fid & 0xff]);
}

/** READ BINARY with a 15-bit offset; le 1..256 (256 is encoded as 00). */
export function readBinary(offset: number, le: number): Buffer {
  if (!Number.isInteger(offset) || offset < 0 || offset > MAX_OFFSET) throw new RangeError(`bad offset ${offset}`);
  if (!Number.isInteger(le) || le < 1 || le > MAX_READ) throw new RangeError(`bad Le ${le}`);
  return Buffer.from([0x00, 0xb0, offset >> 8, offset & 0xff, le & 0xff]);
}

/** Case-1 VERIFY: asks for the tries left without spending one (answer 63Cx). */
export function verifyTriesLeft(): Buffer {
  return Buffer.from([0x00, 0x20, 0x00, 0x80]);
}

/** True when the PIN is exactly 4 ASCII digits, the only form the 利用者証明用 PIN can take. */
export function isValidPin(pin: Uint8Array): boolean {
  return pin.length === 4 && pin.every((b) => b >= 0x30 && b <= 0x39);
}

/**
 * VERIFY with the PIN as ASCII. Throws CARD_PIN_FORMAT before anything is sent (a malformed PIN
 * would cost the user a try on the card). The returned buffer holds the PIN: the caller wipes it.
 */
export function verifyPin(pin: Buffer): Buffer {
  if (!Buffer.isBuffer(pin) || !isValidPin(pin)) {
    throw new ReaderError('CARD_PIN_FORMAT', 'The PIN must be exactly 4 digits', { retryable: true });
  }
  const apdu = Buffer.alloc(9);
  apdu.set([0x00, 0x20, 0x00, 0x80, 0x04], 0);
  pin.copy(apdu, 5);
  return apdu;
}

/** COMPUTE DIGITAL SIGNATURE over a host-built DigestInfo with the current key EF (P1 00 = as given). */
export function computeSignature(digestInfo: Buffer): Buffer {
  if (digestInfo.length < 1 || digestInfo.length > MAX_DIGEST_INFO)
    throw new RangeError(`bad DigestInfo length ${digestInfo.length}`);
  return Buffer.concat([Buffer.from([0x80, 0x2a, 0x00, 0x80, digestInfo.length]), digestInfo, Buffer.from([0x00])]);
}

export function sha256DigestInfo(hash: Buffer): Buffer {
  if (hash.length !== 32) throw new RangeError(`SHA-256 hash must be 32 bytes, got ${hash.length}`);
  return Buffer.concat([SHA256_DIGEST_INFO_PREFIX, hash]);
}

export interface ApduResponse {
  data: Buffer;
  sw: number;
}

export function parseResponse(buf: Uint8Array): ApduResponse {
  if (!(buf instanceof Uint8Array) || buf.length < 2) {
    throw new ReaderError('CARD_BAD_RESPONSE', `Response too short (${buf?.length ?? 0} bytes)`);
  }
  const n = buf.length;
  return { data: Buffer.from(buf.subarray(0, n - 2)), sw: (buf[n - 2]! << 8) | buf[n - 1]! };
}

/** Throws the mapped ReaderError unless the SW is 9000. */
export function expectOk(res: ApduResponse, ctx: SwContext): Buffer {
  if (res.sw !== SW_OK) throw errorFromSw(res.sw, ctx);
  return res.data;
}

/** Bytes of header needed to know the total length: tag + first length byte, then 0–4 more. */
export function derHeaderBytesNeeded(header: Uint8Array): number {
  if (header.length < 2) return 2;
  const l = header[1]!;
  return l < 0x80 ? 2 : 2 + (l & 0x7f);
}

/**
 * Total size (header + content) of the DER object starting at header[0]. Accepts short form and
 * long forms 81–84; rejects indefinite length (80), 85+ and anything beyond what READ BINARY can
 * address. Certificate EFs carry FF filler after the object, so reads are sized from this value.
 */
export function derTotalLength(header: Uint8Array, max = MAX_OFFSET + 1): number {
  if (header.length < 2) throw new ReaderError('CARD_BAD_RESPONSE', 'DER header too short');
  const tag = header[0]!;
  if ((tag & 0x1f) === 0x1f) throw new ReaderError('CARD_BAD_RESPONSE', 'Multi-byte DER tags are not expected here');
  if (tag === 0x00 || tag === 0xff) throw new ReaderError('CARD_BAD_RESPONSE', 'No DER object (empty EF or filler)');
  const l = header[1]!;
  let total: number;
  if (l < 0x80) {
    total = 2 + l;
  } else if (l === 0x80) {
    throw new ReaderError('CARD_BAD_RESPONSE', 'Indefinite DER length is not allowed');
  } else {
    const n = l & 0x7f;
    if (n > 4) throw new ReaderError('CARD_BAD_RESPONSE', `DER length of ${n} bytes is oversize`);
    if (header.length < 2 + n) throw new ReaderError('CARD_BAD_RESPONSE', 'DER header truncated');
    let len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + header[2 + i]!;
    total = 2 + n + len;
  }
  if (total > max)
    throw new ReaderError('CARD_BAD_RESPONSE', `DER object of ${total} bytes exceeds the ${max}-byte limit`);
  return total;
}

/** Tries left from a VERIFY status word: 63Cx → x; 6983/6984 → 0 (blocked); otherwise undefined. */
export function triesFromSw(sw: number): number | undefined {
  if ((sw & 0xfff0) === 0x63c0) return sw & 0x0f;
  if (sw === 0x6983 || sw === 0x6984) return 0;
  return undefined;
}

/** Which allowlisted command an APDU is (by its whole shape), or why it is none. */
type ApduKind =
  | { kind: 'select-ap' }
  | { kind: 'select-ef'; fid: number }
  | { kind: 'read' }
  | { kind: 'verify' }
  | { kind: 'sign' }
  | { kind: 'refused'; why: string };

function classifyApdu(a: Uint8Array): ApduKind {
  const b = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  if (b.length < 4) return { kind: 'refused', why: 'shorter than a header' };
  const [cla, ins, p1, p2] = [b[0]!, b[1]!, b[2]!, b[3]!];
  if (cla === 0x00 && ins === 0xa4) {
    if (p1 === 0x04)
      return b.equals(selectJpkiAp())
        ? { kind: 'select-ap' }
        : { kind: 'refused', why: 'SELECT by name of an application other than the JPKI AP' };
    if (p1 === 0x02 && p2 === 0x0c && b.length === 7 && b[4] === 2) {
      const fid = (b[5]! << 8) | b[6]!;
      return ALLOWED_EFS.has(fid)
        ? { kind: 'select-ef', fid }
        : { kind: 'refused', why: `SELECT of EF ${b.toString('hex', 5, 7).toUpperCase()}` };
    }
    return { kind: 'refused', why: 'a SELECT form the reader never uses' };
  }
  // The 15-bit offset form only: P1 bit 8 would select an EF by its short id, past the SELECT check.
  if (cla === 0x00 && ins === 0xb0)
    return b.length === 5 && (p1 & 0x80) === 0
      ? { kind: 'read' }
      : { kind: 'refused', why: 'a READ BINARY form the reader never uses (short EF id or extended)' };
  if (cla === 0x00 && ins === 0x20 && p1 === 0x00 && p2 === 0x80 && (b.length === 4 || (b.length === 9 && b[4] === 4)))
    return { kind: 'verify' };
  if (cla === 0x80 && ins === 0x2a && p1 === 0x00 && p2 === 0x80 && b.length >= 7 && b[4] === b.length - 6)
    return b[b.length - 1] === 0x00 ? { kind: 'sign' } : { kind: 'refused', why: 'a malformed signature command' };
  return { kind: 'refused', why: `INS ${ins.toString(16).padStart(2, '0').toUpperCase()} is not on the allowlist` };
}

/**
 * Where APDUs are built and sent: refuses (READER_APDU_REFUSED) every APDU that is not one of the
 * JPKI commands the reader needs — SELECT of the JPKI AP by its full AID, SELECT of an allowlisted
 * EF, READ BINARY (offset form), VERIFY of the PIN and the signature. Stateless: which EF a READ
 * or a VERIFY reaches is checked by ApduAllowlist on the transmit path.
 */
export function assertAllowedApdu(apdu: Uint8Array): void {
  const k = classifyApdu(apdu);
  if (k.kind === 'refused') throw refused(k.why, apdu);
}

/**
 * The allowlist on one card connection, where APDUs are sent: follows the current EF (from the
 * SELECTs and their answers) so that READ BINARY reaches only the token info and the
 * certificate, VERIFY only the PIN EF and the signature only the key EF.
 */
export class ApduAllowlist {
  private apSelected = false;
  private ef: number | undefined;

  /** Throws READER_APDU_REFUSED for an APDU that must not reach the card. */
  check(apdu: Uint8Array): void {
    const k = classifyApdu(apdu);
    if (k.kind === 'refused') throw refused(k.why, apdu);
    if (k.kind === 'select-ap') return;
    if (!this.apSelected) throw refused('no command before the JPKI AP is selected', apdu);
    if (k.kind === 'read' && (this.ef === undefined || !READABLE_EFS.has(this.ef)))
      throw refused('READ BINARY of an EF other than the token info or the certificate', apdu);
    if (k.kind === 'verify' && this.ef !== EF.AUTH_PIN) throw refused('VERIFY outside the PIN EF', apdu);
    if (k.kind === 'sign' && this.ef !== EF.AUTH_KEY) throw refused('a signature outside the key EF', apdu);
  }

  /** What the card answered: a SELECT that failed leaves nothing selected that we know of. */
  answered(apdu: Uint8Array, response: Uint8Array | undefined): void {
    const k = classifyApdu(apdu);
    if (k.kind !== 'select-ap' && k.kind !== 'select-ef') return;
    const n = response?.length ?? 0;
    const ok = n >= 2 && response![n - 2] === 0x90 && response![n - 1] === 0x00;
    if (k.kind === 'select-ap') {
      this.apSelected = ok;
      this.ef = undefined;
    } else this.ef = ok ? k.fid : undefined;
  }
}
