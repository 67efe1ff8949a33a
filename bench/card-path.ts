/**
 * Card path benchmark: read the user-authentication certificate + verify the PIN + sign, through
 * our reader and through OpenSC (pkcs15-tool + pkcs15-crypt, JPKI driver forced), on the same
 * virtual card in the same run, with the quick-ACK route on. APDUs are counted by the card itself.
 *
 *   npx tsx bench/card-path.ts        → prints the JSON result
 * Needs a running pcscd with vsmartcard-vpcd (slot 0) and OpenSC; holds the pcscd lock while it runs.
 */
import { execFile } from 'node:child_process';
import { createHash, X509Certificate, verify } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import { ReaderManager } from '../src/reader/index.js';
import { VirtualCard, ensureQuickAck } from '../src/sim/card/index.js';
import { withCardLock, type BenchContext, type BenchResult } from './lib.js';

const exec = promisify(execFile);
const READER = 'Virtual PCD 00 00';
const ROUNDS = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export function run(ctx: BenchContext = { quick: false }): Promise<BenchResult> {
  return withCardLock(() => measure(ctx.quick ? 2 : ROUNDS));
}

async function measure(rounds: number): Promise<BenchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-card-'));
  const qa = await ensureQuickAck();
  const card = await VirtualCard.create({
    stateDir: dir,
    profile: 'normal',
    port: Number(process.env['ONSHI_VPCD_PORT'] ?? 35963),
    resetCounters: true,
  });
  const mgr = new ReaderManager({ pollMs: 500 });
  try {
    await mgr.start();
    await card.insert();
    await mgr.waitForCard({ readerName: READER, deadline: Date.now() + 10_000 });
    const cert = new X509Certificate(card.profileMaterial().certPem);
    const challenge = Buffer.from('benchmark challenge');
    const hashFile = join(dir, 'hash.bin');
    await writeFile(hashFile, createHash('sha256').update(challenge).digest());
    const env = { ...process.env, OPENSC_DRIVER: 'jpki' };

    const ours: Array<{ ms: number; apdus: number }> = [];
    const osc: Array<{ ms: number; apdus: number }> = [];
    for (let i = 0; i < rounds; i++) {
      // ours: one session, certificate then authenticate (SELECT → tries → VERIFY → SIGN)
      let n0 = card.apduLog.length;
      let t0 = performance.now();
      const sig = await mgr.withSession(
        async (s) => {
          await s.readAuthCertificate();
          return (await s.authenticate(Buffer.from('1234'), challenge)).signature;
        },
        { readerName: READER },
      );
      ours.push({ ms: performance.now() - t0, apdus: card.apduLog.length - n0 });
      if (!verify('sha256', challenge, cert.publicKey, sig)) throw new Error('our signature does not verify');

      // OpenSC: the same work with its tools
      n0 = card.apduLog.length;
      t0 = performance.now();
      await exec('pkcs15-tool', ['--reader', '0', '--read-certificate', '01'], { env, timeout: 30_000 });
      const sigFile = join(dir, `sig${i}.bin`);
      await exec(
        'pkcs15-crypt',
        ['--reader', '0', '--sign', '-k', '01', '--sha-256', '--pkcs1', '-i', hashFile, '-o', sigFile, '--pin', '1234'],
        { env, timeout: 30_000 },
      );
      osc.push({ ms: performance.now() - t0, apdus: card.apduLog.length - n0 });
      // let pcscd finish with OpenSC's handles before the next round
      await new Promise((r) => setTimeout(r, 300));
    }
    if (card.forbiddenSelections().length > 0) throw new Error('a forbidden AP was selected');
    const oursApdus = median(ours.map((x) => x.apdus));
    const oscApdus = median(osc.map((x) => x.apdus));
    const figures: Record<string, number> = {
      ours_apdus: oursApdus,
      opensc_apdus: oscApdus,
      apdu_ratio: Number((oursApdus / oscApdus).toFixed(3)),
      ours_ms_median: Number(median(ours.map((x) => x.ms)).toFixed(1)),
      opensc_ms_median: Number(median(osc.map((x) => x.ms)).toFixed(1)),
      time_ratio: Number((median(ours.map((x) => x.ms)) / median(osc.map((x) => x.ms))).toFixed(3)),
      quickack: qa.applied ? 1 : 0,
      rounds,
    };
    return {
      name: 'card-path',
      figures,
      target: 'read certificate + verify PIN + sign with no more APDUs than OpenSC (apdu_ratio ≤ 1), quick-ACK on',
      met: oursApdus <= oscApdus,
    };
  } finally {
    await mgr.stop();
    await card.close();
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run().then(
    (r) => {
      console.log(JSON.stringify(r, null, 2));
    },
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
