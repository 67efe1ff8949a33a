/**
 * A small, clearly fake PKI for the simulators (central OQS, virtual My Number card, sandbox):
 * RSA-2048, sha256WithRSAEncryption, built on @peculiar/x509 with Node's webcrypto.
 * Never imported by production code.
 */
import { createPrivateKey, createPublicKey, randomBytes, webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.js';
import type * as X509Types from '@peculiar/x509';
import { loadX509 } from '../core/x509.js';

export interface PemPair {
  certPem: string;
  keyPem: string;
}

export interface SandboxPki {
  centralCa: PemPair;
  centralServer: PemPair;
  gatewayClient: PemPair;
  jpkiCa: PemPair;
  jpkiCrlPem: string;
}

/** Serial of the `revoked` virtual-card profile: fixed so that the sandbox CRL can list it up front. */
export const REVOKED_CARD_SERIAL = '7e5700000000c004';

const RSA_ALG = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

/** A positive, non-zero hex serial of 8 bytes (high bit clear so DER needs no sign byte). */
export function randomSerial(): string {
  const b = randomBytes(8);
  b[0] = (b[0]! & 0x7f) | 0x10;
  return b.toString('hex');
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(
    { ...RSA_ALG, modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) },
    true,
    ['sign', 'verify'],
  ) as Promise<webcrypto.CryptoKeyPair>;
}

async function keysFromPem(keyPem: string): Promise<webcrypto.CryptoKeyPair> {
  const priv = createPrivateKey(keyPem);
  const pkcs8 = priv.export({ type: 'pkcs8', format: 'der' });
  const spki = createPublicKeyDer(keyPem);
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, RSA_ALG, true, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', spki, RSA_ALG, true, ['verify']);
  return { privateKey, publicKey } as webcrypto.CryptoKeyPair;
}

function createPublicKeyDer(keyPem: string): Buffer {
  // createPublicKey accepts a private key and returns its public half.
  return createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return toPem(der, 'PRIVATE KEY');
}

function toPem(der: Buffer, label: string): string {
  const b64 = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

export async function createCa(opts: { subject: string; notBefore?: Date; notAfter?: Date }): Promise<PemPair> {
  const x509 = await loadX509();
  const keys = await generateKeys();
  const notBefore = opts.notBefore ?? new Date(Date.now() - DAY);
  const notAfter = opts.notAfter ?? new Date(notBefore.getTime() + 20 * 365 * DAY);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: opts.subject,
    notBefore,
    notAfter,
    signingAlgorithm: RSA_ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await privateKeyPem(keys.privateKey) };
}

export async function issueCertificate(opts: {
  ca: PemPair;
  subject: string;
  serial?: string;
  notBefore: Date;
  notAfter: Date;
  usage: 'server' | 'client' | 'jpki-auth';
  dnsNames?: string[];
  ipAddresses?: string[];
  keyPem?: string;
}): Promise<PemPair> {
  const x509 = await loadX509();
  const caCert = new x509.X509Certificate(opts.ca.certPem);
  const caKeys = await keysFromPem(opts.ca.keyPem);
  const keys = opts.keyPem ? await keysFromPem(opts.keyPem) : await generateKeys();
  const F = x509.KeyUsageFlags;
  const extensions: X509Types.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  if (opts.usage === 'server') {
    extensions.push(new x509.KeyUsagesExtension(F.digitalSignature | F.keyEncipherment, true));
    extensions.push(new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false));
  } else if (opts.usage === 'client') {
    extensions.push(new x509.KeyUsagesExtension(F.digitalSignature | F.keyEncipherment, true));
    extensions.push(new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false));
  } else {
    // Like the real 利用者証明用電子証明書: a signature-only key, no name in the certificate.
    extensions.push(new x509.KeyUsagesExtension(F.digitalSignature, true));
  }
  const names: X509Types.JsonGeneralName[] = [
    ...(opts.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(opts.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: opts.serial ?? randomSerial(),
    subject: opts.subject,
    issuer: caCert.subject,
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    signingAlgorithm: RSA_ALG,
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    extensions,
  });
  const keyPem = opts.keyPem ?? (await privateKeyPem(keys.privateKey));
  return { certPem: cert.toString('pem') + '\n', keyPem };
}

export async function createCrl(opts: {
  ca: PemPair;
  revokedSerials: string[];
  thisUpdate?: Date;
  nextUpdate?: Date;
  /** the CRL number extension (RFC 5280 §5.2.3), when given */
  crlNumber?: number;
}): Promise<string> {
  const x509 = await loadX509();
  const caCert = new x509.X509Certificate(opts.ca.certPem);
  const caKeys = await keysFromPem(opts.ca.keyPem);
  const thisUpdate = opts.thisUpdate ?? new Date();
  const nextUpdate = opts.nextUpdate ?? new Date(thisUpdate.getTime() + 7 * DAY);
  const crl = await x509.X509CrlGenerator.create({
    issuer: caCert.subject,
    thisUpdate,
    nextUpdate,
    signingAlgorithm: RSA_ALG,
    signingKey: caKeys.privateKey,
    extensions: [
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
      ...(opts.crlNumber === undefined ? [] : [new x509.Extension('2.5.29.20', false, derUint(opts.crlNumber))]),
    ],
    entries: opts.revokedSerials.map((serialNumber) => ({
      serialNumber: serialNumber.toLowerCase(),
      revocationDate: new Date(thisUpdate.getTime() - DAY),
      reason: x509.X509CrlReason.keyCompromise,
    })),
  });
  // RFC 7468 label: the library writes "CRL", which OpenSSL and Node's tooling do not accept.
  return toPem(Buffer.from(crl.rawData), 'X509 CRL');
}

/** A small non-negative DER INTEGER. */
function derUint(n: number): Uint8Array {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (Number.parseInt(hex.slice(0, 2), 16) & 0x80) hex = `00${hex}`;
  const body = Buffer.from(hex, 'hex');
  return new Uint8Array([0x02, body.length, ...body]);
}

/** Cross-process lock by mkdir: the sandbox, tests and benches may all call ensure* at once. */
export async function withDirLock<T>(lockDir: string, fn: () => Promise<T>, staleMs = 60_000): Promise<T> {
  await mkdir(dirname(lockDir), { recursive: true });
  const started = Date.now();
  for (;;) {
    try {
      await mkdir(lockDir);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const st = await stat(lockDir).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > staleMs) {
        await rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() - started > staleMs * 2) throw new Error(`lock ${lockDir} held too long`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

const FILES = {
  centralCa: 'central-ca',
  centralServer: 'central-server',
  gatewayClient: 'gateway-client',
  jpkiCa: 'jpki-ca',
} as const;
type PairName = keyof typeof FILES;

async function readPair(dir: string, name: PairName): Promise<PemPair | undefined> {
  try {
    const [certPem, keyPem] = await Promise.all([
      readFile(join(dir, `${FILES[name]}.pem`), 'utf8'),
      readFile(join(dir, `${FILES[name]}.key`), 'utf8'),
    ]);
    return { certPem, keyPem };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

async function writePair(dir: string, name: PairName, p: PemPair): Promise<void> {
  // Key first: a certificate without its key would be loaded as a broken pair.
  await writeFileAtomic(join(dir, `${FILES[name]}.key`), p.keyPem, 0o600);
  await writeFileAtomic(join(dir, `${FILES[name]}.pem`), p.certPem, 0o644);
}

function usable(p: PemPair | undefined, now = Date.now()): p is PemPair {
  if (!p) return false;
  try {
    return new Date(new NodeX509(p.certPem).validTo).getTime() > now + DAY;
  } catch {
    return false;
  }
}

const inflight = new Map<string, Promise<SandboxPki>>();

/**
 * Idempotent: creates <dir>/pki/*.pem on first run (keys mode 0600) and loads them afterwards.
 * Leaves are re-issued if they expire; the CRL is re-signed when its nextUpdate is near.
 */
export function ensureSandboxPki(dir: string): Promise<SandboxPki> {
  const key = join(dir, 'pki');
  let p = inflight.get(key);
  if (!p) {
    p = withDirLock(join(key, '.lock'), () => ensureUnlocked(key)).finally(() => inflight.delete(key));
    inflight.set(key, p);
  }
  return p;
}

async function ensureUnlocked(pkiDir: string): Promise<SandboxPki> {
  await mkdir(pkiDir, { recursive: true, mode: 0o755 });
  const now = new Date();
  const leafFrom = new Date(now.getTime() - DAY);
  const leafTo = new Date(now.getTime() + 825 * DAY);

  let centralCa = await readPair(pkiDir, 'centralCa');
  let caRenewed = false;
  if (!usable(centralCa)) {
    centralCa = await createCa({
      subject: 'C=JP, O=ONSHI-SIM, OU=Simulated OQS Central CA, CN=ONSHI-SIM Central Root CA',
    });
    await writePair(pkiDir, 'centralCa', centralCa);
    caRenewed = true;
  }
  let centralServer = await readPair(pkiDir, 'centralServer');
  if (caRenewed || !usable(centralServer)) {
    centralServer = await issueCertificate({
      ca: centralCa,
      subject: 'C=JP, O=ONSHI-SIM, CN=localhost',
      notBefore: leafFrom,
      notAfter: leafTo,
      usage: 'server',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1', '::1'],
    });
    await writePair(pkiDir, 'centralServer', centralServer);
  }
  let gatewayClient = await readPair(pkiDir, 'gatewayClient');
  if (caRenewed || !usable(gatewayClient)) {
    gatewayClient = await issueCertificate({
      ca: centralCa,
      subject: 'C=JP, O=ONSHI-SIM, OU=Sandbox clinic, CN=onshi-gateway-sandbox',
      notBefore: leafFrom,
      notAfter: leafTo,
      usage: 'client',
    });
    await writePair(pkiDir, 'gatewayClient', gatewayClient);
  }
  let jpkiCa = await readPair(pkiDir, 'jpkiCa');
  let jpkiRenewed = false;
  if (!usable(jpkiCa)) {
    jpkiCa = await createCa({
      subject: 'C=JP, O=JPKI-SIM, OU=JPKI for user authentication, OU=FAKE simulator CA - not J-LIS',
      notBefore: new Date(now.getTime() - 3 * 365 * DAY),
    });
    await writePair(pkiDir, 'jpkiCa', jpkiCa);
    jpkiRenewed = true;
  }
  const crlPath = join(pkiDir, 'jpki-crl.pem');
  let jpkiCrlPem = await readFile(crlPath, 'utf8').catch(() => undefined);
  if (jpkiRenewed || !jpkiCrlPem || crlStale(jpkiCrlPem, now)) {
    jpkiCrlPem = await createCrl({
      ca: jpkiCa,
      revokedSerials: [REVOKED_CARD_SERIAL],
      thisUpdate: new Date(now.getTime() - 60_000),
    });
    await writeFileAtomic(crlPath, jpkiCrlPem, 0o644);
  }
  return { centralCa, centralServer, gatewayClient, jpkiCa, jpkiCrlPem };
}

function crlStale(pem: string, now: Date): boolean {
  // Parse nextUpdate cheaply from the DER: avoid loading x509 just to decide.
  try {
    const m = /-----BEGIN X509 CRL-----([\s\S]+?)-----END X509 CRL-----/.exec(pem);
    if (!m) return true;
    const der = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
    // UTCTime values in the TBS: thisUpdate then nextUpdate (tag 0x17, length 0x0d).
    const times: Date[] = [];
    for (let i = 0; i < der.length - 15 && times.length < 2; i++) {
      if (der[i] === 0x17 && der[i + 1] === 0x0d) {
        const s = der.subarray(i + 2, i + 15).toString('latin1');
        if (/^\d{12}Z$/.test(s)) {
          const yy = Number(s.slice(0, 2));
          times.push(
            new Date(
              Date.UTC(
                yy < 50 ? 2000 + yy : 1900 + yy,
                Number(s.slice(2, 4)) - 1,
                Number(s.slice(4, 6)),
                Number(s.slice(6, 8)),
                Number(s.slice(8, 10)),
                Number(s.slice(10, 12)),
              ),
            ),
          );
          i += 14;
        }
      }
    }
    const next = times[1];
    return !next || next.getTime() < now.getTime() + DAY;
  } catch {
    return true;
  }
}
