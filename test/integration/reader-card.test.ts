// The reader against real pcscd + vpcd + the virtual My Number card.
import t from 'tap';
import { stopwatch } from '../helpers/timing.js';
import { X509Certificate, verify } from 'node:crypto';
import { ensurePcscd, VPCD_PORT, READER_NAMES } from '../helpers/pcscd.js';
import { ReaderManager, isReaderError, type CardSession } from '../../src/reader/index.js';
import { VirtualCard } from '../../src/sim/card/index.js';
import { cardTestdir } from '../helpers/card-dir.js';

const isVerifyWithData = (hex: string) => hex.startsWith('00200080') && hex.length > 8;
const pinBuf = (s: string) => Buffer.from(s, 'latin1');

t.test('reader ↔ virtual card over pcscd', async (t) => {
  if (!(await ensurePcscd(t))) return;
  const dir = await cardTestdir(t);
  const card = await VirtualCard.create({ stateDir: dir, profile: 'normal', port: VPCD_PORT, resetCounters: true });
  const card1 = await VirtualCard.create({
    stateDir: dir,
    profile: 'expired-recent',
    port: VPCD_PORT + 1,
    resetCounters: true,
  });
  const mgr = new ReaderManager({ pollMs: 500 });
  await mgr.start();
  t.teardown(async () => {
    await mgr.stop();
    await card.close();
    await card1.close();
  });
  t.equal(mgr.status().pcsc, 'up');
  t.ok(
    mgr.status().readers.some((r) => r.name === READER_NAMES[0]),
    'virtual reader listed',
  );

  const slot0 = { readerName: READER_NAMES[0] };
  const fresh = async (profile = 'normal') => {
    await card.remove();
    await card.setProfile(profile, true);
    card.clearLog();
    await card.insert();
    await mgr.waitForCard({ ...slot0, deadline: Date.now() + 5000 });
  };
  const withCard = <T>(fn: (s: CardSession) => Promise<T>) =>
    mgr.withSession(fn, { ...slot0, deadline: Date.now() + 10_000 });

  await t.test('certificate bytes equal the profile certificate; tries left 3', async (t) => {
    await fresh();
    const { der, certificate } = await withCard((s) => s.readAuthCertificate());
    const expected = new X509Certificate(card.profileMaterial().certPem);
    t.same(der, expected.raw, 'same DER bytes');
    t.match(certificate.subject, /CN=C0000001/);
    const apdus = mgr.lastSession!.apdus;
    t.equal(apdus, 2 + Math.ceil(der.length / 256), 'SELECT AP + SELECT EF + ceil(len/256) reads, no header read');
    t.equal(await withCard((s) => s.triesLeft()), 3);
    t.equal(card.state().authTriesLeft, 3);
  });

  await t.test('correct PIN: the signature verifies against the certificate', async (t) => {
    await fresh();
    const challenge = Buffer.from('server challenge 0123456789');
    const pin = pinBuf('1234');
    const { signature, triesLeftBefore } = await withCard((s) => s.authenticate(pin, challenge));
    t.equal(triesLeftBefore, 3);
    t.ok(
      pin.every((b) => b === 0),
      'PIN buffer wiped',
    );
    const cert = new X509Certificate(card.profileMaterial().certPem);
    t.ok(verify('sha256', challenge, cert.publicKey, signature), 'sha256WithRSA signature verifies');
    t.equal(mgr.lastSession!.apdus, 6, 'SELECT AP, SELECT 0018, tries, VERIFY, SELECT 0017, SIGN');
    t.equal(card.apduLog.filter((e) => isVerifyWithData(e.command)).length, 1, 'exactly one VERIFY');
    t.notOk(
      card.apduLog.some((e) => e.command.includes('31323334') && !isVerifyWithData(e.command)),
      'PIN only inside the VERIFY',
    );
  });

  await t.test('wrong PIN: typed error with tries left, one VERIFY only', async (t) => {
    await fresh();
    const e = await withCard((s) => s.authenticate(pinBuf('9999'), Buffer.from('c'))).catch((x: unknown) => x);
    t.ok(isReaderError(e, 'CARD_PIN_WRONG'));
    t.match((e as { details: unknown }).details, { triesLeft: 2 });
    t.equal(card.apduLog.filter((x) => isVerifyWithData(x.command)).length, 1, 'no automatic retry');
    t.notOk(
      card.apduLog.some((x) => x.command.startsWith('802A')),
      'no SIGN after a wrong PIN',
    );
    t.equal(await withCard((s) => s.triesLeft()), 2);
  });

  await t.test('three wrong PINs block the card; the gateway never sends an unrequested VERIFY', async (t) => {
    await fresh();
    const attempt = (pin: string, confirmLastTry = false) =>
      withCard((s) => s.authenticate(pinBuf(pin), Buffer.from('c'), { confirmLastTry })).catch(
        (x: unknown) => x as { code: string; details: { triesLeft?: number } },
      );
    t.match(await attempt('0000'), { code: 'CARD_PIN_WRONG', details: { triesLeft: 2 } });
    t.match(await attempt('0001'), { code: 'CARD_PIN_WRONG', details: { triesLeft: 1 } });
    const before = card.apduLog.filter((x) => isVerifyWithData(x.command)).length;
    t.match(
      await attempt('1234'),
      { code: 'CARD_PIN_CONFIRM_REQUIRED', details: { triesLeft: 1 } },
      'last try needs confirmation, even for the right PIN',
    );
    t.equal(
      card.apduLog.filter((x) => isVerifyWithData(x.command)).length,
      before,
      'no VERIFY sent without confirmation',
    );
    t.match(await attempt('0002', true), { code: 'CARD_PIN_BLOCKED' }, 'confirmed last try, wrong → blocked');
    t.match(await attempt('1234', true), { code: 'CARD_PIN_BLOCKED' }, 'blocked: refused');
    t.equal(
      card.apduLog.filter((x) => isVerifyWithData(x.command)).length,
      3,
      'exactly the three VERIFYs the user asked for',
    );
    t.equal(card.state().authTriesLeft, 0);
    t.equal(await withCard((s) => s.triesLeft()), 0);
  });

  await t.test('blocked profile: CARD_PIN_BLOCKED without any VERIFY carrying a PIN', async (t) => {
    await fresh('blocked');
    t.equal(await withCard((s) => s.triesLeft()), 0);
    const e = await withCard((s) => s.authenticate(pinBuf('1234'), Buffer.from('c'), { confirmLastTry: true })).catch(
      (x: unknown) => x,
    );
    t.ok(isReaderError(e, 'CARD_PIN_BLOCKED'));
    t.equal(card.apduLog.filter((x) => isVerifyWithData(x.command)).length, 0);
  });

  await t.test('PIN format error: nothing sent, no try spent', async (t) => {
    await fresh();
    const e = await withCard((s) => s.authenticate(pinBuf('12a4'), Buffer.from('c'))).catch((x: unknown) => x);
    t.ok(isReaderError(e, 'CARD_PIN_FORMAT'));
    t.equal(card.apduLog.length, 0, 'no APDU at all');
    t.equal(card.state().authTriesLeft, 3);
  });

  const steps: Array<[string, (hex: string) => boolean, (s: CardSession) => Promise<unknown>]> = [
    ['SELECT AP', (h) => h.startsWith('00A4040C'), (s) => s.readAuthCertificate()],
    ['READ', (h) => h.startsWith('00B0'), (s) => s.readAuthCertificate()],
    ['VERIFY', (h) => isVerifyWithData(h), (s) => s.authenticate(pinBuf('1234'), Buffer.from('c'))],
    ['SIGN', (h) => h.startsWith('802A'), (s) => s.authenticate(pinBuf('1234'), Buffer.from('c'))],
  ];
  for (const [name, match, op] of steps) {
    await t.test(`card pulled during ${name} → READER_CARD_REMOVED quickly`, async (t) => {
      await fresh();
      card.removeOn((a) => match(a.toString('hex').toUpperCase()));
      const clock = stopwatch();
      const e = await withCard(op).catch((x: unknown) => x);
      const ms = clock.ms();
      t.ok(isReaderError(e, 'READER_CARD_REMOVED'), `got ${(e as Error).message}`);
      t.ok(ms < clock.allowance(3000, 0), `within 3 s + 3 × lag (${ms.toFixed(0)} ms)`);
      t.equal(card.state().inserted, false);
    });
  }

  await t.test('a card that stops answering → READER_TIMEOUT, no hang', async (t) => {
    await fresh();
    card.setHook((a) => (a[1] === 0xb0 ? 'hang' : undefined));
    const clock = stopwatch();
    const e = await mgr
      .withSession((s) => s.readAuthCertificate(), { ...slot0, apduTimeoutMs: 800 })
      .catch((x: unknown) => x);
    t.ok(isReaderError(e, 'READER_TIMEOUT'));
    t.ok(clock.ms() < clock.allowance(800, 1700), `no hang (${clock.ms().toFixed(0)} ms)`);
    card.setHook(undefined);
    await card.remove(); // frees the vpcd slot that waits for the answer
  });

  await t.test('both slots work independently', async (t) => {
    await fresh();
    await card1.remove();
    await card1.setProfile('expired-recent', true);
    await card1.insert();
    await mgr.waitForCard({ readerName: READER_NAMES[1], deadline: Date.now() + 5000 });
    const a = await withCard((s) => s.readAuthCertificate());
    const b = await mgr.withSession((s) => s.readAuthCertificate(), { readerName: READER_NAMES[1] });
    t.match(a.certificate.subject, /C0000001/);
    t.match(b.certificate.subject, /C0000002/);
    t.ok(new Date(b.certificate.validTo).getTime() < Date.now(), 'expired-recent is expired');
    const sig = await mgr.withSession((s) => s.authenticate(pinBuf('1234'), Buffer.from('x')), {
      readerName: READER_NAMES[1],
    });
    t.ok(verify('sha256', Buffer.from('x'), b.certificate.publicKey, sig.signature));
    t.ok(card1.apduLog.length > 0 && card1.apduLog.every((e) => e.slot === 1));
  });

  t.same(card.forbiddenSelections(), [], 'slot 0: the 券面 APs were never selected');
  t.same(card1.forbiddenSelections(), [], 'slot 1: the 券面 APs were never selected');
});
