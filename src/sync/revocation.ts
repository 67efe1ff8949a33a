/**
 * Keeps the gateway's copy of the JPKI revocation list: fetched from central at start and on a
 * node-cron schedule, its signature checked against the JPKI CA bundle before it replaces the old
 * one. The offline card check uses it, with its age shown, when central cannot be asked.
 */
import type { X509Certificate } from 'node:crypto';
import type { ScheduledTask } from 'node-cron';
import type { CentralClient } from './central-client.js';
import { parseVerifiedCrl } from './crl.js';
import { scheduleJob } from './schedule.js';

export interface RevocationSink {
  setRevocationList(serials: string[], fetchedAt: Date): Promise<{ count: number }>;
}

export interface RevocationRefreshResult {
  count: number;
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
  const crl = parseVerifiedCrl(der, o.cas);
  const { count } = await o.sink.setRevocationList(crl.serials, new Date());
  return { count, thisUpdate: crl.thisUpdate, ...(crl.nextUpdate ? { nextUpdate: crl.nextUpdate } : {}) };
}

/** Runs `refresh` now and on `schedule` (cron, Asia/Tokyo); failures go to `onError`, never throw. */
export function scheduleRevocationRefresh(
  schedule: string,
  refresh: () => Promise<unknown>,
  onError: (e: unknown) => void,
): ScheduledTask {
  return scheduleJob({
    name: 'revocation-refresh',
    setting: 'outage.revocationSchedule',
    schedule,
    run: refresh,
    onError,
  });
}
