/**
 * The event log, the dashboard's alerts and badge, and the audit log's filter, search, date range
 * and CSV (issue 19, items 3, 5 and 10), in Debian's Chromium against a real store (the daemon's
 * views of it, store-views.ts): the line cut and restored as the daemon records it in the audit
 * chain, the gateway's start with its alerts, a dead letter. At 1280 px and 390 px; screenshots
 * go to test-artifacts/browser/ev-*.png.
 */
import t, { type Test } from 'tap';
import type { Page } from 'playwright-core';
import type { BatchItem, RecheckItem, ReconciliationItem } from '../../src/admin/backend.js';
import { storeAdminViews } from '../../src/admin/store-views.js';
import { type AuditInput, GatewayStore } from '../../src/cache/index.js';
import type { GatewayStatus } from '../../src/ops/status.js';
import { EventHub } from '../../src/protocol/events.js';
import {
  type AdminHarness,
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
import { testdir } from '../helpers/testdir.js';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
/** checks answered before the cut: more than a page of the audit log (100) */
const CHECKS_BEFORE = 110;

if (hasChromium(t)) {
  t.test('the event log lists the cut with its length; the filters narrow it', eventLog);
  t.test('the dashboard shows the alerts and the open reconciliation badge, live', dashboard);
  t.test('the audit log: filter, search, date range, paging and the same rows in the CSV', auditLog);
  t.test('phone: the lists stack, nothing scrolls sideways, tap targets of 44 px', phone);
}

const day = (ms: number): string => {
  const d = new Date(ms);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
};

interface World {
  h: AdminHarness;
  store: GatewayStore;
  cut: number;
  reception: string;
}

/**
 * A store with what the daemon writes: its start (a new cache key, a certificate 20 days from
 * expiry), checks from 受付1, the line cut for 65 s two hours ago (answered from the cache), the
 * tunnel, admin logins yesterday, one re-verification central refused for good.
 */
async function world(t: Test, extra: Parameters<typeof adminHarness>[1] = {}): Promise<World> {
  const store = await GatewayStore.open({ dir: testdir(t) });
  t.teardown(() => store.close());
  const h = await adminHarness(t, {
    ...extra,
    backend: (o) => ({ ...storeAdminViews(store, new EventHub()), ...extra.backend?.(o) }),
  });
  const reception = h.clients.add('受付1').client.id;
  const now = Date.now();
  const cut = now - 2 * HOUR;
  const put = (e: AuditInput, at: number): Promise<unknown> => store.audit.append(e, new Date(at));
  const system = (action: string, target?: string): AuditInput => ({
    kind: 'admin',
    actor: 'system',
    action,
    ...(target ? { target } : {}),
  });
  const check = (source: 'central' | 'cache'): AuditInput => ({
    kind: 'check',
    actor: reception,
    action: 'inquiry.numbers',
    mode: 'numbers',
    outcome: 'validity:1',
    source,
    remote: '192.168.1.31',
    personal: { requestId: 'r' },
  });
  await put(system('gateway.start', '0.9.0'), now - 3 * HOUR);
  await put(system('store.alert', 'STORE_KEY_CREATED'), now - 3 * HOUR);
  await put(system('cert.warning', 'central-client:20'), now - 3 * HOUR);
  await put(system('line.state.up', 'starting'), now - 3 * HOUR);
  await put({ kind: 'admin', actor: 'admin', action: 'login', outcome: 'refused', remote: '192.168.1.9' }, now - DAY);
  await put({ kind: 'admin', actor: 'admin', action: 'login', outcome: 'ok', remote: '192.168.1.9' }, now - DAY + MIN);
  for (let i = 0; i < CHECKS_BEFORE; i++) await put(check('central'), now - 3 * HOUR + (i + 1) * 1000);
  await put(system('line.tunnel.down', 'CHILD_SA DELETING, IKE_SA ESTABLISHED'), cut);
  await put(system('line.state.down', '3 failures in a row (last: CENTRAL_TIMEOUT)'), cut);
  for (let i = 0; i < 3; i++) await put(check('cache'), cut + (i + 1) * 10_000);
  await put(system('line.tunnel.up', 'CHILD_SA installed'), cut + 60_000);
  await put(system('line.state.up', 'central answered'), cut + 65_000);
  // a re-verification central refused: parked dead
  await store.outbox.enqueue({ idempotencyKey: 'k-1', kind: 'numbers', payload: { x: 1 } }, new Date(cut));
  const [due] = await store.outbox.nextDue(1, new Date(cut + 70_000));
  await store.outbox.complete(due!.id, { dead: 'OQS_REFUSED' }, new Date(cut + 70_000));
  return { h, store, cut, reception };
}

async function eventLog(t: Test): Promise<void> {
  const { h } = await world(t);
  const { page } = await openBrowser(t, h);
  await firstLogin(page, h);
  await page.click('nav a[href="/events"]');
  await page.waitForURL(`${h.url}/events`);
  const outage = page.locator('tr[data-kind=outage]');
  t.equal(await outage.count(), 1, 'one outage');
  t.match(
    await outage.textContent(),
    /回線が切断.*3回続けて失敗（最後: 時間内に応答なし）.*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d.*65秒/s,
    'the cut with why, its end and its length',
  );
  const kinds = await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-kind')));
  t.same(
    kinds,
    ['dead', 'tunnel', 'outage', 'tunnel', 'cert', 'store', 'restart'],
    'newest first: the dead letter, the tunnel up, the cut, the tunnel down, the start with its alerts',
  );
  const text = (await page.textContent('main')) ?? '';
  t.match(text, /ゲートウェイ起動.*バージョン 0\.9\.0/);
  t.match(text, /中央向けクライアント証明書の有効期限まであと20日/);
  t.match(text, /キャッシュの暗号鍵を新しく作りました/);
  t.match(text, /再照会を中央が受け付けず/);
  t.same(await englishOn(page), [], 'the event log in Japanese: no English, no raw code');
  await shot(page, 'ev-events-ja-desktop');

  await page.selectOption('#f-kind', 'outage');
  await submit(page, '#filter-apply');
  t.match(page.url(), /\/events\?kind=outage/);
  t.same(
    await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-kind'))),
    ['outage'],
    'the kind filter',
  );
  await page.fill('#f-from', day(Date.now() + DAY));
  await submit(page, '#filter-apply');
  t.equal(await page.locator('tbody tr').count(), 0, 'nothing from tomorrow on');
  t.match(await page.textContent('main'), /該当する記録はありません/);

  await page.goto(`${h.url}/lang/en?next=/events`);
  t.match(await page.textContent('tr[data-kind=outage]'), /Line down.*3 failures in a row.*65 s/s);
  await shot(page, 'ev-events-en-desktop');
}

async function dashboard(t: Test): Promise<void> {
  const { h } = await world(t);
  h.setStatus({
    alerts: [{ code: 'STORE_KEY_CREATED', message: 'a new cache key was created' }],
    reconciliation: { open: 2 },
  } as Partial<GatewayStatus>);
  const { page } = await openBrowser(t, h);
  await firstLogin(page, h);
  t.equal((await page.textContent('#open-badge'))?.trim(), '未対応 2 件', 'the badge in the menu');
  t.match(
    await page.textContent('[data-attention]'),
    /再照会で結果が変わった確認が2件.*キャッシュの暗号鍵を新しく作りました/s,
  );
  await shot(page, 'ev-dashboard-ja-desktop');
  await page.evaluate('window.__sameDocument = true');
  h.setStatus({ reconciliation: { open: 3 } } as Partial<GatewayStatus>);
  await page.locator('#open-badge', { hasText: '未対応 3 件' }).waitFor({ timeout: 20_000 });
  await page.locator('[data-attention]', { hasText: '3件' }).waitFor({ timeout: 20_000 });
  h.setStatus({ alerts: [] } as Partial<GatewayStatus>);
  await page.locator('[data-attention]', { hasNotText: 'キャッシュの暗号鍵' }).waitFor({ timeout: 20_000 });
  t.equal(await page.evaluate('window.__sameDocument'), true, 'pushed into the open page, not reloaded');
  await page.goto(`${h.url}/events`);
  t.equal((await page.textContent('#open-badge'))?.trim(), '未対応 3 件', 'the badge on every page');
  h.setStatus({ reconciliation: { open: 0 } } as Partial<GatewayStatus>);
  await page.goto(`${h.url}/audit`);
  t.equal(await page.locator('#open-badge').isVisible(), false, 'no badge when nothing is open');
}

/** The table's rows as their cells' text, and the CSV's (BOM and header removed). */
async function tableRows(page: Page): Promise<string[][]> {
  return page
    .locator('table.audit tbody tr')
    .evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((c) => (c.textContent ?? '').trim())));
}

async function csvOf(page: Page, href: string): Promise<{ rows: string[][]; bom: boolean; disposition: string }> {
  // fetched by the page itself: the browser trusts the gateway's certificate (the test's request context does not)
  const r = await page.evaluate<{ bytes: number[]; disposition: string }, string>(async (url) => {
    const res = await fetch(url, { credentials: 'same-origin' });
    return {
      bytes: [...new Uint8Array(await res.arrayBuffer())],
      disposition: res.headers.get('content-disposition') ?? '',
    };
  }, href);
  const body = Buffer.from(r.bytes);
  const lines = body
    .toString('utf8')
    .replace(/^\uFEFF/, '')
    .split('\r\n')
    .filter(Boolean);
  return {
    bom: body.subarray(0, 3).equals(Buffer.from([0xef, 0xbb, 0xbf])),
    disposition: r.disposition,
    rows: lines.slice(1).map((l) => l.split(',')),
  };
}

async function auditLog(t: Test): Promise<void> {
  const { h } = await world(t);
  const { page } = await openBrowser(t, h);
  await firstLogin(page, h);
  await page.goto(`${h.url}/audit`);
  t.equal((await tableRows(page)).length, 100, 'a page of 100');

  // kind: the checks only
  await page.selectOption('#f-kind', 'check');
  await submit(page, '#filter-apply');
  let rows = await tableRows(page);
  t.equal(rows.length, 100, 'a full page of checks');
  t.ok(
    rows.every((r) => /資格確認（番号）/.test(r[2]!) && r[1] === '受付1'),
    'checks only, by the receipt computer by name',
  );
  await Promise.all([page.waitForURL(/before=/), page.click('#page-older')]);
  rows = await tableRows(page);
  t.equal(rows.length, CHECKS_BEFORE + 3 - 100, 'the older page: the rest of the checks');
  t.match(page.url(), /kind=check/, 'paging keeps the filter');

  // search: the receipt computer by name, then the cache answers of the cut by a word of the action
  await page.goto(`${h.url}/audit?q=${encodeURIComponent('受付1')}`);
  t.ok(
    (await tableRows(page)).every((r) => r[1] === '受付1'),
    "a receipt computer's name finds its checks",
  );
  await page.goto(`${h.url}/audit?q=${encodeURIComponent('ログイン')}`);
  rows = await tableRows(page);
  t.ok(rows.length >= 3 && rows.every((r) => r[2] === 'ログイン'), 'the action by its Japanese word');

  // outcome and the date range: yesterday's refused login, alone
  const yesterday = day(Date.now() - DAY);
  await page.goto(`${h.url}/audit`);
  await page.selectOption('#f-outcome', 'refused');
  await page.fill('#f-from', yesterday);
  await page.fill('#f-to', yesterday);
  await submit(page, '#filter-apply');
  rows = await tableRows(page);
  t.same(
    rows.map((r) => [r[2], r[4], r[5]]),
    [['ログイン', '拒否', '192.168.1.9']],
    "the outcome and the range: yesterday's refused login",
  );
  t.same(await englishOn(page), [], 'the audit page in Japanese');
  await shot(page, 'ev-audit-ja-desktop');

  // the CSV holds the same rows the filter selects
  const href = await page.getAttribute('#audit-csv', 'href');
  t.match(href, /outcome=refused/);
  let csv = await csvOf(page, `${h.url}${href}`);
  t.ok(csv.bom, 'UTF-8 with a BOM');
  t.match(csv.disposition, /^attachment; filename="audit-\d{12}\.csv"$/);
  t.same(csv.rows, rows, 'the same rows as the table');
  await page.goto(`${h.url}/audit?kind=check&q=${encodeURIComponent('受付1')}`);
  csv = await csvOf(page, `${h.url}${await page.getAttribute('#audit-csv', 'href')}`);
  t.equal(csv.rows.length, CHECKS_BEFORE + 3, 'every check, not only the first page');
  t.same(csv.rows.slice(0, 100), await tableRows(page), 'its first rows are the page');
}

async function phone(t: Test): Promise<void> {
  const now = Date.now();
  const { h, reception } = await world(t, {
    backend: ({ clients }) => {
      // the receipt computer is added after the harness starts: its id is looked up when listed
      const id = (): string => clients.list()[0]!.id;
      const item = (): ReconciliationItem => ({
        id: '7',
        checkedAt: new Date(now - HOUR).toISOString(),
        reverifiedAt: new Date(now).toISOString(),
        kind: 'numbers',
        client: id(),
        patient: {
          name: '山田 花子',
          nameKana: 'ヤマダ ハナコ',
          birthdate: '1980-04-01',
          insurerNumber: '06130011',
          symbolNumber: '12・345',
        },
        patientRef: '3f0c2a4e-9b1d-4c59-8e7a-2d6f1b0c9e11',
        before: '有効',
        after: '無効',
        handledAt: new Date(now).toISOString(),
        handledBy: 'admin',
      });
      const recheck = (): RecheckItem => ({
        id: '1',
        firstCheckedAt: new Date(now - DAY).toISOString(),
        nextAt: new Date(now + HOUR).toISOString(),
        until: new Date(now + 7 * DAY).toISOString(),
        attempts: 3,
        state: 'scheduled',
        lastResult: '該当資格なし',
        client: id(),
        patientRef: '3f0c2a4e-9b1d-4c59-8e7a-2d6f1b0c9e11',
        patient: { name: '佐藤 一郎', nameKana: 'サトウ イチロウ', insurerNumber: '06130011', symbolNumber: '7・88' },
      });
      const batch = (): BatchItem =>
        ({
          id: 'c9a8f7e6-5d4c-3b2a-1f0e-9d8c7b6a5f4e',
          submittedAt: new Date(now).toISOString(),
          state: 'done',
          done: 400,
          total: 400,
          errors: 2,
          client: id(),
        }) as unknown as BatchItem;
      return {
        listReconciliation: async () => [item()],
        listRechecks: async () => [recheck()],
        listBatches: async () => [batch()],
      };
    },
  });
  t.ok(reception, 'a receipt computer');
  for (const lang of ['ja', 'en'] as const) {
    const { page } = await openBrowser(t, h, { viewport: PHONE });
    await firstLoginOnce(page, h, lang);
    for (const path of ['/events', '/audit', '/reconciliation?all=1', '/rechecks', '/batches', '/']) {
      await page.goto(h.url + path);
      t.equal(await sidewaysOverflow(page), 0, `${lang} ${path}: no sideways scroll at 390 px`);
      t.same(
        await smallTapTargets(page, 'main button, main select, main input, main a.button, .pager a, nav a'),
        [],
        `${lang} ${path}: tap targets of 44 px at least`,
      );
      if (lang === 'ja') t.same(await englishOn(page), [], `${path} in Japanese`);
      if (['/events', '/audit', '/reconciliation?all=1', '/'].includes(path))
        await shot(page, `ev-${path.slice(1).replace(/\?.*/, '') || 'dashboard'}-${lang}-phone`);
    }
    await page.goto(`${h.url}/reconciliation?all=1`);
    const row = (await page.textContent('tr[data-id="7"]')) ?? '';
    t.match(row, /受付1/, 'the receipt computer by name');
    t.match(
      row,
      /山田 花子.*(カナ|kana) ヤマダ ハナコ.*06130011.*12・345/s,
      'the patient with kana, insurer and 記号・番号',
    );
    t.match(row, /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d admin/, 'handled: when and who');
    await page.goto(`${h.url}/rechecks`);
    t.match(
      await page.textContent('main tbody tr'),
      /受付1.*佐藤 一郎.*サトウ イチロウ.*06130011.*7・88/s,
      'a recheck names the receipt computer and the patient',
    );
    await page.goto(`${h.url}/reconciliation?all=1`);
    const label = await page.locator('tr[data-id="7"] td').first().getAttribute('data-label');
    t.ok(label, 'each cell carries its heading for the stacked view');
  }
}

/** The first login once per harness (the password changes), a plain login after. */
let changed = false;
async function firstLoginOnce(page: Page, h: AdminHarness, lang: 'ja' | 'en'): Promise<void> {
  if (!changed) {
    await firstLogin(page, h);
    changed = true;
  } else {
    await page.goto(`${h.url}/login`);
    await page.fill('#password', 'correct horse battery');
    await submit(page, '#login');
  }
  if (lang === 'en') await page.goto(`${h.url}/lang/en?next=/`);
}
