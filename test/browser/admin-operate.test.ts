/**
 * The admin page as IT staff operate the gateway, in Debian's Chromium (issue 19): the line's last
 * 24 hours and 7 days (a one-minute cut on the timeline with its length, live; the tunnel's events;
 * central's answer time per hour), settings reviewed before saving with the changes that can lock
 * staff out, the restart through the daemon's seam, the confirmations and the idle logout with a
 * dashboard open, and receipt-computer connections (unique names, scopes, last seen, copy,
 * delete). Each at 1280 px and 390 px: no sideways scroll, tap targets of 44 px.
 * Screenshots go to test-artifacts/browser/op-*.png.
 */
import t, { type Test } from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { LineEvent } from '../../src/admin/backend.js';
import { HISTORY_STEP_MS, type HistoryRow } from '../../src/cache/index.js';
import {
  adminHarness,
  englishOn,
  firstLogin,
  openBrowser,
  shot,
  sidewaysOverflow,
  smallTapTargets,
  submit,
  PHONE,
} from '../helpers/admin-browser.js';
import { hasChromium } from '../helpers/chromium.js';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

if (hasChromium(t)) {
  t.test("the line's past: a one-minute cut with its length, live; the tunnel; answer times per hour", linePictures);
  t.test('settings: a diff before saving, lockout warnings, the restart through its seam', settings);
  t.test('accounts: confirmations, the menu link, the idle logout with a dashboard open', accounts);
  t.test('receipt computers: unique names, scopes, last seen and connected, copy, delete', clients);
}

/** No sideways scroll at 390 px and every tap target of `selector` at least 44 px. */
async function fitsPhone(t: Test, page: Page, what: string, selector: string): Promise<void> {
  t.equal(await sidewaysOverflow(page), 0, `${what}: no sideways scroll at 390 px`);
  t.same(await smallTapTargets(page, selector), [], `${what}: tap targets of 44 px at least`);
}

async function linePictures(t: Test): Promise<void> {
  const now = Date.now();
  const cut = now - 2 * HOUR; // the line went down for a minute, two hours ago
  const slow = now - 3 * DAY; // and was slow for 20 minutes three days ago
  // The store as the daemon keeps it: a row every 5 minutes for 8 days (so the gateway ran all along),
  // central's answers all between 200 and 300 ms; the cut's interval answered from the cache.
  const rows: HistoryRow[] = [];
  for (let at = Math.floor((now - 8 * DAY) / HISTORY_STEP_MS) * HISTORY_STEP_MS; at < now; at += HISTORY_STEP_MS) {
    const inCut = at <= cut && cut < at + HISTORY_STEP_MS;
    rows.push(
      inCut
        ? { at, central: 1, cache: 3, none: 0, outbox: 3, latency: [0, 0, 1] }
        : { at, central: 2, cache: 0, none: 0, outbox: 0, latency: [0, 0, 2] },
    );
  }
  const events: LineEvent[] = [
    { at: now - 8 * DAY, kind: 'state', state: 'up', reason: 'starting' },
    { at: slow, kind: 'state', state: 'degraded', reason: 'central answered in 6200 ms (slow above 5000 ms)' },
    { at: slow + 20 * MIN, kind: 'state', state: 'up', reason: 'central answered' },
    { at: cut, kind: 'tunnel', state: 'down', reason: 'CHILD_SA DELETING, IKE_SA ESTABLISHED' },
    { at: cut, kind: 'state', state: 'down', reason: 'line down: CHILD_SA DELETING, IKE_SA ESTABLISHED' },
    { at: cut + MIN, kind: 'tunnel', state: 'up', reason: 'CHILD_SA installed' },
    { at: cut + MIN, kind: 'state', state: 'up', reason: 'central answered' },
  ];
  const asked: number[] = [];
  const h = await adminHarness(t, {
    backend: () => ({
      listHistory: async (since) => rows.filter((r) => r.at >= since),
      // as the store answers: the entries since `since`, led by the last state before it
      listLineEvents: async (since) => {
        asked.push(since);
        const before = events.filter((e) => e.kind === 'state' && e.at < since).at(-1);
        return [...(before ? [before] : []), ...events.filter((e) => e.at >= since)];
      },
    }),
  });
  h.setStatus({
    startedAt: new Date(now - 8 * DAY).toISOString(),
    line: { state: 'up', since: new Date(cut + MIN).toISOString() },
  });
  const { page } = await openBrowser(t, h);
  await firstLogin(page, h);
  await page.goto(h.url);

  // The dashboard: the last 24 hours, the cut with its length and why, the tunnel's marks.
  const block = page.locator('[data-timeline]');
  t.equal(await block.locator('svg.timeline rect.s-down').count(), 1, 'one stretch down on the timeline');
  const down = block.locator('tr[data-state=down]');
  t.match(await down.textContent(), /切断.*60秒.*回線断: CHILD_SA 削除中/, 'the cut: 60 seconds, and why');
  t.equal(await block.locator('polygon.t-down').count(), 1, "the tunnel's down mark");
  t.equal(await block.locator('polygon.t-up').count(), 1, "the tunnel's up mark");
  t.equal(await block.locator('tr[data-state=degraded]').count(), 0, 'three days ago is not in the last 24 hours');
  t.same(await englishOn(page), [], 'the dashboard in Japanese');
  await shot(page, 'op-dashboard-timeline');

  // Live, without a reload: the line goes down now; the block shows it as ongoing.
  await page.evaluate('window.__sameDocument = true');
  h.setStatus({ line: { state: 'down', since: new Date().toISOString(), lastError: 'LINE_DOWN' } });
  await block.locator('tr[data-state=down]', { hasText: '継続中' }).waitFor({ timeout: 20_000 });
  t.equal(await page.evaluate('window.__sameDocument'), true, 'pushed into the open page, not reloaded');
  t.equal(await block.locator('svg.timeline rect.s-down').count(), 2, 'the new cut drawn beside the old one');
  await shot(page, 'op-dashboard-timeline-live');
  h.setStatus({ line: { state: 'up', since: new Date().toISOString() } });

  // The history page: 24 hours, then 7 days.
  await page.goto(`${h.url}/history`);
  t.equal(await page.locator('svg.chart').count(), 5, 'the line, checks by source and by method, answer times, outbox');
  t.match(await page.textContent('table.tunnel'), /確立.*CHILD_SA 確立.*切断.*CHILD_SA 削除中/, "the tunnel's events");
  t.match(
    await page.textContent('#latency-summary'),
    /中央値 250ミリ秒、95パーセンタイル 295ミリ秒（応答\d+件）/,
    'p50 and p95 from the 200–300 ms bucket',
  );
  t.ok((await page.locator('svg.chart circle.c-p50').count()) >= 23, 'a median for every hour with answers');
  t.same(await englishOn(page), [], '/history in Japanese');
  await shot(page, 'op-history-24h');

  // Live, without a reload: checks answered from the cache in this hour appear on the open page.
  await page.goto(`${h.url}/history?refresh=1000`);
  await page.evaluate('window.__sameDocument = true');
  const cacheBars = page.locator('svg.chart rect.c-cache');
  const before = await cacheBars.count();
  rows.push({
    at: Math.floor(Date.now() / HISTORY_STEP_MS) * HISTORY_STEP_MS,
    central: 0,
    cache: 4,
    none: 0,
    outbox: 4,
  });
  // polled from here: the page's CSP refuses the evaluated predicate of waitForFunction
  for (const end = Date.now() + 20_000; (await cacheBars.count()) <= before && Date.now() < end; )
    await new Promise((r) => setTimeout(r, 200));
  t.ok((await cacheBars.count()) > before, "a bar for this hour's cache answers");
  t.equal(await page.evaluate('window.__sameDocument'), true, "this hour's cache answers drawn into the open page");
  await page.click('.tabs a[href="/history?range=7d"]');
  await page.waitForURL(`${h.url}/history?range=7d`);
  t.equal(await page.getAttribute('.tabs a[aria-current=page]', 'href'), '/history?range=7d');
  t.match(
    await page.textContent('table.troubles tr[data-state=degraded]'),
    /不安定.*20分.*中央の応答に6200ミリ秒（5000ミリ秒を超えると遅延）/,
    'the slow period three days ago, with why',
  );
  t.ok(
    asked.some((s) => Math.abs(now - 7 * DAY - s) < MIN),
    "7 days of the line's events were asked for",
  );
  t.same(await englishOn(page), [], '/history?range=7d in Japanese');
  await shot(page, 'op-history-7d');
  await page.click('#lang-switch');
  await page.waitForURL(/\/history/);
  t.match(await page.textContent('main'), /The line \(last 7 days\)/);
  await shot(page, 'op-history-7d-en');
  await page.click('#lang-switch');

  // The phone.
  const phone = await openBrowser(t, h, { viewport: PHONE });
  await phone.page.goto(`${h.url}/login`);
  await phone.page.fill('#password', 'correct horse battery');
  await submit(phone.page, '#login');
  await fitsPhone(t, phone.page, 'the dashboard', 'nav a, nav button, .timeline a');
  await shot(phone.page, 'op-dashboard-timeline-phone');
  for (const path of ['/history', '/history?range=7d']) {
    await phone.page.goto(h.url + path);
    await fitsPhone(t, phone.page, path, 'nav a, nav button, .tabs a');
  }
  await shot(phone.page, 'op-history-7d-phone');
}

async function settings(t: Test): Promise<void> {
  let restarts = 0;
  const h = await adminHarness(t, { basic: () => ({ restart: () => void restarts++ }) });
  const config = join(h.dir, 'config.json');
  const { page } = await openBrowser(t, h);
  await firstLogin(page, h);
  await page.goto(`${h.url}/settings`);

  // Search: only the matching settings stay.
  await page.fill('#settings-search', 'ポート');
  t.ok(await page.isVisible('[name="admin.port"]'), 'the admin port matches');
  t.notOk(await page.isVisible('[name="log.level"]'), 'the log level does not');
  await page.fill('#settings-search', 'zzzz');
  t.ok(await page.isVisible('[data-filter-none]'), 'nothing matches: said so');
  await page.fill('#settings-search', '');

  // A review before anything is written.
  await page.fill('[name="admin.port"]', '9443');
  await page.fill('[name="api.port"]', '9100');
  await page.selectOption('[name="log.level"]', 'debug');
  await submit(page, '#settings-save');
  t.match(await page.textContent('main h2'), /設定の変更を確認/);
  t.equal(await page.locator('table.diff tbody tr').count(), 3, 'three settings change');
  t.match(await page.textContent('tr[data-setting="admin.port"]'), /8443\s*9443/, 'now → new');
  t.match(await page.textContent('tr[data-setting="log.level"]'), /info\s*debug/);
  const warned = await page.textContent('#lockout-warnings');
  t.match(
    warned,
    /この管理画面のアドレスが変わります（https:\/\/127\.0\.0\.1:9443\/）/,
    'the new address of this page',
  );
  t.match(warned, /レセコンの接続先が変わります/, 'the receipt computers must follow');
  t.notMatch(warned, /ログの詳しさ/, 'the log level is harmless');
  t.match(await page.textContent('#restart-note'), /再起動すると反映/);
  t.notOk(existsSync(config), 'nothing written yet');
  t.same(await englishOn(page), [], 'the review in Japanese');
  await shot(page, 'op-settings-review');

  // Back to the form, as it was filled in; then saved.
  await submit(page, '#settings-back');
  t.equal(await page.inputValue('[name="admin.port"]'), '9443', 'the edit is kept');
  await submit(page, '#settings-save');
  await submit(page, '#settings-confirm');
  t.match(page.url(), /done=saved/);
  t.same(
    JSON.parse(readFileSync(config, 'utf8')),
    { log: { level: 'debug' }, api: { port: 9100 }, admin: { port: 9443 } },
    'only what differs from the defaults',
  );
  await shot(page, 'op-settings-saved');

  // Saving again without a change writes nothing and asks nothing.
  const before = readFileSync(config, 'utf8');
  await page.goto(`${h.url}/settings`);
  await submit(page, '#settings-save');
  t.match(await page.textContent('main'), /変更はありません/);
  t.equal(readFileSync(config, 'utf8'), before);

  // The restart: the request reaches the daemon's seam once, after the answer.
  const phone = await openBrowser(t, h, { viewport: PHONE });
  await phone.page.goto(`${h.url}/login`);
  await phone.page.fill('#password', 'correct horse battery');
  await submit(phone.page, '#login');
  await phone.page.goto(`${h.url}/settings`);
  await phone.page.fill('[name="api.port"]', '9200');
  await submit(phone.page, '#settings-save');
  await fitsPhone(t, phone.page, 'the review', '#settings-confirm, #settings-back, nav a, nav button');
  await shot(phone.page, 'op-settings-review-phone');
  await phone.page.goto(`${h.url}/settings`);
  await fitsPhone(t, phone.page, 'the settings', '#restart-now, #settings-save');

  page.once('dialog', (d) => void d.accept());
  const answer = page.waitForResponse((r) => r.url().endsWith('/restart'));
  await page.goto(`${h.url}/settings`);
  await page.click('#restart-now');
  t.equal((await answer).status(), 202);
  await page.locator('[data-restarting]').waitFor();
  t.match(await page.textContent('main'), /再起動しています/);
  for (let i = 0; i < 50 && restarts === 0; i++) await new Promise((r) => setTimeout(r, 100));
  t.equal(restarts, 1, 'the restart seam was called once');
  await shot(page, 'op-restarting');
  await page.goto(`${h.url}/audit`);
  t.match(await page.textContent('main table'), /ゲートウェイの再起動/, 'audited');

  // Without a supervisor there is no button, and the route says how to do it by hand.
  const bare = await adminHarness(t);
  const b = await openBrowser(t, bare);
  await firstLogin(b.page, bare);
  await b.page.goto(`${bare.url}/settings`);
  t.equal(await b.page.locator('#restart-now').count(), 0, 'no button');
  t.match(await b.page.textContent('#restart'), /systemd の下で動いていない.*sudo systemctl restart onshi-gateway/);
  const csrf = await b.page.inputValue('form[action="/settings"] input[name=_csrf]');
  const status = await b.page.evaluate<number, string>(
    async (token) =>
      (
        await fetch('/restart', {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `_csrf=${encodeURIComponent(token)}`,
        })
      ).status,
    csrf,
  );
  t.equal(status, 409, 'a restart that nothing would follow is refused');
}

async function accounts(t: Test): Promise<void> {
  const idleMs = 4000;
  const h = await adminHarness(t, { sessionIdleMs: idleMs });
  const { page } = await openBrowser(t, h);
  await firstLogin(page, h);
  t.match(await page.textContent('main [role=status]'), /パスワードを変更しました/, 'said after the change');
  await shot(page, 'op-password-changed');

  // The menu leads to the change; logging out says so.
  await Promise.all([page.waitForURL(`${h.url}/password`), page.click('#nav-password')]);
  t.equal(await page.getAttribute('#nav-password', 'aria-current'), 'page');
  await Promise.all([page.waitForURL(`${h.url}/login?done=logout`), page.click('#logout')]);
  t.match(await page.textContent('[role=status]'), /ログアウトしました/);
  await shot(page, 'op-logged-out');

  // An open dashboard with the status changing all the time still logs out when nobody acts.
  await page.fill('#password', 'correct horse battery');
  await submit(page, '#login');
  // Each push that changes the card tile is counted where a navigation keeps it (sessionStorage).
  await page.evaluate(`(() => {
    const seen = new MutationObserver(() =>
      sessionStorage.setItem('pushes', String(Number(sessionStorage.getItem('pushes') ?? 0) + 1)));
    seen.observe(document.querySelector('[data-field=card]'), { childList: true, characterData: true, subtree: true });
  })()`);
  let present = true;
  const flip = setInterval(() => {
    present = !present;
    h.setStatus({ card: { present, stage: 'idle' } });
  }, 300);
  t.teardown(() => clearInterval(flip));
  const started = Date.now();
  await page.waitForURL(`${h.url}/login?expired=1`, { timeout: idleMs * 4 });
  clearInterval(flip);
  const waited = Date.now() - started;
  t.ok(waited >= idleMs - 500, `logged out after the idle time (${waited} ms), not before`);
  const pushes = Number(await page.evaluate<string | null>("sessionStorage.getItem('pushes')"));
  t.ok(pushes >= 3, `the dashboard kept receiving pushes until then (${pushes})`);
  t.match(await page.textContent('[role=status]'), /有効期限が切れました/);
}

async function clients(t: Test): Promise<void> {
  const lastSeenAt = new Date(Date.now() - 90_000).toISOString();
  const h = await adminHarness(t, {
    basic: ({ clients }) => ({
      // the API's view: 受付1 has two connections open
      clientActivity: () =>
        clients
          .list()
          .filter((c) => c.name === '受付1')
          .map((c) => ({ id: c.id, connections: 2, lastSeenAt })),
    }),
  });
  const { page, context } = await openBrowser(t, h);
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: h.url });
  await firstLogin(page, h);
  await page.goto(`${h.url}/clients`);
  t.equal(await page.isChecked('#scope-inquiry'), true, 'checks only, by default');
  t.equal(await page.locator('#scope-kiosk').count(), 0, 'kiosks are paired on their own page');

  // A blank name is refused, in Japanese.
  await page.fill('#client-name', '   ');
  await submit(page, '#client-add');
  t.match(await page.textContent('[role=alert]'), /空白だけは不可/);
  t.same(h.clients.list(), [], 'nothing made');

  // Two scopes; the token once, copied.
  await page.fill('#client-name', '受付1');
  await page.check('#scope-batch');
  await submit(page, '#client-add');
  const token = (await page.textContent('#new-token'))!.trim();
  t.same(h.clients.list()[0]?.scopes, ['inquiry', 'batch'], 'the scopes chosen');
  t.equal(h.clients.authenticate(token)?.name, '受付1');
  await page.click('#copy-token');
  await page.locator('.copy-said', { hasText: 'コピーしました' }).waitFor();
  t.equal(await page.evaluate<string>('navigator.clipboard.readText()'), token, 'the clipboard holds the token');
  t.same(await englishOn(page), [], 'the new token page in Japanese');
  await shot(page, 'op-client-created');

  // The same name again is refused (typed: CLIENT_NAME_TAKEN), the form kept.
  await page.goto(`${h.url}/clients`);
  await page.fill('#client-name', '受付1');
  await page.uncheck('#scope-inquiry');
  await page.check('#scope-events\\:read');
  const res = page.waitForResponse((r) => r.url().endsWith('/clients') && r.request().method() === 'POST');
  await submit(page, '#client-add');
  t.equal((await res).status(), 400);
  t.match(await page.textContent('[role=alert]'), /この名前の接続はすでにあります/);
  t.equal(await page.inputValue('#client-name'), '受付1', 'the name kept');
  t.ok(await page.isChecked('#scope-events\\:read'), 'the scopes kept');
  // No scope at all is refused too.
  await page.uncheck('#scope-events\\:read');
  await page.fill('#client-name', '受付2');
  await submit(page, '#client-add');
  t.match(await page.textContent('[role=alert]'), /権限を一覧から1つ以上選んでください/);
  t.equal(h.clients.list().length, 1);

  // The list: scopes, connected now, last seen.
  await page.goto(`${h.url}/clients`);
  const row = page.locator('tr[data-client="受付1"]');
  t.match(await row.textContent(), /資格確認、一括照会/);
  t.match(await row.textContent(), /接続中（2）/);
  const seen = new Date(lastSeenAt);
  const hhmm = `${String(seen.getHours()).padStart(2, '0')}:${String(seen.getMinutes()).padStart(2, '0')}`;
  t.match(await row.textContent(), new RegExp(hhmm), 'last seen');
  t.same(await englishOn(page), [], '/clients in Japanese');
  await shot(page, 'op-clients');

  // The phone.
  const phone = await openBrowser(t, h, { viewport: PHONE });
  await phone.page.goto(`${h.url}/login`);
  await phone.page.fill('#password', 'correct horse battery');
  await submit(phone.page, '#login');
  await phone.page.goto(`${h.url}/clients`);
  await fitsPhone(t, phone.page, '/clients', '#client-add, button.revoke, label.check, nav a, nav button');
  await shot(phone.page, 'op-clients-phone');

  // Delete: the token stops working, the row moves to the deleted ones.
  page.once('dialog', (d) => void d.accept());
  await Promise.all([page.waitForURL(/done=revoked/), page.click('tr[data-client="受付1"] button.revoke')]);
  t.match(await page.textContent('main [role=status]'), /接続「受付1」を削除しました/);
  t.equal(h.clients.authenticate(token), undefined, 'the token no longer works');
  t.equal(await page.locator('table.clients').count(), 0, 'no active connection left');
  t.match(await page.textContent('details.revoked summary'), /削除した接続（1件）/);
  await shot(page, 'op-client-deleted');
}
