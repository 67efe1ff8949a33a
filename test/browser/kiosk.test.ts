/**
 * The patient kiosk end to end, as a receptionist and a patient would use it: headless Chromium
 * (Debian's, driven by playwright-core) against a real gateway with the kiosk enabled, the virtual
 * My Number card through real pcscd, and the central simulator over mutual TLS. Staff pair the
 * tablet on the admin page; the tablet types the code; the patient puts the card down, types a
 * wrong PIN and the right one, chooses consents; staff see the patient, central saw the consents,
 * and the kiosk page holds nothing. Then the card lifted mid-PIN, the last try, the flow in English,
 * the face check (資格確認限定型) with the staff's confirmation on the admin page, and the idle reset.
 * Every screen's tap targets and width are measured at 800×480, 1280×800 and 800×1280; screenshots
 * go to test-artifacts/kiosk/.
 */
import t, { type Test } from 'tap';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { hasChromium, launchChromium } from '../helpers/chromium.js';
import { gatewayConfig, SHARED_PKI_DIR, sharedPki, waitFor } from '../helpers/gateway.js';
import { captureLogger } from '../helpers/logger.js';
import { ensurePcscd } from '../helpers/pcscd.js';
import { validateConfig } from '../../src/core/config.js';
import { startGateway, type Gateway } from '../../src/daemon/index.js';
import { loadOrCreateTlsIdentity } from '../../src/ops/tls-identity.js';
import { CentralSim } from '../../src/sim/central/server.js';
import { REVOKED_CARD_SERIAL } from '../../src/sim/pki.js';
import { VirtualCard, ensureCardProfiles, VPCD_BASE_PORT } from '../../src/sim/card/index.js';

// Run inside the page by playwright (the project's lib has no DOM types).
// biome-ignore lint/suspicious/noExplicitAny: browser globals
declare const document: any, window: any, localStorage: any;

const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'kiosk');
const READER = 'Virtual PCD 00 00';
const PASSWORD = 'correct horse battery';
const SIZES = {
  small: { width: 800, height: 480 },
  tablet: { width: 1280, height: 800 },
  portrait: { width: 800, height: 1280 },
} as const;

let central: CentralSim | undefined;
let gateway: Gateway | undefined;
let card: VirtualCard | undefined;
let browser: Browser | undefined;
let stateDir = '';
let logs: string[] = [];

if (hasChromium(t) && (await ensurePcscd(t))) {
  await run();
}

async function run(): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await ensureCardProfiles(SHARED_PKI_DIR);
  card = await VirtualCard.create({
    stateDir: SHARED_PKI_DIR,
    profile: 'normal',
    port: VPCD_BASE_PORT,
    resetCounters: true,
  });
  await card.remove();
  const pki = await sharedPki();
  central = await CentralSim.start({ pki, revokedSerials: [REVOKED_CARD_SERIAL] });
  stateDir = t.testdir();
  const base = gatewayConfig(stateDir, central.url, { reader: { enabled: true, readerName: READER } });
  const config = validateConfig({ ...base, kiosk: { enabled: true, host: '127.0.0.1', port: 0 } });
  const captured = captureLogger('debug');
  logs = captured.lines;
  gateway = await startGateway(config, { logger: captured.logger });
  const tls = loadOrCreateTlsIdentity({
    stateDir,
    hostnames: config.tls.hostnames,
    ips: config.tls.ips,
    validityDays: config.tls.validityDays,
    renewDaysBefore: config.tls.renewDaysBefore,
  });
  browser = await launchChromium(tls.spkiSha256);

  t.teardown(async () => {
    await browser?.close();
    await gateway?.close();
    await central?.close();
    await card?.close();
  });
  const adminUrl = `https://localhost:${gateway.adminPort}`;
  const kioskUrl = `https://localhost:${gateway.kioskPort}/kiosk`;

  const newPage = async (size: { width: number; height: number }): Promise<{ ctx: BrowserContext; page: Page }> => {
    const ctx = await browser!.newContext({ locale: 'ja-JP', viewport: size, hasTouch: true });
    const page = await ctx.newPage();
    page.setDefaultTimeout(15_000);
    return { ctx, page };
  };
  const shot = (page: Page, name: string): Promise<Buffer> =>
    page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: false });
  const screenIs = (page: Page, screen: string): Promise<unknown> =>
    page.waitForFunction((s) => document.body.dataset.screen === s, screen, { timeout: 20_000 });
  const title = async (page: Page): Promise<string> => (await page.textContent('main')) ?? '';

  /** Types digits on the page's own pad (no keyboard), then OK. */
  async function typeOnPad(page: Page, digits: string): Promise<void> {
    for (const d of digits) await page.click(`[data-digit="${d}"]`);
    await page.click('#ok');
  }

  /** Every tap target is large enough, and nothing is cut off or overflows the viewport. */
  async function checkLayout(t: Test, page: Page, what: string): Promise<void> {
    const r = await page.evaluate(() => {
      const vw = window.innerWidth;
      const vh = window.innerHeight;
      const small: string[] = [];
      const outside: string[] = [];
      for (const b of document.querySelectorAll('button')) {
        const box = b.getBoundingClientRect();
        if (box.width === 0) continue;
        if (box.height < 44 || box.width < 44) small.push(`${b.textContent} ${box.width}x${box.height}`);
        if (box.left < 0 || box.top < 0 || box.right > vw + 0.5 || box.bottom > vh + 0.5)
          outside.push(`${b.textContent} ${JSON.stringify(box)}`);
      }
      const doc = document.documentElement;
      return { small, outside, scrollH: doc.scrollHeight, scrollW: doc.scrollWidth, vw, vh };
    });
    t.same(r.small, [], `${what}: every tap target at least 44 px`);
    t.same(r.outside, [], `${what}: every button inside the ${r.vw}×${r.vh} viewport`);
    t.ok(r.scrollH <= r.vh && r.scrollW <= r.vw, `${what}: no scrolling needed (${r.scrollW}×${r.scrollH})`);
  }

  /** The Japanese page: no English word in the flow (the switch's own label aside, in the header). */
  async function noEnglish(t: Test, page: Page, what: string): Promise<void> {
    t.notMatch(await page.textContent('main'), /[A-Za-z]/, `${what}: no English on the Japanese page`);
  }
  /** The English page: no Japanese left in the flow (the switch says 日本語, in the header). */
  async function noJapanese(t: Test, page: Page, what: string): Promise<void> {
    t.notMatch(
      await page.textContent('main'),
      /[\u3040-\u30ff\u3400-\u9fff]/,
      `${what}: no Japanese on the English page`,
    );
  }

  /** Swaps the card as a patient would, and waits for pcscd to see it. */
  async function putCard(): Promise<void> {
    await card!.insert();
  }
  async function liftCard(): Promise<void> {
    await card!.remove();
  }
  async function freshCard(): Promise<void> {
    await card!.remove();
    await new Promise((r) => setTimeout(r, 1200));
    await card!.setProfile('normal', true);
    card!.clearLog();
  }

  // The staff's browser stays logged in across the subtests; the tablet keeps its pairing cookie.
  const staff = await newPage(SIZES.tablet);
  const kiosk = await newPage(SIZES.small);
  const large = await newPage(SIZES.tablet);

  await t.test('staff pair the tablet from the admin page; the tablet types the code', async (t) => {
    const { page } = staff;
    const secret = readFileSync(join(stateDir, 'admin-initial-secret'), 'utf8').trim();
    await page.goto(`${adminUrl}/login`);
    await page.fill('#password', secret);
    await Promise.all([page.waitForURL(`${adminUrl}/password`), page.click('#login')]);
    await page.fill('#current', secret);
    await page.fill('#next', PASSWORD);
    await page.fill('#confirm', PASSWORD);
    await Promise.all([page.waitForURL(`${adminUrl}/?done=password`), page.click('#change')]);
    await page.goto(`${adminUrl}/kiosks`);
    await page.fill('input[name=name]', 'counter tablet');
    await page.fill('input[name=reader]', READER);
    await Promise.all([page.waitForNavigation(), page.click('#pair')]);
    const code = (await page.textContent('#pairing-code'))?.trim() ?? '';
    t.match(code, /^\d{8}$/, 'an 8-digit one-time code');
    await shot(page, 'staff-01-pairing-code');

    const k = kiosk.page;
    await k.goto(kioskUrl);
    await screenIs(k, 'pair');
    await shot(k, 'kiosk-800-01-pair');
    await checkLayout(t, k, 'pairing pad at 800×480');
    // a wrong code first: refused, the pad asks again
    const wrong = code === '00000000' ? '11111111' : '00000000';
    await typeOnPad(k, wrong);
    await k.waitForSelector('.warn');
    t.match(await title(k), /コードが違う/);
    await typeOnPad(k, code);
    await screenIs(k, 'card');
    t.match(await title(k), /マイナンバーカードをカードリーダーに置いてください/);
    await noEnglish(t, k, 'card screen');
    t.equal(await k.textContent('#lang'), 'English', 'the switch, in the header, is the one English word');
    const cookie = (await kiosk.ctx.cookies()).find((c) => c.name === '__Host-onshi_kiosk');
    t.ok(cookie?.httpOnly && cookie.secure && cookie.sameSite === 'Strict', 'the token in an HttpOnly cookie');
    t.equal(await k.evaluate(() => document.cookie), '', "the page's script sees no token");
    await shot(k, 'kiosk-800-02-card');
    await checkLayout(t, k, 'card screen at 800×480');

    // the code is spent: a second tablet cannot use it
    await large.page.goto(kioskUrl);
    await screenIs(large.page, 'pair');
    await typeOnPad(large.page, code);
    await large.page.waitForSelector('.warn');
    t.equal(await large.page.evaluate(() => document.body.dataset.screen), 'pair', 'a used code pairs nothing');
  });

  await t.test('wrong PIN, right PIN, consents: staff see the patient, central the consents', async (t) => {
    const k = kiosk.page;
    await freshCard();
    const seenBefore = central!.cardConsentsSeen.length;
    await putCard();
    await screenIs(k, 'pin');
    t.match(await k.textContent('#tries'), /残り 3 回/);
    await noEnglish(t, k, 'PIN pad');
    await shot(k, 'kiosk-800-03-pin');
    await checkLayout(t, k, 'PIN pad at 800×480');
    await typeOnPad(k, '9999');
    await k.waitForSelector('#wrong');
    t.match(await k.textContent('#wrong'), /暗証番号が違います/);
    t.match(await k.textContent('#tries'), /残り 2 回/, 'the tries left went down');
    t.equal(await k.textContent('#dots'), '○○○○', 'the digits typed are gone');
    await noEnglish(t, k, 'wrong PIN');
    await shot(k, 'kiosk-800-04-wrong-pin');
    t.equal(card!.state().authTriesLeft, 2, 'one VERIFY with the wrong PIN, none of its own');
    await typeOnPad(k, '1234');
    await screenIs(k, 'consents');
    await shot(k, 'kiosk-800-05-consents');
    await noEnglish(t, k, 'consents');
    await checkLayout(t, k, 'consents at 800×480');
    await k.click('[data-consent=medication]');
    await k.click('[data-consent=limit]');
    t.equal(await k.getAttribute('[data-consent=medication]', 'aria-pressed'), 'true');
    t.equal(await k.getAttribute('[data-consent=healthCheck]', 'aria-pressed'), 'false');
    await k.click('#send');
    await screenIs(k, 'done');
    t.match(await title(k), /受付にお進みください/);
    await noEnglish(t, k, 'done');
    await shot(k, 'kiosk-800-06-done');

    // what the kiosk page holds: the screen, no name, no birthdate, no validity
    const html = await k.content();
    t.notMatch(html, /カード|一郎|有効|19\d{6}/, 'no patient data in the kiosk DOM');
    const state = await k.evaluate(() => ({ text: document.body.textContent ?? '', storage: localStorage.length }));
    t.notMatch(state.text, /一郎/);
    t.equal(state.storage, 0, 'nothing in localStorage');

    // central received the two consents in the card search
    await waitFor(() => central!.cardConsentsSeen.length > seenBefore, 'the card search at central');
    const sent = central!.cardConsentsSeen.at(-1)!;
    t.match(sent, { limitConsent: '1' }, 'the 限度額 consent reached central');
    const flags = Object.entries(sent).filter(([k, v]) => k !== 'limitConsent' && v === '1');
    t.equal(flags.length, 1, `one consent block given (${JSON.stringify(sent)})`);

    // the staff view: patient, validity, consents sent
    await staff.page.goto(`${adminUrl}/kiosks`);
    const row = staff.page.locator('#kiosk-checks tbody tr').first();
    const text = (await row.textContent()) ?? '';
    t.match(text, /カード　一郎/, 'the patient on the staff view');
    t.match(text, /有効/, 'the validity');
    t.match(text, /medication/, 'the medication consent');
    t.match(text, /limit/, 'the limit consent');
    t.notMatch(text, /healthCheck|treatment|surgery/, 'no consent the patient did not give');
    await shot(staff.page, 'staff-02-kiosk-checks');
    t.notOk(
      logs.some((l) => /"pin"\s*:|9999/.test(l)),
      'no PIN field and not the wrong PIN typed in any gateway log line',
    );
    await screenIs(k, 'card');
    t.pass('the kiosk returned to the first screen');
  });

  await t.test('the card lifted mid-flow ends the check at once', async (t) => {
    const k = kiosk.page;
    await freshCard();
    await putCard();
    await screenIs(k, 'pin');
    await k.click('[data-digit="1"]');
    await liftCard();
    await screenIs(k, 'error');
    t.match(await title(k), /カードが取り外されました/);
    await noEnglish(t, k, 'card removed');
    t.equal(card!.state().authTriesLeft, 3, 'no PIN reached the card');
    await shot(k, 'kiosk-800-07-card-removed');
    await staff.page.goto(`${adminUrl}/kiosks`);
    t.match(await staff.page.locator('#kiosk-checks tbody tr').first().textContent(), /KIOSK_CARD_REMOVED/);
    await screenIs(k, 'card');
  });

  await t.test('one try left: an explicit confirmation before the pad', async (t) => {
    const k = kiosk.page;
    await freshCard();
    await putCard();
    await screenIs(k, 'pin');
    await typeOnPad(k, '9999');
    await k.waitForSelector('#wrong');
    await typeOnPad(k, '8888');
    await k.waitForFunction(() => document.querySelector('#tries')?.textContent?.includes('1'));
    t.match(await title(k), /次に間違えるとロックされます/);
    await noEnglish(t, k, 'last-try confirmation');
    t.notOk(await k.$('[data-digit="1"]'), 'no pad before the confirmation');
    await shot(k, 'kiosk-800-08-last-try');
    await checkLayout(t, k, 'last-try confirmation at 800×480');
    await k.click('#last-yes');
    await k.waitForSelector('[data-digit="1"]');
    await typeOnPad(k, '1234');
    await screenIs(k, 'consents');
    await k.click('#send');
    await screenIs(k, 'done');
    t.equal(card!.state().authTriesLeft, 3, 'the right PIN reset the counter');
    await screenIs(k, 'card');
  });

  await t.test('the English switch: the whole flow in English, and Japanese again for the next patient', async (t) => {
    const k = kiosk.page;
    await freshCard();
    await screenIs(k, 'card');
    await k.click('#lang');
    t.equal(await k.evaluate(() => document.documentElement.lang), 'en');
    t.equal(await k.textContent('#lang'), '日本語', 'the switch leads back');
    t.match(await title(k), /Place your My Number card on the card reader/);
    t.match(await k.textContent('#visual'), /No PIN \(face check by staff\)/);
    await noJapanese(t, k, 'card screen');
    await shot(k, 'kiosk-800-en-01-card');
    await checkLayout(t, k, 'English card screen at 800×480');
    await putCard();
    await screenIs(k, 'pin');
    t.match(await title(k), /Enter your 4-digit PIN/);
    t.match(await k.textContent('#tries'), /3 tries left/);
    t.equal(await k.textContent('#ok'), 'OK');
    await noJapanese(t, k, 'PIN pad');
    await checkLayout(t, k, 'English PIN pad at 800×480');
    await typeOnPad(k, '9999');
    await k.waitForSelector('#wrong');
    t.match(await k.textContent('#wrong'), /Wrong PIN/, 'still English after a screen change');
    t.match(await k.textContent('#tries'), /2 tries left/);
    await typeOnPad(k, '1234');
    await screenIs(k, 'consents');
    t.same(
      await k.$$eval('[data-consent]', (bs) => bs.map((b) => b.textContent)),
      ['Medication', 'Health check-ups', 'Treatment and surgery', 'Limit certificate'],
      'the consents in English',
    );
    t.match(await title(k), /Choose the information you agree to share/);
    await noJapanese(t, k, 'consents');
    await shot(k, 'kiosk-800-en-02-consents');
    await checkLayout(t, k, 'English consents at 800×480');
    await k.click('#send');
    await screenIs(k, 'done');
    t.match(await title(k), /Please go to the reception desk/);
    await noJapanese(t, k, 'done');
    await screenIs(k, 'card');
    t.equal(await k.evaluate(() => document.documentElement.lang), 'ja', 'the next patient starts in Japanese');
    t.match(await title(k), /マイナンバーカードをカードリーダーに置いてください/);
    await noEnglish(t, k, 'card screen after an English check');
  });

  await t.test('visual mode (資格確認限定型): staff confirm the face; the card is read without a PIN', async (t) => {
    const k = kiosk.page;
    await freshCard();
    const seenBefore = central!.cardConsentsSeen.length;
    await screenIs(k, 'card');
    await k.click('#visual');
    await screenIs(k, 'face');
    t.match(await title(k), /係員が顔写真を確認します/);
    await noEnglish(t, k, 'face wait');
    await shot(k, 'kiosk-800-09-face');
    await checkLayout(t, k, 'face wait at 800×480');

    // the staff side: the kiosk is listed as waiting; nothing moves until staff confirm
    await staff.page.goto(`${adminUrl}/kiosks`);
    const waiting = staff.page.locator('form[action="/kiosks/face"]');
    t.equal(await waiting.count(), 1, 'one face to confirm');
    t.match(await waiting.textContent(), /counter tablet \(Virtual PCD 00 00\)/, 'staff see which kiosk waits');
    await shot(staff.page, 'staff-03-face-waiting');
    t.equal(await k.evaluate(() => document.body.dataset.screen), 'face', 'the kiosk waits for staff');
    await Promise.all([staff.page.waitForNavigation(), waiting.locator('button.confirm-face').click()]);
    t.equal(await staff.page.locator('button.confirm-face').count(), 0, 'the confirmation is spent');

    // the kiosk now asks for the card, with no start buttons (the check is running)
    await k.waitForSelector('body[data-screen=card] #cancel');
    t.match(await title(k), /マイナンバーカードをカードリーダーに置いてください/);
    t.notOk(await k.$('#start'), 'no start button while the face-checked check waits for the card');
    await checkLayout(t, k, 'card after the face check at 800×480');
    await putCard();
    await screenIs(k, 'consents');
    await k.click('[data-consent=healthCheck]');
    await k.click('#send');
    await screenIs(k, 'done');
    t.same(
      card!.apduLog.filter((e) => e.command.startsWith('0020')),
      [],
      'no VERIFY reached the card: no PIN in this mode',
    );
    t.equal(card!.state().authTriesLeft, 3, 'the PIN counter untouched');

    await waitFor(() => central!.cardConsentsSeen.length > seenBefore, 'the card search at central');
    const sent = central!.cardConsentsSeen.at(-1)!;
    t.match(sent, { limitConsent: '0' });
    t.equal(Object.values(sent).filter((v) => v === '1').length, 1, `one consent given (${JSON.stringify(sent)})`);
    await staff.page.goto(`${adminUrl}/kiosks`);
    const row = (await staff.page.locator('#kiosk-checks tbody tr').first().textContent()) ?? '';
    t.match(row, /\(visual\)/, 'the staff view names the mode');
    t.match(row, /カード　一郎/, 'the patient on the staff view');
    t.match(row, /有効/, 'the validity');
    t.match(row, /healthCheck/, 'the consent the patient gave');
    t.notMatch(await k.content(), /カード　一郎|一郎|19\d{6}/, 'no patient data on the kiosk');
    await screenIs(k, 'card');
  });

  await t.test('no touch for the idle time: the first screen again, in Japanese, holding nothing', async (t) => {
    const k = kiosk.page;
    await freshCard();
    // a short idle time through the page parameter (the default is kiosk.idleSeconds, 60)
    await k.goto(`${kioskUrl}?idle=5`);
    await screenIs(k, 'card');
    await k.click('#lang');
    await putCard();
    await screenIs(k, 'pin');
    await typeOnPad(k, '1234');
    await screenIs(k, 'consents');
    await k.click('[data-consent=medication]');
    t.equal(await k.getAttribute('[data-consent=medication]', 'aria-pressed'), 'true');
    const seenBefore = central!.cardConsentsSeen.length;
    // now the patient walks away
    await screenIs(k, 'card');
    t.match(await title(k), /マイナンバーカードをカードリーダーに置いてください/, 'the first screen');
    t.equal(await k.evaluate(() => document.documentElement.lang), 'ja', 'in Japanese again');
    const state = await k.evaluate(() => ({
      html: document.body.innerHTML,
      storage: localStorage.length,
    }));
    t.notMatch(state.html, /data-consent|dots|一郎|19\d{6}/, 'no consent choice, no digits, no patient data');
    t.equal(state.storage, 0, 'nothing in localStorage');
    t.equal(central!.cardConsentsSeen.length, seenBefore, 'nothing went to central');
    await staff.page.goto(`${adminUrl}/kiosks`);
    t.match(
      await staff.page.locator('#kiosk-checks tbody tr').first().textContent(),
      /cancelled CANCELLED/,
      'the check was ended, not answered',
    );
    // the next patient's check starts from nothing: no consent carried over
    await k.click('#start');
    await screenIs(k, 'pin');
    await typeOnPad(k, '1234');
    await screenIs(k, 'consents');
    t.same(
      await k.$$eval('[data-consent]', (bs) => bs.map((b) => b.getAttribute('aria-pressed'))),
      ['false', 'false', 'false', 'false'],
      "the last patient's choice is gone",
    );
    await k.click('#cancel');
    await screenIs(k, 'card');
    await k.goto(kioskUrl);
    await screenIs(k, 'card');
  });

  await t.test('the 10-inch tablet (1280×800, and held upright)', async (t) => {
    // pair the large context too, so its screens can be looked at
    const page = staff.page;
    await page.goto(`${adminUrl}/kiosks`);
    await page.fill('input[name=name]', 'tablet 10');
    await page.fill('input[name=reader]', 'Virtual PCD 00 01');
    await Promise.all([page.waitForNavigation(), page.click('#pair')]);
    const code = (await page.textContent('#pairing-code'))?.trim() ?? '';
    const k = large.page;
    await k.goto(kioskUrl);
    await screenIs(k, 'pair');
    await shot(k, 'kiosk-1280-01-pair');
    await checkLayout(t, k, 'pairing pad at 1280×800');
    await typeOnPad(k, code);
    await screenIs(k, 'card');
    await shot(k, 'kiosk-1280-02-card');
    await checkLayout(t, k, 'card screen at 1280×800');
    // the PIN and consent screens at this size, on the first kiosk's reader
    await kiosk.page.setViewportSize(SIZES.tablet);
    await freshCard();
    await putCard();
    await screenIs(kiosk.page, 'pin');
    await shot(kiosk.page, 'kiosk-1280-03-pin');
    await checkLayout(t, kiosk.page, 'PIN pad at 1280×800');
    // the tablet held upright
    await kiosk.page.setViewportSize(SIZES.portrait);
    await checkLayout(t, kiosk.page, 'PIN pad at 800×1280');
    await kiosk.page.setViewportSize(SIZES.tablet);
    await typeOnPad(kiosk.page, '1234');
    await screenIs(kiosk.page, 'consents');
    await shot(kiosk.page, 'kiosk-1280-04-consents');
    await checkLayout(t, kiosk.page, 'consents at 1280×800');
    await kiosk.page.setViewportSize(SIZES.portrait);
    await shot(kiosk.page, 'kiosk-800x1280-consents');
    await checkLayout(t, kiosk.page, 'consents at 800×1280');
    await kiosk.page.click('#cancel');
    await screenIs(kiosk.page, 'card');
    t.equal(card!.state().authTriesLeft, 3, 'cancelled before anything reached central; the counter untouched');
    await liftCard();
  });
}
