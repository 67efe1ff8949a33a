/**
 * Reads an X.509 CRL (RFC 5280 §5) from DER and checks its signature against the JPKI CA bundle.
 * Pure. The input comes over the line, so the DER reader is strict: definite lengths only, every
 * length checked against what is left, a depth bound, and any surprise is a typed CRL_INVALID.
 */
import { verify, type X509Certificate } from 'node:crypto';
import { OnshiError } from '../core/errors.js';

export type CrlErrorCode = 'CRL_INVALID' | 'CRL_UNTRUSTED';

export interface Crl {
  thisUpdate: Date;
  nextUpdate?: Date;
  /** revoked serial numbers, lower-case hex without leading zeros */
  serials: string[];
}

interface Tlv {
  tag: number;
  start: number;
  end: number;
  header: number;
}

const MAX_CRL_BYTES = 16 * 1024 * 1024;

const bad = (why: string): OnshiError<CrlErrorCode> =>
  new OnshiError<CrlErrorCode>('CRL_INVALID', `the revocation list is malformed: ${why}`);

function readTlv(buf: Buffer, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw bad('truncated header');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw bad('multi-byte tags are not used in CRLs');
  let len = buf[pos + 1]!;
  let header = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw bad('indefinite or oversized length');
    if (pos + 2 + n > limit) throw bad('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + 2 + i]!;
    header += n;
  }
  const start = pos + header;
  if (start + len > limit) throw bad('a length runs past its container');
  return { tag, start, end: start + len, header };
}

function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = parent.start; p < parent.end; ) {
    const t = readTlv(buf, p, parent.end);
    out.push(t);
    p = t.end;
  }
  return out;
}

function expect(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw bad(`expected ${what}`);
  return t;
}

function oid(buf: Buffer, t: Tlv): string {
  const b = buf.subarray(t.start, t.end);
  if (b.length === 0) throw bad('empty OID');
  const parts = [Math.floor(b[0]! / 40), b[0]! % 40];
  let v = 0;
  for (let i = 1; i < b.length; i++) {
    v = v * 128 + (b[i]! & 0x7f);
    if (!(b[i]! & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

function time(buf: Buffer, t: Tlv): Date {
  const s = buf.toString('latin1', t.start, t.end);
  const m =
    t.tag === 0x17
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
      : t.tag === 0x18
        ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
        : null;
  if (!m) throw bad('a time is neither UTCTime nor GeneralizedTime');
  let year = Number(m[1]);
  if (t.tag === 0x17) year += year >= 50 ? 1900 : 2000;
  const d = new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  if (Number.isNaN(d.getTime())) throw bad('an invalid date');
  return d;
}

const SIG_HASH: Record<string, string> = {
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
};

/** Parses the CRL and checks that one of `cas` signed it. Throws CRL_INVALID or CRL_UNTRUSTED. */
export function parseVerifiedCrl(der: Buffer, cas: readonly X509Certificate[]): Crl {
  if (der.length > MAX_CRL_BYTES) throw bad(`larger than ${MAX_CRL_BYTES} bytes`);
  const root = readTlv(der, 0, der.length);
  if (root.tag !== 0x30 || root.end !== der.length) throw bad('not one DER SEQUENCE');
  const [tbs, alg, sigBits] = children(der, root);
  expect(tbs, 0x30, 'TBSCertList');
  const algOid = oid(der, expect(children(der, expect(alg, 0x30, 'signatureAlgorithm'))[0], 0x06, 'an algorithm OID'));
  const sig = expect(sigBits, 0x03, 'the signature BIT STRING');
  if (sig.end - sig.start < 2 || der[sig.start] !== 0) throw bad('the signature has unused bits');
  const hash = SIG_HASH[algOid];
  if (!hash) throw bad(`unsupported signature algorithm ${algOid}`);

  const fields = children(der, tbs!);
  let i = 0;
  if (fields[i]?.tag === 0x02) i++; // version
  expect(fields[i++], 0x30, 'the inner signature algorithm');
  expect(fields[i++], 0x30, 'the issuer name');
  const thisUpdate = time(
    der,
    fields[i++] ??
      (() => {
        throw bad('no thisUpdate');
      })(),
  );
  let nextUpdate: Date | undefined;
  if (fields[i] && (fields[i]!.tag === 0x17 || fields[i]!.tag === 0x18)) nextUpdate = time(der, fields[i++]!);
  const serials: string[] = [];
  if (fields[i]?.tag === 0x30) {
    for (const entry of children(der, fields[i++]!)) {
      const serial = expect(children(der, expect(entry, 0x30, 'a revoked entry'))[0], 0x02, 'a serial number');
      const hex = der.toString('hex', serial.start, serial.end).replace(/^0+/, '');
      serials.push(hex === '' ? '0' : hex);
    }
  }

  const tbsBytes = der.subarray(tbs!.start - tbs!.header, tbs!.end);
  const signature = der.subarray(sig.start + 1, sig.end);
  const signer = cas.find((ca) => {
    try {
      return verify(hash, tbsBytes, ca.publicKey, signature);
    } catch {
      return false;
    }
  });
  if (!signer)
    throw new OnshiError<CrlErrorCode>('CRL_UNTRUSTED', 'the revocation list is not signed by a trusted JPKI CA');
  return { thisUpdate, ...(nextUpdate ? { nextUpdate } : {}), serials };
}
