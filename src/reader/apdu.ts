/**
 * JPKI APDU builders and response parsers. Pure: no I/O, no state.
 * Byte values follow spec/jpki-card.md §2. Only the JPKI AP is ever addressed.
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

/**
 * Last line of defence: the only SELECT-by-name production code may send is the JPKI AP by its full
 * AID. Anything else (notably the 券面事項 APs) is refused before it reaches the card.
 */
export function assertAllowedApdu(apdu: Uint8Array): void {
  if (apdu.length >= 4 && apdu[1] === 0xa4 && apdu[2] === 0x04) {
    if (!Buffer.from(apdu).equals(selectJpkiAp())) {
      throw new ReaderError('READER_IO', 'Refusing to select an application other than the JPKI AP');
    }
  }
}
