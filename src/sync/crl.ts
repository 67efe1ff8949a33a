/**
 * The JPKI revocation list (an X.509 CRL, RFC 5280 §5): read with @peculiar/x509 and checked
 * against the JPKI CA bundle; the rules for replacing the list held (never by an older one) and
 * for how far past its nextUpdate the offline card proofs may still lean on it. Pure apart from
 * loading the library. The input comes over the line: its size is bounded and any surprise is a
 * typed CRL_INVALID.
 */
import type { X509Certificate } from 'node:crypto';
import { OnshiError } from '../core/errors.js';
import { loadX509 } from '../core/x509.js';

export type CrlErrorCode = 'CRL_INVALID' | 'CRL_UNTRUSTED' | 'CRL_OLDER';

/** What identifies a list's age: its dates and, when it has one, its CRL number (RFC 5280 §5.2.3). */
export interface RevocationListInfo {
  thisUpdate: Date;
  nextUpdate?: Date;
  crlNumber?: bigint;
}

export interface Crl extends RevocationListInfo {
  /** revoked serial numbers, lower-case hex without leading zeros */
  serials: string[];
}

const MAX_CRL_BYTES = 16 * 1024 * 1024;
const CRL_NUMBER_OID = '2.5.29.20';

const bad = (why: string): OnshiError<CrlErrorCode> =>
  new OnshiError<CrlErrorCode>('CRL_INVALID', `the revocation list is malformed: ${why}`);

/** A DER INTEGER (the CRL number extension's value): non-negative, at most 20 octets (§5.2.3). */
function derInteger(value: Uint8Array): bigint {
  if (value.length < 3 || value[0] !== 0x02 || value[1] !== value.length - 2 || value.length - 2 > 21)
    throw bad('the CRL number is not a short INTEGER');
  if ((value[2]! & 0x80) !== 0) throw bad('the CRL number is negative');
  let n = 0n;
  for (const b of value.subarray(2)) n = (n << 8n) | BigInt(b);
  return n;
}

const hexSerial = (s: string): string => s.toLowerCase().replace(/^0+/, '') || '0';

/** Parses the CRL and checks that one of `cas` signed it. Throws CRL_INVALID or CRL_UNTRUSTED. */
export async function parseVerifiedCrl(der: Buffer, cas: readonly X509Certificate[]): Promise<Crl> {
  if (der.length > MAX_CRL_BYTES) throw bad(`larger than ${MAX_CRL_BYTES} bytes`);
  const x509 = await loadX509();
  let crl: InstanceType<typeof x509.X509Crl>;
  let info: Crl;
  try {
    crl = new x509.X509Crl(new Uint8Array(der));
    const ext = crl.getExtension(CRL_NUMBER_OID);
    const crlNumber = ext ? derInteger(new Uint8Array(ext.value)) : undefined;
    const nextUpdate = crl.nextUpdate;
    info = {
      thisUpdate: crl.thisUpdate,
      ...(nextUpdate ? { nextUpdate } : {}),
      ...(crlNumber !== undefined ? { crlNumber } : {}),
      serials: crl.entries.map((e) => hexSerial(e.serialNumber)),
    };
  } catch (e) {
    if (e instanceof OnshiError) throw e;
    throw bad((e as Error).message ?? String(e));
  }
  for (const d of [info.thisUpdate, info.nextUpdate]) if (d && Number.isNaN(d.getTime())) throw bad('an invalid date');

  for (const ca of cas) {
    try {
      if (await crl.verify({ publicKey: new x509.X509Certificate(new Uint8Array(ca.raw)) })) return info;
    } catch {
      /* an algorithm or key this CA cannot check: try the next one */
    }
  }
  throw new OnshiError<CrlErrorCode>('CRL_UNTRUSTED', 'the revocation list is not signed by a trusted JPKI CA');
}

/**
 * Whether `incoming` may replace `held`: never by an older list (a replayed or delayed one would
 * bring back revoked cards). With CRL numbers on both the number decides; otherwise thisUpdate.
 * Throws CRL_OLDER; returns whether the incoming list is the same one again.
 */
export function assertNotOlder(held: RevocationListInfo | undefined, incoming: RevocationListInfo): 'newer' | 'same' {
  if (!held) return 'newer';
  const older =
    held.crlNumber !== undefined && incoming.crlNumber !== undefined
      ? incoming.crlNumber < held.crlNumber
      : incoming.thisUpdate.getTime() < held.thisUpdate.getTime();
  if (older || incoming.thisUpdate.getTime() < held.thisUpdate.getTime())
    throw new OnshiError<CrlErrorCode>(
      'CRL_OLDER',
      'the revocation list fetched is older than the one held: the held list stays',
      {
        details: {
          held: describe(held),
          fetched: describe(incoming),
        },
      },
    );
  const sameNumber = held.crlNumber === incoming.crlNumber;
  return sameNumber && incoming.thisUpdate.getTime() === held.thisUpdate.getTime() ? 'same' : 'newer';
}

function describe(i: RevocationListInfo): Record<string, string> {
  return {
    thisUpdate: i.thisUpdate.toISOString(),
    ...(i.nextUpdate ? { nextUpdate: i.nextUpdate.toISOString() } : {}),
    ...(i.crlNumber !== undefined ? { crlNumber: i.crlNumber.toString() } : {}),
  };
}

/** How long past its nextUpdate a list still backs an offline card proof (with a notice) by default. */
export const DEFAULT_REVOCATION_GRACE_MS = 72 * 3600_000;

/**
 * The held list's state for the offline card proof, the status and the dashboard:
 * - `none`: never fetched;
 * - `current`: before its nextUpdate (or it names none);
 * - `stale`: past its nextUpdate, within the grace: proofs go on, saying the list is stale;
 * - `expired`: past the grace: offline card proofs are refused.
 */
export type RevocationListState = 'none' | 'current' | 'stale' | 'expired';

export interface RevocationFreshness {
  state: RevocationListState;
  thisUpdate?: string;
  nextUpdate?: string;
  /** when the offline proofs stop accepting the list (nextUpdate + grace) */
  refuseAfter?: string;
  /** how long past nextUpdate, when it is */
  staleForMs?: number;
}

export function revocationFreshness(
  info: RevocationListInfo | undefined,
  now: Date = new Date(),
  graceMs: number = DEFAULT_REVOCATION_GRACE_MS,
): RevocationFreshness {
  if (!info) return { state: 'none' };
  const base = { thisUpdate: info.thisUpdate.toISOString() };
  if (!info.nextUpdate) return { state: 'current', ...base };
  const next = info.nextUpdate.getTime();
  const refuseAfter = new Date(next + graceMs);
  const dated = { ...base, nextUpdate: info.nextUpdate.toISOString(), refuseAfter: refuseAfter.toISOString() };
  const late = now.getTime() - next;
  if (late <= 0) return { state: 'current', ...dated };
  return { state: late > graceMs ? 'expired' : 'stale', ...dated, staleForMs: late };
}
