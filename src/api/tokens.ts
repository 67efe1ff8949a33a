/**
 * Receipt-computer clients and their tokens. A token is shown once, at creation; only its SHA-256
 * is stored (tokens are 256-bit random, so a plain hash is enough: there is nothing to brute-force).
 * The file is re-read when it changes, so `onshi clients add` takes effect without a restart.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { OnshiError } from '../core/errors.js';
import { writeFileAtomic } from '../core/atomic-file.js';
import { isScope, type Scope, SCOPES } from '../protocol/scopes.js';

export interface ClientRecord {
  id: string;
  name: string;
  createdAt: string;
  revokedAt?: string;
  /** sha256 of the secret part, hex */
  hash: string;
  /** what this token may do (see scopes.ts); absent in files from before scopes: full access */
  scopes?: Scope[];
  /** the one reader slot a kiosk token drives (scope `kiosk`); such a token works for no other */
  reader?: string;
}

interface ClientsFile {
  version: 1;
  clients: ClientRecord[];
}

export type ClientsErrorCode =
  | 'CLIENT_NAME_INVALID'
  | 'CLIENT_NAME_TAKEN'
  | 'CLIENT_SCOPE_INVALID'
  | 'CLIENT_NOT_FOUND'
  | 'CLIENTS_FILE_CORRUPT'
  | 'CLIENT_READER_INVALID';

const TOKEN_RE = /^onshi_([a-f0-9]{8})_([A-Za-z0-9_-]{43})$/;
const NAME_RE = /^[\p{L}\p{N} ._-]{1,64}$/u;

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

export class ClientStore {
  private cache: { stamp: string; data: ClientsFile } | undefined;
  readonly path: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, 'clients.json');
  }

  list(): ClientRecord[] {
    return this.read().clients.map((c) => ({ ...c }));
  }

  /**
   * The name staff give a receipt computer (the admin page and `onshi clients add`), trimmed: a
   * blank one names nothing staff can find again (CLIENT_NAME_INVALID), and one an active client
   * has would make `clients revoke NAME` ambiguous (CLIENT_NAME_TAKEN). Kiosks, paired under a
   * default name, are not held to it.
   */
  newClientName(raw: string): string {
    const name = raw.trim();
    if (name === '') throw new OnshiError<ClientsErrorCode>('CLIENT_NAME_INVALID', 'a client name cannot be blank');
    if (this.read().clients.some((c) => !c.revokedAt && c.name === name))
      throw new OnshiError<ClientsErrorCode>('CLIENT_NAME_TAKEN', `a connection named "${name}" exists already`);
    return name;
  }

  /** Creates a client and returns its token: the only time the token exists in clear. */
  add(
    name: string,
    scopes: readonly string[] = ['full'],
    opts: { reader?: string } = {},
  ): { client: ClientRecord; token: string } {
    if (!NAME_RE.test(name))
      throw new OnshiError<ClientsErrorCode>(
        'CLIENT_NAME_INVALID',
        'a client name is 1–64 letters, digits, spaces, dots, dashes or underscores',
      );
    const bad = scopes.filter((s) => !isScope(s));
    if (bad.length > 0 || scopes.length === 0) {
      throw new OnshiError<ClientsErrorCode>(
        'CLIENT_SCOPE_INVALID',
        `unknown scope ${bad.map((s) => `"${s}"`).join(', ') || '(none given)'}; scopes are ${SCOPES.join(', ')}`,
      );
    }
    // A kiosk token is bound to exactly one reader slot, and only a kiosk token is bound.
    const kiosk = scopes.includes('kiosk');
    if (kiosk !== (opts.reader !== undefined) || (kiosk && scopes.length > 1) || (opts.reader ?? 'x').length === 0) {
      throw new OnshiError<ClientsErrorCode>(
        'CLIENT_READER_INVALID',
        'a kiosk token has the scope kiosk alone and is bound to one reader slot; other tokens are bound to none',
      );
    }
    const data = this.read();
    let id: string;
    do id = randomBytes(4).toString('hex');
    while (data.clients.some((c) => c.id === id));
    const secret = randomBytes(32).toString('base64url');
    const client: ClientRecord = {
      id,
      name,
      createdAt: new Date().toISOString(),
      hash: sha256(secret).toString('hex'),
      scopes: [...new Set(scopes as Scope[])],
      ...(opts.reader !== undefined ? { reader: opts.reader } : {}),
    };
    this.write({ ...data, clients: [...data.clients, client] });
    return { client: { ...client }, token: `onshi_${id}_${secret}` };
  }

  revoke(idOrName: string): ClientRecord {
    const data = this.read();
    const c = data.clients.find((x) => !x.revokedAt && (x.id === idOrName || x.name === idOrName));
    if (!c) throw new OnshiError<ClientsErrorCode>('CLIENT_NOT_FOUND', `no active client "${idOrName}"`);
    c.revokedAt = new Date().toISOString();
    this.write(data);
    return { ...c };
  }

  /** The active client a token belongs to, or undefined. Constant-time on the secret. */
  authenticate(token: string | undefined): ClientRecord | undefined {
    const m = token ? TOKEN_RE.exec(token) : null;
    if (!m) return undefined;
    const c = this.read().clients.find((x) => x.id === m[1]);
    if (!c || c.revokedAt) return undefined;
    const want = Buffer.from(c.hash, 'hex');
    const got = sha256(m[2]!);
    return want.length === got.length && timingSafeEqual(want, got)
      ? { ...c, ...(c.scopes ? { scopes: [...c.scopes] } : {}) }
      : undefined;
  }

  /**
   * A kiosk's token on its own reader slot: the active client only when it holds the `kiosk` scope
   * (and nothing else) and is bound to exactly `reader`. Any other token, or another reader: undefined.
   */
  authenticateKiosk(token: string | undefined, reader?: string): ClientRecord | undefined {
    const c = this.authenticate(token);
    if (!c?.reader || c.scopes?.length !== 1 || c.scopes[0] !== 'kiosk') return undefined;
    return reader === undefined || reader === c.reader ? c : undefined;
  }

  private read(): ClientsFile {
    let stamp: string;
    try {
      const st = statSync(this.path);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {
      return { version: 1, clients: [] };
    }
    if (this.cache && this.cache.stamp === stamp) return this.cache.data;
    let data: ClientsFile;
    try {
      data = JSON.parse(readFileSync(this.path, 'utf8')) as ClientsFile;
      if (data.version !== 1 || !Array.isArray(data.clients)) throw new Error('unexpected shape');
    } catch (e) {
      throw new OnshiError<ClientsErrorCode>(
        'CLIENTS_FILE_CORRUPT',
        `${this.path} is unreadable: ${(e as Error).message}`,
      );
    }
    this.cache = { stamp, data };
    return data;
  }

  private write(data: ClientsFile): void {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    writeFileAtomic(this.path, JSON.stringify(data, null, 2) + '\n', 0o600);
    this.cache = undefined;
  }
}
