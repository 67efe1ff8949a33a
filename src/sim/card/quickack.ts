/**
 * vpcd writes each frame as two segments with Nagle on and our socket delays its ACK, costing
 * ~45 ms per APDU on loopback (spec §4). As root we give the card its own loopback address with a
 * `quickack 1` route, so only the card's traffic changes; pcscd listens on 0.0.0.0 and accepts it.
 * Without root, or without `ip`, the card simply runs on 127.0.0.1, slowly.
 */
import { execFile } from 'node:child_process';

export const CARD_LOOPBACK = '127.0.0.2';

export interface QuickAckResult {
  applied: boolean;
  host: string;
  reason?: string;
}

function ip(args: string[]): Promise<{ ok: boolean; out: string; missing: boolean }> {
  return new Promise((resolve) => {
    execFile('ip', args, { timeout: 3000 }, (err, stdout, stderr) => {
      const missing = (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';
      resolve({ ok: !err, out: `${stdout}${stderr}`, missing });
    });
  });
}

let cached: Promise<QuickAckResult> | undefined;

/** Idempotent and never throws. */
export function ensureQuickAck(addr = CARD_LOOPBACK): Promise<QuickAckResult> {
  cached ??= apply(addr);
  return cached;
}

async function apply(addr: string): Promise<QuickAckResult> {
  const slow = (reason: string): QuickAckResult => ({ applied: false, host: '127.0.0.1', reason });
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return slow('not root');
  try {
    const show = await ip(['route', 'show', 'table', 'local', `${addr}/32`]);
    if (show.missing) return slow('ip not found');
    if (/quickack 1/.test(show.out)) return { applied: true, host: addr };
    const set = await ip([
      'route',
      'replace',
      'local',
      `${addr}/32`,
      'dev',
      'lo',
      'table',
      'local',
      'proto',
      'kernel',
      'scope',
      'host',
      'src',
      addr,
      'quickack',
      '1',
    ]);
    if (!set.ok) return slow(`ip route failed: ${set.out.trim()}`);
    return { applied: true, host: addr };
  } catch (e) {
    return slow(String(e));
  }
}
