/** Small clear-text values: the certificate revocation list and operational meta (never personal data). */
import { META_REVOCATION_FETCHED_AT, META_REVOCATION_INFO } from '../aad.js';
import { err, read, type StoreContext, validDate } from './inputs.js';

/** Meta keys starting with this are the store's own. */
const RESERVED_META = 'store.';

/** A revocation list's identity: its dates and CRL number (sync/crl.ts RevocationListInfo). */
export interface RevocationListIdentity {
  thisUpdate: Date;
  nextUpdate?: Date;
  crlNumber?: bigint;
}

export class RevocationStore {
  private readonly s;

  constructor(private readonly ctx: StoreContext) {
    this.s = {
      revoked: ctx.reader.prepare('SELECT 1 FROM revoked_serials WHERE serial = ?').pluck(),
      fetchedAt: ctx.reader.prepare('SELECT value FROM meta WHERE key = ?').pluck(),
    };
  }

  /** Replaces the whole list atomically. Serials are hex (any case, `:` separators, leading zeros ignored). */
  async set(serials: string[], fetchedAt: Date, info?: RevocationListIdentity): Promise<{ count: number }> {
    return this.ctx.call('setRevocationList', {
      serials: [...serials],
      fetchedAt: validDate(fetchedAt, 'fetchedAt'),
      ...(info
        ? {
            info: {
              thisUpdate: validDate(info.thisUpdate, 'thisUpdate'),
              ...(info.nextUpdate ? { nextUpdate: validDate(info.nextUpdate, 'nextUpdate') } : {}),
              ...(info.crlNumber !== undefined ? { crlNumber: info.crlNumber.toString() } : {}),
            },
          }
        : {}),
    });
  }

  /** The held list's identity, as set with it; undefined for a list stored without one (or none). */
  info(): RevocationListIdentity | undefined {
    this.ctx.assertOpen();
    const v = read(() => this.s.fetchedAt.get(META_REVOCATION_INFO)) as string | undefined;
    if (v === undefined) return undefined;
    const o = JSON.parse(v) as { thisUpdate: number; nextUpdate?: number; crlNumber?: string };
    return {
      thisUpdate: new Date(o.thisUpdate),
      ...(o.nextUpdate !== undefined ? { nextUpdate: new Date(o.nextUpdate) } : {}),
      ...(o.crlNumber !== undefined ? { crlNumber: BigInt(o.crlNumber) } : {}),
    };
  }

  isRevoked(serial: string): boolean {
    this.ctx.assertOpen();
    const k = this.ctx.keys.serialKey(serial);
    return read(() => this.s.revoked.get(k)) !== undefined;
  }

  /** Milliseconds since the list was fetched; undefined if it never was. */
  age(now = new Date()): number | undefined {
    this.ctx.assertOpen();
    const v = read(() => this.s.fetchedAt.get(META_REVOCATION_FETCHED_AT)) as string | undefined;
    return v === undefined ? undefined : now.getTime() - Number(v);
  }
}

export class MetaStore {
  private readonly s;

  constructor(private readonly ctx: StoreContext) {
    this.s = { get: ctx.reader.prepare('SELECT value FROM meta WHERE key = ?').pluck() };
  }

  get(key: string): string | undefined {
    this.ctx.assertOpen();
    return read(() => this.s.get.get(key)) as string | undefined;
  }

  /** Small operational values (never personal data: stored in clear). Keys starting with `store.` are reserved. */
  async set(key: string, value: string): Promise<void> {
    if (!key || key.startsWith(RESERVED_META))
      throw err('STORE_INPUT_INVALID', `meta key "${key}" is empty or reserved`);
    await this.ctx.call('setMeta', { key, value: String(value) });
  }
}
