/**
 * Virtual-card profiles: certificates from the sandbox JPKI CA, keys, secrets and persisted retry
 * counters. Everything here is fake: O=JPKI-SIM, and the 券面 APs hold an all-zero "My Number".
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ensureSandboxPki,
  issueCertificate,
  randomSerial,
  withDirLock,
  REVOKED_CARD_SERIAL,
  type PemPair,
} from '../pki.js';
import { writeFileAtomic } from '../../core/atomic-file.js';
import {
  JPKI_AID_HEX,
  KENHOJO_AID_HEX,
  KENKAKU_AID_HEX,
  type DfDef,
  type EfDef,
  type HostileRule,
  type PinDef,
} from './model.js';

const DAY = 86_400_000;

export interface CardProfileInfo {
  name: string;
  personId: string;
  pin: string;
  certPem: string;
  serial: string;
  notAfter: Date;
}

export interface CardProfileMaterial extends CardProfileInfo {
  keyPem: string;
  signPassword: string;
  signCertPem: string;
  signKeyPem: string;
  caCertPem: string;
}

export interface CardCounters {
  authTriesLeft: number;
  signTriesLeft: number;
}

interface ProfileSpec {
  name: string;
  personId: string;
  pin: string;
  signPassword: string;
  /** Desired notAfter relative to now, and how far it may drift before the cert is re-issued. */
  notAfterOffsetDays: number;
  toleranceDays: number;
  serial?: string;
  initialAuthTries: number;
}

export const AUTH_PIN_MAX = 3;
export const SIGN_PIN_MAX = 5;

export const PROFILE_SPECS: readonly ProfileSpec[] = [
  {
    name: 'normal',
    personId: 'C0000001',
    pin: '1234',
    signPassword: 'SIMPASS1',
    notAfterOffsetDays: 4 * 365,
    toleranceDays: 3 * 365,
    initialAuthTries: 3,
  },
  {
    name: 'expired-recent',
    personId: 'C0000002',
    pin: '1234',
    signPassword: 'SIMPASS2',
    notAfterOffsetDays: -30,
    toleranceDays: 10,
    initialAuthTries: 3,
  },
  {
    name: 'expired-old',
    personId: 'C0000003',
    pin: '1234',
    signPassword: 'SIMPASS3',
    notAfterOffsetDays: -120,
    toleranceDays: 10,
    initialAuthTries: 3,
  },
  {
    name: 'revoked',
    personId: 'C0000004',
    pin: '1234',
    signPassword: 'SIMPASS4',
    notAfterOffsetDays: 4 * 365,
    toleranceDays: 3 * 365,
    serial: REVOKED_CARD_SERIAL,
    initialAuthTries: 3,
  },
  {
    name: 'blocked',
    personId: 'C0000005',
    pin: '1234',
    signPassword: 'SIMPASS5',
    notAfterOffsetDays: 4 * 365,
    toleranceDays: 3 * 365,
    initialAuthTries: 0,
  },
  // Linked at central to another person's insurance record (紐付け誤り): see population.ts C0000006.
  {
    name: 'misregistered',
    personId: 'C0000006',
    pin: '1234',
    signPassword: 'SIMPASS6',
    notAfterOffsetDays: 4 * 365,
    toleranceDays: 3 * 365,
    initialAuthTries: 3,
  },
  // The `normal` person with a PIN found nowhere else, for the test that searches every file for it.
  {
    name: 'canary',
    personId: 'C0000001',
    pin: '5739',
    signPassword: 'SIMPASS7',
    notAfterOffsetDays: 4 * 365,
    toleranceDays: 3 * 365,
    initialAuthTries: 3,
  },
];

export const PROFILE_NAMES = PROFILE_SPECS.map((p) => p.name);

/**
 * Hostile cards: the `normal` card's certificate, key and PIN, with answers to chosen commands
 * spoiled — what a broken, counterfeit or malicious card could send. The reader must turn each into
 * a typed ReaderError and carry on with the next card. Counters persist per hostile name.
 */
export const HOSTILE_PROFILES: Readonly<Record<string, readonly HostileRule[]>> = {
  // READ answered with a single byte: not even a status word.
  'hostile-short-answer': [{ on: 'read', action: { kind: 'truncate', keep: 1 } }],
  // Fewer certificate bytes than asked, with 9000, as if the EF ended inside the certificate.
  'hostile-cut-cert': [{ on: 'read', action: { kind: 'cut-data', keep: 100 } }],
  // 4 KiB of filler in a READ answer: more than any reader's receive buffer for a short APDU.
  'hostile-oversized-read': [{ on: 'read', action: { kind: 'oversize', extra: 4096 } }],
  // DER header with an indefinite length.
  'hostile-bad-der': [
    { on: 'read', action: { kind: 'data', data: Buffer.from([0x30, 0x80, 0x02, 0x01, 0x00, 0x00, 0x00]) } },
  ],
  // DER header claiming 2 GiB.
  'hostile-huge-der': [
    { on: 'read', action: { kind: 'data', data: Buffer.from([0x30, 0x84, 0x7f, 0xff, 0xff, 0xff]) } },
  ],
  // A plausible header (0x300 bytes) followed by noise: not a certificate.
  'hostile-garbage-cert': [
    {
      on: 'read',
      action: { kind: 'data', data: Buffer.concat([Buffer.from([0x30, 0x82, 0x03, 0x00]), Buffer.alloc(252, 0xa5)]) },
    },
  ],
  // Status words the JPKI AP never sends.
  'hostile-select-sw': [{ on: 'select-ap', action: { kind: 'sw', sw: 0x6f00 } }],
  'hostile-tries-9000': [{ on: 'tries', action: { kind: 'sw', sw: 0x9000 } }],
  'hostile-verify-sw': [{ on: 'verify', action: { kind: 'sw', sw: 0x6581 } }],
  // Signatures of the wrong size.
  'hostile-short-signature': [{ on: 'sign', action: { kind: 'cut-data', keep: 128 } }],
  'hostile-oversized-signature': [{ on: 'sign', action: { kind: 'oversize', extra: 256 } }],
  // Noise for every command.
  'hostile-garbage': [{ on: 'any', action: { kind: 'garbage', length: 7 } }],
};

export const HOSTILE_PROFILE_NAMES = Object.keys(HOSTILE_PROFILES);

/** The issued profile a name stands for, and its hostile rules (hostile-* names borrow `normal`). */
export function resolveProfile(
  all: readonly CardProfileMaterial[],
  name: string,
): { material: CardProfileMaterial; hostile?: readonly HostileRule[] } | undefined {
  const hostile = Object.hasOwn(HOSTILE_PROFILES, name) ? HOSTILE_PROFILES[name] : undefined;
  const base = all.find((p) => p.name === (hostile ? 'normal' : name));
  if (!base) return undefined;
  return hostile ? { material: { ...base, name }, hostile } : { material: base };
}

function specOf(name: string): ProfileSpec {
  if (Object.hasOwn(HOSTILE_PROFILES, name)) name = 'normal';
  const s = PROFILE_SPECS.find((p) => p.name === name);
  if (!s)
    throw new Error(`unknown card profile ${name} (known: ${[...PROFILE_NAMES, ...HOSTILE_PROFILE_NAMES].join(', ')})`);
  return s;
}

const cardsDir = (stateDir: string) => join(stateDir, 'cards');
const profileDir = (stateDir: string, name: string) => join(cardsDir(stateDir), name);
const counterFile = (stateDir: string, name: string) => join(cardsDir(stateDir), `${name}.state.json`);

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

function stillGood(certPem: string | undefined, caPem: string, spec: ProfileSpec, now: number): boolean {
  if (!certPem) return false;
  try {
    const c = new X509Certificate(certPem);
    if (!c.verify(new X509Certificate(caPem).publicKey)) return false; // CA was re-created
    const want = now + spec.notAfterOffsetDays * DAY;
    return Math.abs(new Date(c.validTo).getTime() - want) <= spec.toleranceDays * DAY;
  } catch {
    return false;
  }
}

async function loadOrIssue(stateDir: string, spec: ProfileSpec, jpkiCa: PemPair): Promise<CardProfileMaterial> {
  const dir = profileDir(stateDir, spec.name);
  const now = Date.now();
  let certPem = await readText(join(dir, 'auth-cert.pem'));
  let keyPem = await readText(join(dir, 'auth-key.pem'));
  let signCertPem = await readText(join(dir, 'sign-cert.pem'));
  let signKeyPem = await readText(join(dir, 'sign-key.pem'));
  if (!keyPem || !signKeyPem || !signCertPem || !stillGood(certPem, jpkiCa.certPem, spec, now)) {
    const notAfter = new Date(now + spec.notAfterOffsetDays * DAY);
    const notBefore = new Date(notAfter.getTime() - 5 * 365 * DAY);
    // Keep an existing key: a re-issued certificate (new serial) for the same card.
    const auth = await issueCertificate({
      ca: jpkiCa,
      subject: `CN=${spec.personId}, O=JPKI-SIM`,
      serial: spec.serial ?? randomSerial(),
      notBefore,
      notAfter,
      usage: 'jpki-auth',
      ...(keyPem ? { keyPem } : {}),
    });
    const sign = await issueCertificate({
      ca: jpkiCa,
      subject: `CN=${spec.personId}-SIGN, OU=FAKE signature certificate, O=JPKI-SIM`,
      notBefore,
      notAfter,
      usage: 'jpki-auth',
      ...(signKeyPem ? { keyPem: signKeyPem } : {}),
    });
    await writeFileAtomic(join(dir, 'auth-key.pem'), auth.keyPem, 0o600);
    await writeFileAtomic(join(dir, 'sign-key.pem'), sign.keyPem, 0o600);
    await writeFileAtomic(join(dir, 'sign-cert.pem'), sign.certPem);
    await writeFileAtomic(join(dir, 'auth-cert.pem'), auth.certPem);
    ({ certPem, keyPem } = auth);
    ({ certPem: signCertPem, keyPem: signKeyPem } = sign);
    await writeCounters(stateDir, spec.name, { authTriesLeft: spec.initialAuthTries, signTriesLeft: SIGN_PIN_MAX });
  }
  const x = new X509Certificate(certPem!);
  return {
    name: spec.name,
    personId: spec.personId,
    pin: spec.pin,
    certPem: certPem!,
    serial: x.serialNumber.toLowerCase(),
    notAfter: new Date(x.validTo),
    keyPem,
    signPassword: spec.signPassword,
    signCertPem,
    signKeyPem,
    caCertPem: jpkiCa.certPem,
  };
}

const inflight = new Map<string, Promise<CardProfileMaterial[]>>();

/** Idempotent: issues the profiles' certificates on first use and loads them afterwards. */
export function loadCardProfiles(stateDir: string): Promise<CardProfileMaterial[]> {
  let p = inflight.get(stateDir);
  if (!p) {
    p = (async () => {
      const pki = await ensureSandboxPki(stateDir);
      return withDirLock(join(cardsDir(stateDir), '.lock'), async () => {
        const out: CardProfileMaterial[] = [];
        for (const spec of PROFILE_SPECS) out.push(await loadOrIssue(stateDir, spec, pki.jpkiCa));
        return out;
      });
    })().finally(() => inflight.delete(stateDir));
    inflight.set(stateDir, p);
  }
  return p;
}

export async function ensureCardProfiles(stateDir: string): Promise<CardProfileInfo[]> {
  return (await loadCardProfiles(stateDir)).map(({ name, personId, pin, certPem, serial, notAfter }) => ({
    name,
    personId,
    pin,
    certPem,
    serial,
    notAfter,
  }));
}

export async function readCounters(stateDir: string, name: string): Promise<CardCounters> {
  const spec = specOf(name);
  const text = await readText(counterFile(stateDir, name));
  const fallback = { authTriesLeft: spec.initialAuthTries, signTriesLeft: SIGN_PIN_MAX };
  if (!text) return fallback;
  try {
    const j = JSON.parse(text) as Partial<CardCounters>;
    const ok = (n: unknown, max: number): n is number =>
      Number.isInteger(n) && (n as number) >= 0 && (n as number) <= max;
    return {
      authTriesLeft: ok(j.authTriesLeft, AUTH_PIN_MAX) ? j.authTriesLeft : fallback.authTriesLeft,
      signTriesLeft: ok(j.signTriesLeft, SIGN_PIN_MAX) ? j.signTriesLeft : fallback.signTriesLeft,
    };
  } catch {
    return fallback;
  }
}

// Writes per file are chained so that the last counter value always wins on disk.
const writeChains = new Map<string, Promise<void>>();
export function writeCounters(stateDir: string, name: string, c: CardCounters): Promise<void> {
  const file = counterFile(stateDir, name);
  const next = (writeChains.get(file) ?? Promise.resolve())
    .catch(() => undefined)
    .then(() => writeFileAtomic(file, JSON.stringify({ ...c, updatedAt: new Date().toISOString() }) + '\n'));
  writeChains.set(file, next);
  return next;
}

/** Puts a profile's counters back to their initial values (3/5, or 0/5 for `blocked`). */
export async function resetCounters(stateDir: string, name: string): Promise<CardCounters> {
  const spec = specOf(name);
  const c = { authTriesLeft: spec.initialAuthTries, signTriesLeft: SIGN_PIN_MAX };
  await writeCounters(stateDir, name, c);
  return c;
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

/** Certificate EFs are fixed-size with FF filler after the DER object, as on the real card. */
function withFiller(der: Buffer, size = 0x0800): Buffer {
  const out = Buffer.alloc(Math.max(size, der.length), 0xff);
  der.copy(out);
  return out;
}

/** EF 0006: PKCS#11 CK_TOKEN_INFO, 160 bytes, label "JPKIAPICCTOKEN2" padded with spaces. */
export function tokenInfo(): Buffer {
  const b = Buffer.alloc(160, 0x00);
  b.write('JPKIAPICCTOKEN2'.padEnd(32, ' '), 0, 'latin1');
  b.write('JPKI-SIM (FAKE)'.padEnd(32, ' '), 32, 'latin1');
  b.write('VIRTUAL'.padEnd(16, ' '), 64, 'latin1');
  b.write('0000000000000000', 80, 'latin1');
  return b;
}

export const FAKE_MY_NUMBER = '000000000000';

/** Builds the card's applications for a profile, with the persisted counters. */
export function buildDfs(m: CardProfileMaterial, counters: CardCounters): DfDef[] {
  const pin = (value: string, max: number, remaining: number): PinDef => ({
    value: Buffer.from(value, 'latin1'),
    max,
    remaining,
  });
  const files = (entries: Array<[number, EfDef]>) => new Map<number, EfDef>(entries);
  const caDer = pemToDer(m.caCertPem);
  const jpki: DfDef = {
    name: 'jpki',
    aid: Buffer.from(JPKI_AID_HEX, 'hex'),
    forbidden: false,
    pins: new Map([
      [0x0018, pin(m.pin, AUTH_PIN_MAX, counters.authTriesLeft)],
      [0x001b, pin(m.signPassword, SIGN_PIN_MAX, counters.signTriesLeft)],
    ]),
    files: files([
      [0x0006, { kind: 'data', data: tokenInfo() }],
      [0x0008, { kind: 'data', data: Buffer.from([0x8f, 0x8f, 0x00]) }],
      [0x000a, { kind: 'data', data: withFiller(pemToDer(m.certPem)) }],
      [0x000b, { kind: 'data', data: withFiller(caDer) }],
      [0x0001, { kind: 'data', data: withFiller(pemToDer(m.signCertPem)), readPin: 0x001b }],
      [0x0002, { kind: 'data', data: withFiller(caDer) }],
      [0x0017, { kind: 'key', key: createPrivateKey(m.keyPem), pin: 0x0018 }],
      [0x0018, { kind: 'pin', pin: 0x0018 }],
      [0x001a, { kind: 'key', key: createPrivateKey(m.signKeyPem), pin: 0x001b }],
      [0x001b, { kind: 'pin', pin: 0x001b }],
    ]),
  };
  // The 券面 APs exist so that a forbidden SELECT is answered like the card and recorded. FAKE data.
  const kenhojo: DfDef = {
    name: 'kenhojo',
    aid: Buffer.from(KENHOJO_AID_HEX, 'hex'),
    forbidden: true,
    pins: new Map([[0x0011, pin(m.pin, 3, 3)]]),
    files: files([
      [0x0001, { kind: 'data', data: Buffer.from(`FAKE-MYNUMBER:${FAKE_MY_NUMBER}`, 'latin1'), readPin: 0x0011 }],
      [0x0002, { kind: 'data', data: Buffer.from('FAKE SIM PERSON / NOT REAL', 'latin1'), readPin: 0x0011 }],
      [0x0011, { kind: 'pin', pin: 0x0011 }],
    ]),
  };
  const kenkaku: DfDef = {
    name: 'kenkaku',
    aid: Buffer.from(KENKAKU_AID_HEX, 'hex'),
    forbidden: true,
    pins: new Map([[0x0013, pin('00000000000000000000', 10, 10)]]),
    files: files([
      [0x0005, { kind: 'data', data: Buffer.from(`FAKE-MYNUMBER-IMAGE:${FAKE_MY_NUMBER}`, 'latin1'), readPin: 0x0013 }],
      [0x0013, { kind: 'pin', pin: 0x0013 }],
    ]),
  };
  return [kenkaku, kenhojo, jpki];
}
