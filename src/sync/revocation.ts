/**
 * Keeps the gateway's copy of the JPKI revocation list: fetched from central at start and on a
 * schedule (the jobs service, sync/jobs.ts), its signature checked against the JPKI CA bundle, and
 * never replaced by an older list (CRL number / thisUpdate, see crl.ts). The offline card check uses
 * it, with its age shown, when central cannot be asked.
 */
import type { X509Certificate } from 'node:crypto';
import type { CentralClient } from './central-client.js';
import { assertNotOlder, parseVerifiedCrl, type RevocationListInfo } from './crl.js';

export interface RevocationSink {
  /** `info` is the list's identity, kept with it so that `info` survives a restart. */
  set(serials: string[], fetchedAt: Date, info?: RevocationListInfo): Promise<{ count: number }>;
  /** The held list's identity; a sink without it cannot refuse an older list. */
  info?(): RevocationListInfo | undefined | Promise<RevocationListInfo | undefined>;
}

export interface RevocationRefreshResult {
  count: number;
  /** 'same': the list held was fetched again */
  outcome: 'newer' | 'same';
  crlNumber?: bigint;
  thisUpdate: Date;
  nextUpdate?: Date;
}

export async function refreshRevocationList(o: {
  central: CentralClient;
  cas: readonly X509Certificate[];
  sink: RevocationSink;
  timeoutMs: number;
}): Promise<RevocationRefreshResult> {
  const der = await o.central.cardCrl({ deadline: Date.now() + o.timeoutMs });
  const { serials, ...info } = await parseVerifiedCrl(der, o.cas);
  // Throws CRL_OLDER before the sink is touched: the held list stays.
  const outcome = assertNotOlder(await o.sink.info?.(), info);
  const { count } = await o.sink.set(serials, new Date(), info);
  return { count, outcome, ...info };
}
