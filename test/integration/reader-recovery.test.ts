// pcscd killed and restarted mid-session: the manager recovers by itself, without a restart and
// without spinning, and the next check succeeds.
import t from 'tap';
import { X509Certificate, verify } from 'node:crypto';
import { ensurePcscd, canRestartPcscd, restartPcscd, restorePcscd, VPCD_PORT, READER_NAMES } from '../helpers/pcscd.js';
import { ReaderManager, isReaderError } from '../../src/reader/index.js';
import { VirtualCard } from '../../src/sim/card/index.js';
import { cardTestdir } from '../helpers/card-dir.js';

t.test('manager recovers from a pcscd crash', async (t) => {
  if (!(await ensurePcscd(t))) return;
  const can = await canRestartPcscd();
  if (!can.ok) {
    // Under CI the helper starts pcscd itself, so this branch is only taken next to a foreign daemon.
    if (process.env['CI']) t.fail(can.reason!);
    else t.skip(can.reason!, () => {});
    return;
  }
  t.teardown(restorePcscd);
  const dir = await cardTestdir(t);
  const card = await VirtualCard.create({ stateDir: dir, profile: 'normal', port: VPCD_PORT, resetCounters: true });
  const mgr = new ReaderManager({ pollMs: 500, backoffInitialMs: 100, backoffMaxMs: 1000 });
  const states: string[] = [];
  mgr.on('state', (s) => states.push(s.pcsc));
  await mgr.start();
  t.teardown(async () => {
    await mgr.stop();
    await card.close();
  });
  await card.insert();
  const reader = READER_NAMES[0];
  await mgr.waitForCard({ readerName: reader, deadline: Date.now() + 5000 });

  // Mid-session: certificate read, then pcscd dies before the PIN step.
  const cpu0 = process.cpuUsage();
  const wall0 = Date.now();
  const err = await mgr
    .withSession(
      async (s) => {
        await s.readAuthCertificate();
        await restartPcscd({ downMs: 1500 });
        return s.triesLeft();
      },
      { readerName: reader, deadline: Date.now() + 30_000 },
    )
    .catch((e: unknown) => e);
  t.ok(
    isReaderError(err, 'READER_PCSC_UNAVAILABLE') || isReaderError(err, 'READER_CARD_REMOVED'),
    `session ends with a typed error (${(err as Error).message})`,
  );
  const cpu = process.cpuUsage(cpu0);
  const wall = Date.now() - wall0;
  t.ok(
    (cpu.user + cpu.system) / 1000 < wall * 0.5,
    `no busy loop while pcscd was down (cpu ${Math.round((cpu.user + cpu.system) / 1000)} ms over ${wall} ms)`,
  );
  t.ok(states.includes('down'), 'the manager saw pcscd go down');

  // The card reconnects to the new pcscd by itself; the manager re-establishes its context.
  await mgr.waitForCard({ readerName: reader, deadline: Date.now() + 15_000 });
  t.equal(mgr.status().pcsc, 'up');
  const challenge = Buffer.from('after the restart');
  const r = await mgr.withSession((s) => s.authenticate(Buffer.from('1234'), challenge), {
    readerName: reader,
    deadline: Date.now() + 10_000,
  });
  t.ok(
    verify('sha256', challenge, new X509Certificate(card.profileMaterial().certPem).publicKey, r.signature),
    'a following check succeeds',
  );
  t.same(card.forbiddenSelections(), []);
});
