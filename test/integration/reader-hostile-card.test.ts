// Hostile cards through real pcscd + vpcd: every malformed, truncated or oversized answer and every
// wrong status word becomes a typed ReaderError within its bound, and the reader then reads and
// authenticates the next, normal card as if nothing happened.
// Next to another pcscd, run it in a private mount namespace with other ports:
//   unshare -m sh -c 'mkdir -p /run/pcscd && mount -t tmpfs tmpfs /run/pcscd && ONSHI_VPCD_PORT=36963 npx tap test/integration/reader-hostile-card.test.ts'
import t, { type Test } from 'tap';
import { X509Certificate, verify } from 'node:crypto';
import { ensurePcscd, VPCD_PORT, READER_NAMES } from '../helpers/pcscd.js';
import { stopwatch } from '../helpers/timing.js';
import { READER_ERROR_CODES, ReaderError, ReaderManager, type CardSession } from '../../src/reader/index.js';
import { HOSTILE_PROFILE_NAMES, VirtualCard } from '../../src/sim/card/index.js';
import { cardTestdir } from '../helpers/card-dir.js';

/**
 * What the reader must make of each profile over real PC/SC. Where PC/SC itself refuses the answer
 * (more bytes than the 258-byte receive buffer of a short APDU), the code is the transport's
 * READER_IO rather than the parser's.
 */
const EXPECTED: Record<string, { op: 'cert' | 'auth'; codes: string[] }> = {
  'hostile-short-answer': { op: 'cert', codes: ['CARD_BAD_RESPONSE'] },
  'hostile-cut-cert': { op: 'cert', codes: ['CARD_BAD_CERTIFICATE'] },
  'hostile-oversized-read': { op: 'cert', codes: ['READER_IO'] },
  'hostile-bad-der': { op: 'cert', codes: ['CARD_BAD_RESPONSE'] },
  'hostile-huge-der': { op: 'cert', codes: ['CARD_BAD_RESPONSE'] },
  'hostile-garbage-cert': { op: 'cert', codes: ['CARD_BAD_CERTIFICATE'] },
  'hostile-select-sw': { op: 'cert', codes: ['CARD_UNEXPECTED_SW'] },
  'hostile-tries-9000': { op: 'auth', codes: ['CARD_BAD_RESPONSE'] },
  'hostile-verify-sw': { op: 'auth', codes: ['CARD_UNEXPECTED_SW'] },
  'hostile-short-signature': { op: 'auth', codes: ['CARD_BAD_RESPONSE'] },
  'hostile-oversized-signature': { op: 'auth', codes: ['READER_IO'] },
  'hostile-garbage': { op: 'cert', codes: [...READER_ERROR_CODES] },
};

t.test('hostile cards over pcscd, then a normal card', async (t) => {
  if (!(await ensurePcscd(t))) return;
  t.same(Object.keys(EXPECTED).sort(), [...HOSTILE_PROFILE_NAMES].sort(), 'every hostile profile is exercised');
  const dir = await cardTestdir(t);
  // VPCD_PORT follows ONSHI_VPCD_PORT, like the helper's pcscd: the card connects where that pcscd listens.
  const card = await VirtualCard.create({ stateDir: dir, profile: 'normal', port: VPCD_PORT, resetCounters: true });
  const mgr = new ReaderManager({ pollMs: 500 });
  await mgr.start();
  t.teardown(async () => {
    await mgr.stop();
    await card.close();
  });
  const slot0 = { readerName: READER_NAMES[0] };

  const insert = async (profile: string) => {
    await card.remove();
    await card.setProfile(profile, true);
    card.clearLog();
    await card.insert();
    await mgr.waitForCard({ ...slot0, deadline: Date.now() + 5000 });
  };
  const session = <T>(fn: (s: CardSession) => Promise<T>) =>
    mgr.withSession(fn, { ...slot0, deadline: Date.now() + 10_000, apduTimeoutMs: 3000 });

  const normalCardWorks = async (t: Test, after: string) => {
    await insert('normal');
    const { der } = await session((s) => s.readAuthCertificate());
    t.same(
      der,
      new X509Certificate(card.profileMaterial().certPem).raw,
      `after ${after}: the normal card's certificate reads`,
    );
    const pin = Buffer.from('1234', 'latin1');
    const { signature } = await session((s) => s.authenticate(pin, Buffer.from('after hostile')));
    t.ok(
      verify(
        'sha256',
        Buffer.from('after hostile'),
        new X509Certificate(card.profileMaterial().certPem).publicKey,
        signature,
      ),
      `after ${after}: its signature verifies`,
    );
  };

  for (const name of HOSTILE_PROFILE_NAMES) {
    await t.test(name, async (t) => {
      const { op, codes } = EXPECTED[name]!;
      await insert(name);
      const pin = Buffer.from('1234', 'latin1');
      const clock = stopwatch();
      const e = await session<unknown>((s) =>
        op === 'cert' ? s.readAuthCertificate() : s.authenticate(pin, Buffer.from('c')),
      ).then(
        () => undefined,
        (x: unknown) => x,
      );
      const ms = clock.ms();
      t.ok(
        e instanceof ReaderError,
        `a ReaderError: ${e instanceof Error ? `${(e as ReaderError).code ?? e.name} ${e.message}` : String(e)}`,
      );
      t.ok(
        codes.includes((e as ReaderError).code),
        `code ${(e as ReaderError).code} is one of ${codes.length > 3 ? 'the reader codes' : codes.join(', ')}`,
      );
      t.ok(ms < clock.allowance(5000, 0), `within 5 s + 3 × lag (${ms.toFixed(0)} ms)`);
      if (op === 'auth')
        t.ok(
          pin.every((b) => b === 0),
          'PIN wiped',
        );
      t.ok(
        card.apduLog.filter((x) => x.command.startsWith('00200080') && x.command.length > 8).length <= 1,
        'at most one VERIFY with a PIN',
      );
      t.same(card.forbiddenSelections(), [], 'no forbidden SELECT while confused');
      await normalCardWorks(t, name);
    });
  }
  t.equal(mgr.status().pcsc, 'up', 'pcscd connection still up');
});
