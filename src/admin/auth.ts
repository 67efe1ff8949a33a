/**
 * Admin page authentication: scrypt password hashes, the per-device initial secret, login rate
 * limiting per source address, sessions and CSRF tokens. No I/O beyond the account file, so the
 * logic is unit-tested without a server.
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { matchOwner, writeFileAtomic } from '../core/atomic-file.js';
import { OnshiError } from '../core/errors.js';

export type AdminAuthErrorCode =
  | 'ADMIN_LOGIN_FAILED'
  | 'ADMIN_LOGIN_RATE_LIMITED'
  | 'ADMIN_PASSWORD_WEAK'
  | 'ADMIN_PASSWORD_MISMATCH'
  | 'ADMIN_ACCOUNTS_CORRUPT'
  | 'ADMIN_CSRF'
  | 'ADMIN_SESSION_EXPIRED';

export const ADMIN_USER = 'admin';

// --- scrypt -------------------------------------------------------------------------------------

/** N=2^15, r=8: 32 MiB and roughly 0.1–0.3 s on a Raspberry Pi 4 — slow for a guesser, fine for a login. */
export const SCRYPT_DEFAULTS = { N: 32768, r: 8, p: 1 } as const;

function scrypt(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password.normalize('NFC'), salt, keylen, opts, (e, key) => (e ? reject(e) : resolve(key))),
  );
}

/** "scrypt$N$r$p$salt$hash" (base64url): the parameters travel with the hash so they can be raised later. */
export async function hashPassword(
  password: string,
  params: { N: number; r: number; p: number } = SCRYPT_DEFAULTS,
): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, 32, { ...params, maxmem: 256 * params.N * params.r });
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![N, r, p].every((n) => Number.isInteger(n) && n > 0) || N > 1 << 20) return false;
  const want = Buffer.from(parts[5]!, 'base64url');
  const got = await scrypt(password, Buffer.from(parts[4]!, 'base64url'), want.length, {
    N,
    r,
    p,
    maxmem: 256 * N * r,
  });
  return want.length > 0 && timingSafeEqual(want, got);
}

/** Words that make a password guessable however many digits follow them (checked without the digits). */
const COMMON_WORDS = new Set(
  (
    'password passw0rd qwerty qwertyuiop asdfghjkl letmein welcome iloveyou admin administrator abc abcdef ' +
    'abcdefghijkl monkey dragon football baseball sunshine princess master secret changeme onshi gateway ' +
    'clinic hospital iryou kanri byouin shinryou'
  ).split(' '),
);

/**
 * 12–256 characters; not the user name, not the initial secret, not one repeated character; not a
 * common word padded with digits (password1234), not only a run of letters then digits (or the
 * reverse) under 16 characters, not a run of digits or keyboard order.
 */
export function passwordProblem(next: string, opts: { initialSecret?: string } = {}): string | undefined {
  if (next.length < 12) return 'too_short';
  if (next.length > 256) return 'too_long';
  if (next.toLowerCase().includes(ADMIN_USER) && next.length < 16) return 'too_simple';
  if (/^(.)\1*$/.test(next)) return 'too_simple';
  const word = next.toLowerCase().replace(/[\d\s!._-]+/g, '');
  if (word === '' || COMMON_WORDS.has(word)) return 'too_common';
  if (next.length < 16 && /^([A-Za-z]+\d+|\d+[A-Za-z]+)$/.test(next)) return 'too_simple';
  if ('01234567890123456789qwertyuiopasdfghjklzxcvbnm'.includes(next.toLowerCase())) return 'too_simple';
  if (opts.initialSecret !== undefined && next === opts.initialSecret) return 'same_as_initial';
  return undefined;
}

// --- the account file ---------------------------------------------------------------------------

export interface AdminAccount {
  name: string;
  hash: string;
  /** true until the initial secret has been replaced */
  mustChange: boolean;
  changedAt: string;
}

interface AccountsFile {
  version: 1;
  generation: number;
  users: AdminAccount[];
}

export interface InitialSecretResult {
  /** the secret in clear — only when this call created it (print it once) */
  secret?: string;
  /** where it was written (0600), for the installer and `onshi admin reset` to show */
  file: string;
}

export function newInitialSecret(): string {
  // 20 characters from an alphabet without look-alikes (0/O, 1/l/I): typed from a printout.
  const alphabet = 'abcdefghijkmnpqrstuvwxyz23456789';
  const bytes = randomBytes(20);
  return Array.from(bytes, (b) => alphabet[b % 32])
    .join('')
    .replace(/(.{5})(?!$)/g, '$1-');
}

/**
 * admin.json in the state directory. Re-read when it changes on disk, so `onshi admin reset` (another
 * process) takes effect at once; its `generation` ends every session when it moves.
 */
export class AdminAccounts {
  readonly path: string;
  readonly secretFile: string;
  private cache: { stamp: string; data: AccountsFile } | undefined;

  constructor(readonly stateDir: string) {
    this.path = join(stateDir, 'admin.json');
    this.secretFile = join(stateDir, 'admin-initial-secret');
  }

  /**
   * First start: when there is no account yet, makes one whose password is the initial secret —
   * `initialSecret` if given (e.g. the installer's, passed as a systemd credential), else the one
   * in the state directory, else a new random one written there (0600). Later starts do nothing.
   */
  async ensureInitialized(initialSecret?: string): Promise<InitialSecretResult | undefined> {
    if (this.exists()) return undefined;
    let secret = initialSecret?.trim();
    let created = false;
    if (!secret) {
      try {
        secret = readFileSync(this.secretFile, 'utf8').trim();
      } catch {
        /* none yet */
      }
    }
    if (!secret) {
      secret = newInitialSecret();
      created = true;
    }
    await this.writeInitial(secret, 0);
    return created ? { secret, file: this.secretFile } : { file: this.secretFile };
  }

  /** `onshi admin reset`: a new initial secret, a forced change, every session ended. */
  async reset(): Promise<{ secret: string; file: string }> {
    const generation = this.exists() ? this.read().generation + 1 : 0;
    const secret = newInitialSecret();
    await this.writeInitial(secret, generation);
    return { secret, file: this.secretFile };
  }

  get(name: string): AdminAccount | undefined {
    const u = this.read().users.find((x) => x.name === name);
    return u && { ...u };
  }

  get generation(): number {
    return this.read().generation;
  }

  async verify(name: string, password: string): Promise<AdminAccount | undefined> {
    const u = this.get(name);
    // Hash anyway for an unknown user, so the timing does not tell which names exist.
    const ok = await verifyPassword(password, u?.hash ?? DUMMY_HASH);
    return ok && u ? u : undefined;
  }

  async changePassword(name: string, current: string, next: string): Promise<void> {
    const u = await this.verify(name, current);
    if (!u) throw new OnshiError<AdminAuthErrorCode>('ADMIN_LOGIN_FAILED', 'the current password is wrong');
    let initial: string | undefined;
    try {
      initial = readFileSync(this.secretFile, 'utf8').trim();
    } catch {
      /* gone */
    }
    const problem = passwordProblem(next, { initialSecret: u.mustChange ? current : initial });
    if (problem)
      throw new OnshiError<AdminAuthErrorCode>(
        'ADMIN_PASSWORD_WEAK',
        `the new password is not acceptable: ${problem}`,
        { details: { reason: problem } },
      );
    const data = this.read();
    const rec = data.users.find((x) => x.name === name)!;
    rec.hash = await hashPassword(next);
    rec.mustChange = false;
    rec.changedAt = new Date().toISOString();
    this.write(data);
    // The initial secret is spent: do not leave a working-looking password lying around.
    rmSync(this.secretFile, { force: true });
  }

  private exists(): boolean {
    try {
      statSync(this.path);
      return true;
    } catch {
      return false;
    }
  }

  private async writeInitial(secret: string, generation: number): Promise<void> {
    const data: AccountsFile = {
      version: 1,
      generation,
      users: [
        { name: ADMIN_USER, hash: await hashPassword(secret), mustChange: true, changedAt: new Date().toISOString() },
      ],
    };
    mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
    writeFileAtomic(this.secretFile, secret + '\n', 0o600);
    matchOwner(this.secretFile, this.stateDir);
    this.write(data);
  }

  private read(): AccountsFile {
    let stamp: string;
    try {
      const st = statSync(this.path);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {
      throw new OnshiError<AdminAuthErrorCode>(
        'ADMIN_ACCOUNTS_CORRUPT',
        `${this.path} is missing; restart the gateway or run onshi admin reset`,
      );
    }
    if (this.cache?.stamp === stamp) return this.cache.data;
    let data: AccountsFile;
    try {
      data = JSON.parse(readFileSync(this.path, 'utf8')) as AccountsFile;
      if (data.version !== 1 || !Array.isArray(data.users) || typeof data.generation !== 'number')
        throw new Error('unexpected shape');
    } catch (e) {
      throw new OnshiError<AdminAuthErrorCode>(
        'ADMIN_ACCOUNTS_CORRUPT',
        `${this.path} is unreadable (${(e as Error).message}); run onshi admin reset`,
      );
    }
    this.cache = { stamp, data };
    return data;
  }

  private write(data: AccountsFile): void {
    writeFileAtomic(this.path, JSON.stringify(data, null, 2) + '\n', 0o600);
    matchOwner(this.path, this.stateDir);
    this.cache = undefined;
  }
}

const DUMMY_HASH = 'scrypt$32768$8$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

// --- rate limiting ------------------------------------------------------------------------------

export interface LoginLimiterOptions {
  maxFailures: number;
  lockoutMs: number;
  now?: () => number;
}

/**
 * Failed logins per source address. After maxFailures failures the address is locked out for
 * lockoutMs, doubling at each further lockout (up to a day); while locked out no password is even
 * checked. A success clears the address.
 */
export class LoginLimiter {
  private readonly entries = new Map<string, { failures: number; lockouts: number; until: number; last: number }>();
  private readonly now: () => number;

  constructor(private readonly opts: LoginLimiterOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** ms left in the lockout, or 0 when the address may try. */
  retryAfterMs(address: string): number {
    const e = this.entries.get(address);
    return e ? Math.max(0, e.until - this.now()) : 0;
  }

  failure(address: string): void {
    const now = this.now();
    this.prune(now);
    const e = this.entries.get(address) ?? { failures: 0, lockouts: 0, until: 0, last: now };
    e.failures++;
    e.last = now;
    if (e.failures >= this.opts.maxFailures) {
      e.lockouts++;
      e.failures = 0;
      e.until = now + Math.min(this.opts.lockoutMs * 2 ** (e.lockouts - 1), 86_400_000);
    }
    this.entries.set(address, e);
  }

  success(address: string): void {
    this.entries.delete(address);
  }

  private prune(now: number): void {
    // Forget addresses quiet for a day, and never hold more than 10 000 (a flood of addresses).
    for (const [k, e] of this.entries) if (now - e.last > 86_400_000 && e.until < now) this.entries.delete(k);
    while (this.entries.size > 10_000) this.entries.delete(this.entries.keys().next().value as string);
  }
}

// --- sessions and CSRF --------------------------------------------------------------------------

export interface AdminSession {
  user: string;
  csrf: string;
  mustChange: boolean;
  createdAt: number;
  lastSeen: number;
  generation: number;
}

export interface SessionOptions {
  idleMs: number;
  maxMs: number;
  now?: () => number;
}

const digest = (s: string): string => createHash('sha256').update(s).digest('hex');

/**
 * In memory: a restart logs everyone out, which is acceptable for a handful of IT staff and keeps
 * session secrets off the SD card. Only a hash of the session id is kept as the map key.
 */
export class SessionStore {
  private readonly sessions = new Map<string, AdminSession>();
  private readonly now: () => number;

  constructor(private readonly opts: SessionOptions) {
    this.now = opts.now ?? Date.now;
  }

  create(user: string, mustChange: boolean, generation: number): { id: string; session: AdminSession } {
    const id = randomBytes(32).toString('base64url');
    const now = this.now();
    const session: AdminSession = {
      user,
      csrf: randomBytes(32).toString('base64url'),
      mustChange,
      createdAt: now,
      lastSeen: now,
      generation,
    };
    this.sessions.set(digest(id), session);
    return { id, session };
  }

  /** The session without touching it: a live push must not keep an unattended dashboard logged in. */
  peek(id: string | undefined, generation: number): AdminSession | undefined {
    if (!id) return undefined;
    const s = this.sessions.get(digest(id));
    if (!s) return undefined;
    const now = this.now();
    const live = now - s.lastSeen <= this.opts.idleMs && now - s.createdAt <= this.opts.maxMs;
    return live && s.generation === generation ? s : undefined;
  }

  /** The live session for a cookie value (touching it), or undefined when absent, idle, too old or from an older account generation. */
  get(id: string | undefined, generation: number): AdminSession | undefined {
    if (!id) return undefined;
    const key = digest(id);
    const s = this.sessions.get(key);
    if (!s) return undefined;
    const now = this.now();
    if (now - s.lastSeen > this.opts.idleMs || now - s.createdAt > this.opts.maxMs || s.generation !== generation) {
      this.sessions.delete(key);
      return undefined;
    }
    s.lastSeen = now;
    return s;
  }

  destroy(id: string | undefined): void {
    if (id) this.sessions.delete(digest(id));
  }

  /** After a password change: every other session of the user ends. */
  destroyAllOf(user: string): void {
    for (const [k, s] of this.sessions) if (s.user === user) this.sessions.delete(k);
  }

  get size(): number {
    return this.sessions.size;
  }
}

/** Constant-time comparison of a submitted CSRF token with the session's. */
export function csrfMatches(expected: string, submitted: unknown): boolean {
  if (typeof submitted !== 'string' || submitted.length === 0) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(submitted);
  return a.length === b.length && timingSafeEqual(a, b);
}
