/**
 * マイナ保険証 use and checks by method (issue 19, items 1 and 2), through the real gateway (in
 * process, with the central simulator) in Debian's Chromium: checks by numbers through the
 * WebSocket API, the card methods (PIN, visual check) fed into the daemon's own store as the
 * recorder writes them; then /usage (counts, distinct patients, card share, the charts, both CSVs)
 * and /history's chart by method, at 1280 and 390 px, ja and en. And the whole path with the
 * virtual card: the sandbox daemon (its own process, pcscd), a card check with PIN, one with a
 * visual check and one by numbers, counted on its /usage page (needs the build, `dist/`).
 * Screenshots go to test-artifacts/browser/usage-*.png.
 */
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { daysOf, HISTORY_STEP_MS, jstMonth } from '../../src/cache/index.js';
import { englishOn, PHONE, shot, sidewaysOverflow, smallTapTargets } from '../helpers/admin-browser.js';
import { hasChromium, launchChromium } from '../helpers/chromium.js';
import { GatewayClient } from '../../src/client/index.js';
import { readTlsIdentity } from '../../src/ops/tls-identity.js';
import { type Harness, startHarness, waitFor } from '../helpers/gateway.js';
import { ensurePcscd } from '../helpers/pcscd.js';
import { BIN, startSandboxProcess } from '../helpers/sandbox-cli.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const TAPS = 'nav a, nav button, .tabs a, .actions a, a.month';

const TARO = { insurerNumber: '06139992', symbol: 'テスト', number: '12345', branch: '00', birthdate: '19800401' };
const ICHIRO = { insurerNumber: '01130012', symbol: '１２３', number: '4567', branch: '01', birthdate: '19750315' };
const HANAKO = { insurerNumber: '139998', symbol: 'ﾃｽﾄ', number: '7777', branch: '01', birthdate: '19880720' };
const NOBODY = { insurerNumber: '06139992', symbol: 'テスト', number: '99999', branch: '00', birthdate: '19800401' };

if (hasChromium(t)) {
  t.test('マイナ保険証 use and checks by method, through the real gateway', main);
  if (await ensurePcscd(t)) t.test('card checks with PIN and with a visual check, through the virtual card', withCard);
}

async function loginAs(page: Page, base: string, secret: string): Promise<void> {
  await page.goto(`${base}/login`);
  await page.fill('#password', secret);
  await Promise.all([page.waitForURL(`${base}/password`), page.click('#login')]);
  await page.fill('#current', secret);
  await page.fill('#next', 'usage test passphrase');
  await page.fill('#confirm', 'usage test passphrase');
  await Promise.all([page.waitForURL(`${base}/?done=password`), page.click('#change')]);
}

async function fitsPhone(t: Test, page: Page, what: string): Promise<void> {
  t.equal(await sidewaysOverflow(page), 0, `${what}: no sideways scroll at 390 px`);
  t.same(await smallTapTargets(page, TAPS), [], `${what}: tap targets of 44 px at least`);
}

/** A GET from inside the page (its session, its trust in the certificate): status, headers, bytes. */
async function fetchIn(
  page: Page,
  url: string,
): Promise<{ status: number; type: string | null; disposition: string | null; body: Buffer }> {
  const r = await page.evaluate<{ status: number; type: string | null; disposition: string | null; bytes: number[] }>(
    `(async () => {
      const r = await fetch(${JSON.stringify(url)});
      return { status: r.status, type: r.headers.get('content-type'), disposition: r.headers.get('content-disposition'),
        bytes: Array.from(new Uint8Array(await r.arrayBuffer())) };
    })()`,
  );
  return { status: r.status, type: r.type, disposition: r.disposition, body: Buffer.from(r.bytes) };
}

/** The cells of the table row `key` (a month or a day), by column. */
async function rowCells(page: Page, table: string, key: string): Promise<string[]> {
  return (await page.locator(`#${table} tr[data-key="${key}"] td`).allTextContents()).map((s) => s.trim());
}

async function main(t: Test): Promise<void> {
  const h: Harness = await startHarness();
  t.teardown(() => h.close());
  const base = `https://localhost:${h.gateway.adminPort}`;
  const secret = readFileSync(join(h.stateDir, 'admin-initial-secret'), 'utf8').trim();

  // Checks by numbers, through the WebSocket API: 太郎 twice, 一郎, 花子; one nobody central knows.
  const client = await h.connect();
  const numbers = async (query: typeof TARO): Promise<unknown> =>
    client.request({ type: 'inquiry.numbers', query }).catch((e: unknown) => e);
  for (const q of [TARO, TARO, ICHIRO, HANAKO]) {
    const a = (await numbers(q)) as { result?: { source?: string; status?: string } };
    t.match(a.result, { source: 'central', status: '1' }, 'answered by central');
  }
  const nobody = (await numbers(NOBODY)) as { result?: { validity?: string } };
  t.equal(nobody.result?.validity, '4', 'the nobody: 該当資格なし, not a use');

  // The card methods: what the recorder writes for a card check with PIN (太郎) and one with a visual check (花子).
  const store = h.gateway.store;
  await store.usage.record({ method: 'card_pin', patient: TARO });
  await store.usage.record({ method: 'card_visual', patient: HANAKO });
  for (const mode of ['card', 'card-visual'] as const)
    await store.audit.append({
      kind: 'check',
      actor: 'card-test',
      action: 'inquiry.card',
      mode,
      outcome: 'validity:1',
      source: 'central',
    });
  const month = jstMonth(Date.now());
  await waitFor(() => store.usage.months().some((m) => m.month === month && m.numbers === 4), 'the 4 numbers uses');
  await waitFor(
    () => store.audit.list({ limit: 50, personal: false }).filter((e) => e.kind === 'check').length === 7,
    'the 7 check entries in the audit chain',
  );
  // the history job runs every 5 minutes: sample now what it would record
  await store.history.sample(0, Date.now() + HISTORY_STEP_MS);

  const browser: Browser = await launchChromium(h.gateway.tls!.spkiSha256);
  t.teardown(() => browser.close());
  const context = await browser.newContext({ locale: 'ja-JP', viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  await loginAs(page, base, secret);

  // /usage, in Japanese at 1280 px
  await page.click('nav a[href="/usage"]');
  await page.waitForURL(`${base}/usage`);
  t.match(await page.textContent('#usage-note'), /社会保険診療報酬支払基金がレセプト.*この装置が行った資格確認の件数/);
  t.same(
    await rowCells(page, 'usage-months', month),
    [`${month.slice(0, 4)}年${Number(month.slice(5))}月`, '1', '1', '4', '6', '33.3%', '3', '2'],
    'this month: PIN 1, visual 1, numbers 4 (the nobody not counted), 3 patients, 2 of them by card',
  );
  t.equal(await page.locator('svg.chart.usage').count(), 2, 'the months chart and the days chart');
  t.equal(await page.locator('svg.chart.usage').first().locator('text.share').count(), 1, "this month's share");
  t.match(
    await page.textContent('#usage-month-summary'),
    /カード 2件（暗証番号 1件、目視確認 1件）、番号 4件、カードの割合 33\.3%、患者 3人（うちカード 2人）/,
  );
  const today = new Date(Date.now() + 9 * 3_600_000).toISOString().slice(0, 10);
  t.same((await rowCells(page, 'usage-days', today)).slice(1), ['1', '1', '4', '6', '33.3%', '3', '2'], 'today');
  t.same(await englishOn(page), [], '/usage in Japanese');
  await shot(page, 'usage-ja-desktop');

  // the CSVs: a BOM, the header in the page's language, one row per month / per day with a check
  // the months' CSV as staff get it: the link downloads the file
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv-months')]);
  t.equal(download.suggestedFilename(), 'mynahoken-usage-months.csv');
  const body = readFileSync((await download.path())!);
  t.same([...body.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'UTF-8 with a BOM');
  const lines = body.toString('utf8').slice(1).trimEnd().split('\r\n');
  t.same(lines, [
    '月,カード（暗証番号）,カード（目視確認）,番号（資格確認書・被保険者証）,合計,カードの割合,患者数,うちカードで確認した患者',
    `${month},1,1,4,6,33.3%,3,2`,
  ]);
  const months = await fetchIn(page, '/usage.csv');
  t.equal(months.status, 200);
  t.match(months.type, /^text\/csv; charset=utf-8/);
  t.equal(months.disposition, 'attachment; filename="mynahoken-usage-months.csv"');
  const days = await fetchIn(page, `/usage.csv?month=${month}`);
  t.equal(days.disposition, `attachment; filename="mynahoken-usage-${month}.csv"`);
  const dayLines = days.body
    .toString('utf8')
    .replace(/^\uFEFF/, '')
    .trimEnd()
    .split('\r\n');
  t.equal(dayLines[0]!.split(',')[0], '日');
  t.equal(dayLines.length, 1 + daysOf(month).length, 'every day of the month');
  t.ok(dayLines.includes(`${today},1,1,4,6,33.3%,3,2`), "today's line");

  // the previous month: nothing counted, said in Japanese
  await page.click('#usage-prev');
  t.ok(await page.locator('#usage-days-empty').isVisible(), 'an empty month says so');
  t.same(await englishOn(page), [], 'an empty month in Japanese');

  // /history: checks per hour by method beside the by-source chart
  await page.goto(`${base}/history`);
  const charts = page.locator('svg.chart');
  t.equal(await charts.count(), 5, 'the line, checks by source, by method, answer times, outbox');
  const byMethod = page.locator('svg.chart[aria-label*="目視確認"]');
  t.equal(await byMethod.locator('rect.c-pin').count(), 1);
  t.equal(await byMethod.locator('rect.c-visual').count(), 1);
  t.match(await byMethod.locator('rect.c-numbers title').textContent(), / 5$/, 'the 5 checks by numbers this hour');
  t.same(await englishOn(page), [], '/history in Japanese');
  await shot(page, 'usage-history-ja-desktop');

  // English at 1280 px
  await page.goto(`${base}/usage`);
  await page.click('#lang-switch');
  await page.waitForURL(`${base}/usage`);
  t.match(await page.textContent('#usage-note'), /official .* rate is computed by the Health Insurance Claims Review/);
  t.match(await page.textContent('#usage-note'), /its own count/);
  t.equal((await rowCells(page, 'usage-months', month))[5], '33.3%');
  const enCsv = (await fetchIn(page, '/usage.csv')).body.toString('utf8').replace(/^\uFEFF/, '');
  t.match(enCsv, /^Month,Card with PIN,/, 'the CSV in the page language');
  await shot(page, 'usage-en-desktop');

  // The phone, ja and en
  for (const lang of ['ja', 'en'] as const) {
    const phone = await browser.newContext({
      locale: 'ja-JP',
      viewport: PHONE,
      storageState: await context.storageState(),
    });
    const p = await phone.newPage();
    p.setDefaultTimeout(10_000);
    await p.goto(`${base}/lang/${lang}?next=/usage`);
    await p.waitForURL(`${base}/usage`);
    await fitsPhone(t, p, `/usage (${lang})`);
    t.ok(await p.locator(`#usage-months tr[data-key="${month}"]`).isVisible(), 'the month row on the phone');
    await shot(p, `usage-${lang}-phone`);
    await p.goto(`${base}/history`);
    await fitsPhone(t, p, `/history (${lang})`);
    await phone.close();
  }
}

async function withCard(t: Test): Promise<void> {
  t.setTimeout(240_000);
  const run = promisify(execFile);
  const { state, ready } = await startSandboxProcess(t, 'onshi-usage-card-');
  const env = { ...process.env, ONSHI_SIM_LINE: ready.line!, ONSHI_SIM_CARDS: ready.cards! };
  await run(process.execPath, [BIN, 'sim', 'card', 'insert', '--profile', 'normal', '--reset'], { env });
  const client = await GatewayClient.connect(ready.ws!, ready.token!);
  t.teardown(() => client.close());
  const card = (mode: 'pin' | 'visual'): Promise<Record<string, unknown>> => {
    const id = `card-${mode}-${Math.random().toString(36).slice(2)}`;
    return client.request(
      { type: 'inquiry.card', id, mode, deadlineMs: 30_000 },
      {
        onProgress: (m) => {
          if (m.type === 'pin.required')
            void client.request({ type: 'pin.submit', inquiryId: id, pin: '1234' }).catch(() => {});
        },
      },
    );
  };
  t.match((await card('pin')).result, { source: 'central', validity: '1' }, 'the card with its PIN');
  t.match((await card('visual')).result, { source: 'central', validity: '1' }, 'the card with a visual check');
  t.match(
    (await client.request({ type: 'inquiry.numbers', query: TARO })).result,
    { source: 'central', validity: '1' },
    'by numbers',
  );

  const tls = readTlsIdentity(join(state, 'gateway'))!;
  const browser = await launchChromium(tls.spkiSha256);
  t.teardown(() => browser.close());
  const page = await (await browser.newContext({ locale: 'ja-JP' })).newPage();
  page.setDefaultTimeout(10_000);
  const base = ready.admin!.replace(/\/$/, '');
  await loginAs(page, base, ready['admin-secret']!);
  const month = jstMonth(Date.now());
  // the counts are written after the answers (deferred): the page shows them within moments
  await waitFor(
    async () => {
      await page.goto(`${base}/usage`);
      return (await rowCells(page, 'usage-months', month))[4] === '3';
    },
    'the three checks on /usage',
    10_000,
  );
  t.same(
    (await rowCells(page, 'usage-months', month)).slice(1),
    ['1', '1', '1', '3', '66.7%', '2', '1'],
    'PIN 1, visual 1, numbers 1; two patients, the card holder checked by card',
  );
  await shot(page, 'usage-card-ja-desktop');
}
