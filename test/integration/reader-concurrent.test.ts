// Concurrent card checks with short deadlines against real pcscd + vpcd + the virtual card (issue
// 18 item 5): sessions on one slot never reset the card under each other, and no raw PC/SC text
// reaches a caller. The card stays in the reader throughout.
import t from 'tap';
import { ensurePcscd, VPCD_PORT, READER_NAMES } from '../helpers/pcscd.js';
import { ReaderManager, isReaderError } from '../../src/reader/index.js';
import { VirtualCard } from '../../src/sim/card/index.js';
import { cardTestdir } from '../helpers/card-dir.js';

t.test('concurrent sessions with short deadlines: no CARD_REMOVED, CARD_RESET or READER_IO', async (t) => {
  if (!(await ensurePcscd(t))) return;
  const dir = await cardTestdir(t);
  const card = await VirtualCard.create({ stateDir: dir, profile: 'normal', port: VPCD_PORT, resetCounters: true });
  const slot = READER_NAMES[0];
  const mgr = new ReaderManager({ pollMs: 500, readerFilter: (n) => n === slot });
  await mgr.start();
  t.teardown(async () => {
    await mgr.stop();
    await card.close();
  });
  await card.insert();
  await mgr.waitForCard({ readerName: slot, deadline: Date.now() + 5000 });

  const codes: string[] = [];
  const messages: string[] = [];
  const one = async (deadlineMs: number, pinCheck: boolean) => {
    try {
      await mgr.withSession(
        async (s) => {
          await s.readAuthCertificate();
          if (pinCheck) await s.triesLeft();
        },
        { readerName: slot, deadline: Date.now() + deadlineMs },
      );
      codes.push('ok');
    } catch (e) {
      codes.push(isReaderError(e) ? e.code : `untyped: ${String(e)}`);
      messages.push((e as Error).message);
    }
  };
  const runs: Promise<void>[] = [];
  for (let i = 0; i < 40; i++) {
    runs.push(one(i % 2 === 0 ? 40 + (i % 5) * 20 : 3000, i % 3 === 0));
    await new Promise((r) => setTimeout(r, 15));
  }
  await Promise.all(runs);
  await new Promise((r) => setTimeout(r, 500));
  await one(10_000, true);
  t.ok(codes.includes('ok'), `some checks got through (${codes.filter((c) => c === 'ok').length})`);
  t.same(
    codes.filter((c) => !['ok', 'READER_BUSY', 'READER_TIMEOUT'].includes(c)),
    [],
    `only ok, busy or timeout (${[...new Set(codes)].join(', ')})`,
  );
  t.same(
    messages.filter((m) => /PC\/SC:/.test(m)),
    [],
    'no raw PC/SC text',
  );
  t.equal(codes.at(-1), 'ok', 'the reader works afterwards');
  t.equal(card.state().authTriesLeft, 3, 'no try spent');
});
