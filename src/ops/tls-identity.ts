/**
 * The gateway's own TLS identity for the clinic LAN (WebSocket API and admin page): an ECDSA P-256
 * key and a self-signed certificate, made on first start and kept in the state directory.
 *
 * Built with node:crypto and a few lines of DER rather than @peculiar/x509, which needs a global
 * Reflect-metadata shim in the daemon process; node:crypto's X509Certificate reads it back.
 *
 * Renewal keeps the key: a receipt computer that pins the public key (spkiSha256) keeps working
 * across renewals; only one that pins the certificate fingerprint must re-pin.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  type KeyObject,
  X509Certificate,
} from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.js';
import { OnshiError } from '../core/errors.js';

export type TlsIdentityErrorCode = 'TLS_SAN_INVALID' | 'TLS_IDENTITY_UNREADABLE';

export interface TlsIdentity {
  keyPem: string;
  certPem: string;
  /** SHA-256 of the certificate (DER), "AB:CD:…": what a browser shows and `onshi status` prints. */
  fingerprint: string;
  /** base64 SHA-256 of the SubjectPublicKeyInfo: stable across renewals, for clients that pin. */
  spkiSha256: string;
  notBefore: Date;
  notAfter: Date;
  hostnames: string[];
  ips: string[];
  keyFile: string;
  certFile: string;
  /** what loading did: reused the files, renewed the certificate (same key) or made a new key */
  action: 'reused' | 'renewed' | 'created';
  /** why it renewed or created, for the log */
  reason?: string;
}

export interface TlsIdentityOptions {
  stateDir: string;
  /** empty or absent: this machine's name, NAME.local and localhost */
  hostnames?: readonly string[];
  /** 127.0.0.1 and ::1 are always added */
  ips?: readonly string[];
  validityDays?: number;
  renewDaysBefore?: number;
  now?: () => Date;
  /** for tests; defaults to os.hostname() */
  machineName?: string;
}

const DAY = 86_400_000;
const HOSTNAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

export function tlsPaths(stateDir: string): { dir: string; keyFile: string; certFile: string } {
  const dir = join(stateDir, 'tls');
  return { dir, keyFile: join(dir, 'gateway.key'), certFile: join(dir, 'gateway.crt') };
}

/** The names the certificate should carry, normalised (lower case, canonical IPs, sorted). */
export function wantedSubjectAltNames(opts: Pick<TlsIdentityOptions, 'hostnames' | 'ips' | 'machineName'>): {
  hostnames: string[];
  ips: string[];
} {
  let names = (opts.hostnames ?? []).map((h) => h.toLowerCase());
  if (names.length === 0) {
    const host = (opts.machineName ?? osHostname()).toLowerCase().split('.')[0] ?? '';
    names = HOSTNAME_RE.test(host) && host !== 'localhost' ? [host, `${host}.local`, 'localhost'] : ['localhost'];
  }
  for (const n of names) {
    if (!HOSTNAME_RE.test(n))
      throw new OnshiError<TlsIdentityErrorCode>(
        'TLS_SAN_INVALID',
        `"${n}" is not a valid host name for the certificate`,
      );
  }
  const ips = ['127.0.0.1', '::1', ...(opts.ips ?? [])].map((ip) => {
    if (!isIP(ip)) throw new OnshiError<TlsIdentityErrorCode>('TLS_SAN_INVALID', `"${ip}" is not an IP address`);
    return canonicalIp(ip);
  });
  return { hostnames: [...new Set(names)].sort(), ips: [...new Set(ips)].sort() };
}

/**
 * Loads the identity from the state directory, or makes it: a new key when there is none (or it is
 * unreadable), a new certificate for the same key when it expires within renewDaysBefore, when the
 * wanted names changed, or when it does not match the key.
 */
export function loadOrCreateTlsIdentity(opts: TlsIdentityOptions): TlsIdentity {
  const now = (opts.now ?? (() => new Date()))();
  const { dir, keyFile, certFile } = tlsPaths(opts.stateDir);
  const want = wantedSubjectAltNames(opts);
  const validityDays = opts.validityDays ?? 825;
  const renewMs = (opts.renewDaysBefore ?? 30) * DAY;
  mkdirSync(dir, { recursive: true, mode: 0o700 });

  let key: KeyObject | undefined;
  let reason: string | undefined;
  try {
    key = createPrivateKey(readFileSync(keyFile));
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      key = undefined;
      reason = 'the key is not ECDSA P-256';
    }
  } catch (e) {
    reason =
      (e as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'first start'
        : `the key file was unreadable (${(e as Error).message})`;
  }

  if (key) {
    let cert: X509Certificate | undefined;
    try {
      cert = new X509Certificate(readFileSync(certFile));
    } catch (e) {
      reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no certificate' : 'the certificate was unreadable';
    }
    if (cert) {
      const notAfter = new Date(cert.validTo);
      if (!cert.checkPrivateKey(key)) reason = 'the certificate does not match the key';
      else if (notAfter.getTime() - now.getTime() <= renewMs)
        reason = `it expires on ${notAfter.toISOString().slice(0, 10)}`;
      else if (!sameNames(cert, want)) reason = 'the configured host names or addresses changed';
      else return describe(cert, readFileSync(keyFile, 'utf8'), keyFile, certFile, want, 'reused');
    }
    const certPem = selfSignedCertificate(key, want, now, validityDays);
    writeFileAtomic(certFile, certPem, 0o600);
    return describe(
      new X509Certificate(certPem),
      readFileSync(keyFile, 'utf8'),
      keyFile,
      certFile,
      want,
      'renewed',
      reason,
    );
  }

  const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const keyPem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const certPem = selfSignedCertificate(pair.privateKey, want, now, validityDays);
  // Key first: a power cut between the two writes leaves a key without a certificate, which the
  // next start renews, rather than a certificate whose key is lost.
  writeFileAtomic(keyFile, keyPem, 0o600);
  writeFileAtomic(certFile, certPem, 0o600);
  return describe(new X509Certificate(certPem), keyPem, keyFile, certFile, want, 'created', reason);
}

/** Reads the identity without creating or renewing anything (for `onshi status` with the daemon down). */
export function readTlsIdentity(stateDir: string): Omit<TlsIdentity, 'keyPem' | 'action' | 'reason'> | undefined {
  const { keyFile, certFile } = tlsPaths(stateDir);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(certFile));
  } catch {
    return undefined;
  }
  const {
    keyPem: _k,
    action: _a,
    reason: _r,
    ...rest
  } = describe(cert, '', keyFile, certFile, namesOf(cert), 'reused');
  return rest;
}

/** SHA-256 fingerprint of a PEM or DER certificate, colon-separated upper-case hex. */
export function certificateFingerprint(cert: string | Buffer): string {
  return new X509Certificate(cert).fingerprint256;
}

/**
 * Checks the identity once now and then every `everyMs` (default 6 h); calls onChange with the
 * new identity when the certificate was renewed, so servers can swap their secure context.
 */
export function scheduleTlsRenewal(
  opts: TlsIdentityOptions,
  onChange: (id: TlsIdentity) => void,
  everyMs = 6 * 3_600_000,
): () => void {
  const timer = setInterval(() => {
    try {
      const id = loadOrCreateTlsIdentity(opts);
      if (id.action !== 'reused') onChange(id);
    } catch {
      // A full disk must not take the servers down; the next round tries again.
    }
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

function describe(
  cert: X509Certificate,
  keyPem: string,
  keyFile: string,
  certFile: string,
  names: { hostnames: string[]; ips: string[] },
  action: TlsIdentity['action'],
  reason?: string,
): TlsIdentity {
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return {
    keyPem,
    certPem: cert.toString(),
    keyFile,
    certFile,
    action,
    ...(reason ? { reason } : {}),
    fingerprint: cert.fingerprint256,
    spkiSha256: createHash('sha256').update(spki).digest('base64'),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    hostnames: names.hostnames,
    ips: names.ips,
  };
}

function namesOf(cert: X509Certificate): { hostnames: string[]; ips: string[] } {
  const hostnames: string[] = [];
  const ips: string[] = [];
  for (const part of (cert.subjectAltName ?? '').split(/,\s*/)) {
    if (part.startsWith('DNS:')) hostnames.push(part.slice(4).toLowerCase());
    else if (part.startsWith('IP Address:')) ips.push(canonicalIp(part.slice(11)));
  }
  return { hostnames: hostnames.sort(), ips: ips.sort() };
}

function sameNames(cert: X509Certificate, want: { hostnames: string[]; ips: string[] }): boolean {
  const have = namesOf(cert);
  return JSON.stringify(have) === JSON.stringify(want);
}

// --- IP addresses ---------------------------------------------------------------------------

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // A trailing dotted IPv4 (::ffff:10.0.0.1) becomes two hex words first.
  const text = ip.replace(
    /(\d+)\.(\d+)\.(\d+)\.(\d+)$/,
    (_m, a: string, b: string, c: string, d: string) =>
      `${((+a << 8) | +b).toString(16)}:${((+c << 8) | +d).toString(16)}`,
  );
  const [head, rest] = text.split('::') as [string, string | undefined];
  const parse = (s: string): number[] => (s ? s.split(':').map((h) => parseInt(h, 16)) : []);
  const a = parse(head);
  const b = rest === undefined ? [] : parse(rest);
  const words = [...a, ...new Array<number>(8 - a.length - b.length).fill(0), ...b];
  const out = Buffer.alloc(16);
  for (const [i, w] of words.entries()) out.writeUInt16BE(w, i * 2);
  return out;
}

/** 127.0.0.1 stays; IPv6 becomes its full lower-case form (0:0:0:0:0:0:0:1), as OpenSSL prints it. */
function canonicalIp(ip: string): string {
  if (isIP(ip) === 4) return ip;
  const b = ipBytes(ip);
  return Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16)).join(':');
}

// --- DER --------------------------------------------------------------------------------------

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, content]);
}
const seq = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts));
const set = (...parts: Buffer[]): Buffer => tlv(0x31, Buffer.concat(parts));
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [a * 40 + b];
  for (const n of rest) {
    const chunk: number[] = [n & 0x7f];
    for (let v = n >>> 7; v > 0; v >>>= 7) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'; // YYYYMMDDhhmmssZ
  // RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [tlv(0x01, Buffer.from([0xff]))] : []), octets(value));
}

function selfSignedCertificate(
  key: KeyObject,
  names: { hostnames: string[]; ips: string[] },
  now: Date,
  validityDays: number,
): string {
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive and non-zero, no sign byte needed
  const ecdsaSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const name = seq(
    set(seq(oid('2.5.4.10'), utf8('onshi-gateway'))),
    set(seq(oid('2.5.4.3'), utf8(names.hostnames.find((h) => h !== 'localhost') ?? 'localhost'))),
  );
  // Back-date an hour: a Pi without a real-time clock may still be a little behind at first boot.
  const notBefore = new Date(now.getTime() - 3_600_000);
  const notAfter = new Date(now.getTime() + validityDays * DAY);
  const san = seq(
    ...names.hostnames.map((h) => tlv(0x82, Buffer.from(h, 'ascii'))),
    ...names.ips.map((ip) => tlv(0x87, ipBytes(ip))),
  );
  const publicKeyBits = spki.subarray(spki.length - 65); // the uncompressed P-256 point
  const extensions = tlv(
    0xa3,
    seq(
      extension('2.5.29.19', true, seq()), // basicConstraints: not a CA
      extension('2.5.29.15', true, tlv(0x03, Buffer.from([0x07, 0x80]))), // keyUsage: digitalSignature
      extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))), // extKeyUsage: serverAuth
      extension('2.5.29.14', false, octets(createHash('sha1').update(publicKeyBits).digest())),
      extension('2.5.29.17', false, san),
    ),
  );
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))), // v3
    tlv(0x02, serial),
    ecdsaSha256,
    name,
    seq(time(notBefore), time(notAfter)),
    name,
    spki,
    extensions,
  );
  const signature = sign('sha256', tbs, { key, dsaEncoding: 'der' });
  const der = seq(tbs, ecdsaSha256, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const b64 = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}
