/**
 * Encryption at rest and keyed lookup hashes.
 *
 * One 32-byte master key, outside the database. HKDF-SHA-256 derives two keys from it:
 * - `enc`: AES-256-GCM for every personal value. Blob = 0x01 ‖ IV(12, random) ‖ tag(16) ‖ ciphertext.
 *   The AAD names the table, the purpose and the row (id or lookup key), so a ciphertext copied to
 *   another row or column fails authentication instead of decrypting to someone else's data.
 * - `mac`: HMAC-SHA-256 over normalized identifiers, so lookups work without storing the numbers.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { OnshiError } from '../core/errors.js';
import { writeFileAtomic } from '../core/atomic-file.js';
import type { LookupInput, StoreAlert, StoreErrorCode } from './types.js';

const VERSION = 1;
const IV_LEN = 12;
const TAG_LEN = 16;

export interface LoadedKey {
  key: Buffer;
  path: string;
  source: 'option' | 'credential' | 'state-dir';
  created: boolean;
  alerts: StoreAlert[];
}

/**
 * Finds (or creates) the master key. Precedence: `keyFile` option, then the systemd credential
 * `$CREDENTIALS_DIRECTORY/cache.key`, then `<dir>/cache.key`. Only the last two kinds of path are
 * created when missing (never inside the credentials directory, which systemd owns).
 * Accepted content: exactly 32 raw bytes, or 64 hex digits (optionally followed by a newline).
 */
export function loadOrCreateKey(dir: string, keyFile?: string, opts: { create?: boolean } = {}): LoadedKey {
  const cred = process.env.CREDENTIALS_DIRECTORY ? join(process.env.CREDENTIALS_DIRECTORY, 'cache.key') : undefined;
  let path: string;
  let source: LoadedKey['source'];
  if (keyFile) {
    path = keyFile;
    source = 'option';
  } else if (cred && existsSync(cred)) {
    path = cred;
    source = 'credential';
  } else {
    path = join(dir, 'cache.key');
    source = 'state-dir';
  }

  const alerts: StoreAlert[] = [];
  if (!existsSync(path)) {
    if (source === 'credential') throw keyError(`key credential ${path} vanished`);
    // Read-only tools (audit verify) must not mint a key that would never match the database.
    if (opts.create === false) throw keyError(`no cache key at ${path}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const key = randomBytes(32);
    writeFileAtomic(path, key, 0o600);
    alerts.push({
      code: 'STORE_KEY_CREATED',
      message: `a new cache key was created at ${path}; back it up with the database`,
      details: { path },
    });
    return { key, path, source, created: true, alerts };
  }
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (e) {
    throw keyError(`cannot read key file ${path}`, e);
  }
  const key = parseKey(raw);
  if (!key) throw keyError(`key file ${path} must hold 32 raw bytes or 64 hex digits (found ${raw.length} bytes)`);
  const mode = statSync(path).mode & 0o777;
  if (source !== 'credential' && (mode & 0o077) !== 0) {
    alerts.push({
      code: 'STORE_KEY_MODE',
      message: `key file ${path} is readable by others (mode ${mode.toString(8)}); expected 600`,
      details: { path, mode: mode.toString(8) },
    });
  }
  return { key, path, source, created: false, alerts };
}

function parseKey(raw: Buffer): Buffer | undefined {
  if (raw.length === 32) return Buffer.from(raw);
  const text = raw.toString('latin1').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  return undefined;
}

function keyError(message: string, cause?: unknown): OnshiError<StoreErrorCode> {
  return new OnshiError<StoreErrorCode>('STORE_KEY_INVALID', message, { cause });
}

/** What a ciphertext is bound to: table, column purpose and row. */
export type Aad = { table: string; purpose: string; row: string };

export class CacheKeys {
  private readonly enc: Buffer;
  private readonly mac: Buffer;
  private readonly chain: Buffer;

  constructor(master: Uint8Array) {
    if (master.length !== 32) throw keyError('the cache key must be 32 bytes');
    this.enc = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'onshi-cache/v1/aes-256-gcm', 32));
    this.mac = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'onshi-cache/v1/lookup-hmac', 32));
    this.chain = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'onshi-cache/v1/audit-chain', 32));
  }

  /** HMAC for the audit chain: keyed, so that whoever holds only the database cannot re-chain it. */
  auditMac(text: string): Buffer {
    return createHmac('sha256', this.chain).update(text, 'utf8').digest();
  }

  seal(plain: Uint8Array, aad: Aad): Buffer {
    const iv = randomBytes(IV_LEN);
    const c = createCipheriv('aes-256-gcm', this.enc, iv, { authTagLength: TAG_LEN });
    c.setAAD(aadBytes(aad));
    const body = Buffer.concat([c.update(plain), c.final()]);
    return Buffer.concat([Buffer.from([VERSION]), iv, c.getAuthTag(), body]);
  }

  /** Throws STORE_CORRUPT when the blob was altered, moved to another row, or sealed with another key. */
  open(blob: Uint8Array, aad: Aad): Buffer {
    const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
    if (b.length < 1 + IV_LEN + TAG_LEN || b[0] !== VERSION) throw corrupt(aad, 'malformed ciphertext');
    const d = createDecipheriv('aes-256-gcm', this.enc, b.subarray(1, 1 + IV_LEN), { authTagLength: TAG_LEN });
    d.setAAD(aadBytes(aad));
    d.setAuthTag(b.subarray(1 + IV_LEN, 1 + IV_LEN + TAG_LEN));
    try {
      return Buffer.concat([d.update(b.subarray(1 + IV_LEN + TAG_LEN)), d.final()]);
    } catch {
      throw corrupt(aad, 'authentication failed');
    }
  }

  sealJson(value: unknown, aad: Aad): Buffer {
    return this.seal(Buffer.from(toJson(value), 'utf8'), aad);
  }

  openJson(blob: Uint8Array, aad: Aad): unknown {
    return JSON.parse(this.open(blob, aad).toString('utf8')) as unknown;
  }

  /** Keyed hash of a lookup; 32 bytes. Domain-separated from revocation serial hashes. */
  lookupKey(input: LookupInput): Buffer {
    return this.hmac(['lookup', ...normalizeLookup(input)]);
  }

  serialKey(serial: string): Buffer {
    return this.hmac(['revoked', normalizeSerial(serial)]);
  }

  /** A batch entry's ArbitraryIdentifier (the patient key): unique per batch, findable without storing it in clear. */
  batchIdKey(batchId: string, arbitraryId: string): Buffer {
    return this.hmac(['batch', batchId, arbitraryId]);
  }

  /**
   * A patient's key for the monthly use counts (store/usage.ts): the month is in the hash, so the
   * same patient gives unrelated keys in different months. `identity` is normalized by the caller.
   */
  usagePatientKey(month: string, identity: readonly string[]): Buffer {
    return this.hmac(['usage', month, ...identity]);
  }

  private hmac(parts: string[]): Buffer {
    return createHmac('sha256', this.mac).update(JSON.stringify(parts), 'utf8').digest();
  }
}

function aadBytes(a: Aad): Buffer {
  return Buffer.from(`onshi-cache/v1|${a.table}|${a.purpose}|${a.row}`, 'utf8');
}

function corrupt(a: Aad, reason: string): OnshiError<StoreErrorCode> {
  return new OnshiError<StoreErrorCode>(
    'STORE_CORRUPT',
    `stored ${a.table}.${a.purpose} could not be decrypted (${reason})`,
    {
      details: { table: a.table, purpose: a.purpose, reason },
    },
  );
}

/** JSON text of a value; refuses what JSON cannot carry (undefined, functions, BigInt, cycles). */
export function toJson(value: unknown): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(value);
  } catch (e) {
    throw new OnshiError<StoreErrorCode>('STORE_INPUT_INVALID', 'value is not JSON-serializable', { cause: e });
  }
  if (s === undefined) throw new OnshiError<StoreErrorCode>('STORE_INPUT_INVALID', 'value is not JSON-serializable');
  return s;
}

// ---- normalization: the same person must hash the same whatever the spacing or width ----

/** NFKC (full-width digits/letters → ASCII, half-width kana → full-width) and no whitespace at all. */
const squash = (s: string): string => s.normalize('NFKC').replace(/\s+/gu, '');

function invalid(field: string): OnshiError<StoreErrorCode> {
  return new OnshiError<StoreErrorCode>('STORE_INPUT_INVALID', `lookup field ${field} is empty or malformed`, {
    details: { field },
  });
}

/**
 * - insurer number: wire form is right-aligned in 8 with spaces (`"  139998"`) — trimmed, digits only;
 * - symbol, number: NFKC, spaces removed (printed cards vary in width and spacing);
 * - branch: digits, zero-padded to 2 (`"1"` = `"01"`); absent = empty;
 * - birthdate: YYYYMMDD (separators `-`/`/` accepted);
 * - card: serial as lowercase hex without separators or leading zeros; issuer NFKC and trimmed.
 */
export function normalizeLookup(input: LookupInput): string[] {
  if (input.kind === 'numbers') {
    const insurer = squash(input.insurerNumber);
    if (!/^\d{6,8}$/.test(insurer)) throw invalid('insurerNumber');
    const number = squash(input.number);
    if (!number) throw invalid('number');
    const symbol = squash(input.symbol ?? '');
    let branch = squash(input.branch ?? '');
    if (branch && !/^\d{1,2}$/.test(branch)) throw invalid('branch');
    if (branch.length === 1) branch = `0${branch}`;
    const birthdate = squash(input.birthdate).replace(/[-/]/g, '');
    if (!/^\d{8}$/.test(birthdate)) throw invalid('birthdate');
    return ['numbers', insurer, symbol, number, branch, birthdate];
  }
  if (input.kind === 'card') {
    const issuer = input.issuer.normalize('NFKC').trim();
    if (!issuer) throw invalid('issuer');
    return ['card', normalizeSerial(input.certSerial), issuer];
  }
  throw invalid('kind');
}

export function normalizeSerial(serial: string): string {
  const s = squash(serial)
    .replace(/:/g, '')
    .toLowerCase()
    .replace(/^0+(?=.)/, '');
  if (!/^[0-9a-f]+$/.test(s)) throw invalid('certSerial');
  return s;
}
