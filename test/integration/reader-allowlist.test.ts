// The JPKI APDU allowlist against real pcscd + vpcd + the virtual card (issue 18 item 12): an APDU
// outside it is refused on the production transmit path and never reaches the card.
import t from 'tap';
import { ensurePcscd, VPCD_PORT, READER_NAMES } from '../helpers/pcscd.js';
import { ReaderManager, smartcardBackend } from '../../src/reader/index.js';
import { VirtualCard } from '../../src/sim/card/index.js';
import { cardTestdir } from '../helpers/card-dir.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

t.test('the production backend refuses what is not on the allowlist before pcscd sees it', async (t) => {
  if (!(await ensurePcscd(t))) return;
  const dir = await cardTestdir(t);
  const card = await VirtualCard.create({ stateDir: dir, profile: 'normal', port: VPCD_PORT, resetCounters: true });
  const mgr = new ReaderManager({ pollMs: 500, readerFilter: (n) => n === READER_NAMES[0] });
  await mgr.start();
  t.teardown(async () => {
    await mgr.stop();
    await card.close();
  });
  await card.insert();
  await mgr.waitForCard({ readerName: READER_NAMES[0], deadline: Date.now() + 5000 });
  card.clearLog();

  // The manager's session reads the certificate through the allowlist as usual.
  const { der } = await mgr.withSession((s) => s.readAuthCertificate(), {
    readerName: READER_NAMES[0],
    deadline: Date.now() + 10_000,
  });
  t.ok(der.length > 500, 'the certificate read through the allowlist');

  // The raw backend card: what a bug elsewhere in the reader could try to send.
  const ctx = await smartcardBackend().establish();
  t.teardown(() => ctx.close());
  const raw = await ctx.connect(READER_NAMES[0], 'shared');
  t.teardown(() => raw.disconnect('leave'));
  card.clearLog();
  const forbidden = [
    hex('00A4040C0A D392100031000101 0408'), // 券面事項入力補助AP
    hex('00A4040C0A D392100031000101 0402'), // 券面事項確認AP
    hex('00A4020C020001'), // 署名用 certificate
    hex('00B0810000'), // READ BINARY by short EF id
  ];
  for (const a of forbidden)
    await t.rejects(raw.transmit(a), { code: 'READER_APDU_REFUSED' }, a.toString('hex').toUpperCase());
  t.same(card.apduLog, [], 'none of them reached the card');
  const ok = await raw.transmit(hex('00A4040C0A D392F000260100000001'));
  t.equal(ok.toString('hex'), '9000', 'the JPKI AP is selected as usual');
  t.equal(card.apduLog.length, 1, 'and that one reached the card');
});
