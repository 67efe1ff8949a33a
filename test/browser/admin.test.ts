/**
 * The admin page in a real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core;
 * no browser is ever downloaded). The browser trusts the gateway's certificate by its public-key
 * fingerprint (--ignore-certificate-errors-spki-list), not by ignoring certificate errors.
 * Screenshots of each page go to test-artifacts/browser/.
 */
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ReconciliationItem } from '../../src/admin/backend.js';
import { addMonths, daysOf } from '../../src/cache/index.js';
import type { GatewayStatus } from '../../src/ops/status.js';
import {
  adminHarness as harness,
  englishOn,
  firstLogin,
  login,
  openBrowser as open,
  shot,
  submit,
} from '../helpers/admin-browser.js';
import { CHROMIUM } from '../helpers/chromium.js';

if (!existsSync(CHROMIUM)) {
  if (process.env.CI)
    t.fail(`${CHROMIUM} is missing: the browser tests need Debian's chromium (scripts/lib/setup.sh installs it)`);
  else t.plan(0, `${CHROMIUM} is not installed (apt-get install chromium); browser tests skipped`);
} else {
  await run();
}

async function run(): Promise<void> {
  t.test('the certificate is trusted by its fingerprint, not by ignoring errors', async (t) => {
    const h = await harness(t);
    const { page } = await open(t, h);
    const res = await page.goto(`${h.url}/login`);
    t.equal(res?.status(), 200);
    const sec = await res!.securityDetails();
    t.equal(sec?.protocol, 'TLS 1.3');
    t.equal(sec?.subjectName, 'gw-test');
    t.equal(
      (await page.textContent('#fingerprint'))?.trim(),
      h.tls.fingerprint,
      "the login page shows the certificate's fingerprint, to compare with the browser's warning",
    );
    const headers = res!.headers();
    t.match(headers['content-security-policy'], /script-src 'self'/);
    t.equal(headers['x-frame-options'], 'DENY');
  });

  t.test('first login with the initial secret forces a password change', async (t) => {
    const h = await harness(t);
    const { page, context } = await open(t, h);
    await page.goto(h.url);
    t.equal(new URL(page.url()).pathname, '/login', 'nothing without a login, from the first start');
    await shot(page, '01-login');
    await login(page, h, h.secret);
    t.equal(new URL(page.url()).pathname, '/password');
    t.match(await page.textContent('main'), /初期パスワードのままです/);
    await shot(page, '02-forced-password-change');

    await page.goto(`${h.url}/clients`);
    t.equal(new URL(page.url()).pathname, '/password', 'every page sends back to the change');

    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === '__Host-onshi_session');
    t.ok(session?.httpOnly && session.secure && session.sameSite === 'Strict', 'HttpOnly, Secure, SameSite=Strict');

    // the initial secret itself, and a short password, are refused
    for (const [next, expect] of [
      [h.secret, /初期パスワードとは別/],
      ['aaaaaaaaaaaaaaaa', /単純すぎ/],
    ] as const) {
      await page.fill('#current', h.secret);
      await page.fill('#next', next);
      await page.fill('#confirm', next);
      await submit(page, '#change');
      t.match(await page.textContent('[role=alert]'), expect);
    }
    await page.fill('#current', h.secret);
    await page.fill('#next', 'correct horse battery');
    await page.fill('#confirm', 'correct horse battery');
    await Promise.all([page.waitForURL(`${h.url}/?done=password`), page.click('#change')]);
    t.match(await page.textContent('main h2'), /ゲートウェイの状態/);
    t.notOk(existsSync(join(h.dir, 'admin-initial-secret')), 'the spent initial secret is deleted');

    await Promise.all([page.waitForURL(`${h.url}/login?done=logout`), page.click('#logout')]);
    await login(page, h, h.secret);
    t.match(await page.textContent('[role=alert]'), /パスワードが違います/, 'the initial secret no longer works');
    await login(page, h, 'correct horse battery');
    t.equal(new URL(page.url()).pathname, '/', 'the new password does');
  });

  t.test('wrong passwords from one address are rate-limited', async (t) => {
    const h = await harness(t, { maxFailures: 3 });
    const { page } = await open(t, h);
    for (let i = 0; i < 3; i++) {
      await login(page, h, `wrong-${i}`);
      t.match(await page.textContent('[role=alert]'), /パスワードが違います/);
    }
    const res = page.waitForResponse((r) => r.url().endsWith('/login') && r.request().method() === 'POST');
    await login(page, h, h.secret);
    t.equal((await res).status(), 429);
    t.match(await page.textContent('[role=alert]'), /\d+秒間ログインできません/, 'even the right password waits');
    t.equal(new URL(page.url()).pathname, '/login');
    await shot(page, '03-login-rate-limited');
  });

  t.test('a change without the CSRF token is refused', async (t) => {
    const h = await harness(t);
    const { page } = await open(t, h);
    await firstLogin(page, h);
    await page.goto(`${h.url}/clients`);
    const post = (body: string): Promise<number> =>
      page.evaluate(
        async (b) =>
          (
            await fetch('/clients', {
              method: 'POST',
              headers: { 'content-type': 'application/x-www-form-urlencoded' },
              body: b,
            })
          ).status,
        body,
      );
    t.equal(await post('name=no-token'), 403, 'no token');
    t.equal(await post('name=bad-token&_csrf=AAAA'), 403, 'a wrong token');
    t.same(h.clients.list(), [], 'nothing was created');
    const token = await page.inputValue('form[action="/clients"] input[name=_csrf]');
    t.equal(
      await post(`name=with-token&scope=inquiry&_csrf=${encodeURIComponent(token)}`),
      200,
      'the same request with the token works',
    );
    t.same(
      h.clients.list().map((c) => c.name),
      ['with-token'],
    );
  });

  t.test('the dashboard shows a line outage live, without a reload', async (t) => {
    const h = await harness(t);
    const { page } = await open(t, h);
    await firstLogin(page, h);
    await page.goto(h.url);
    const line = page.locator('[data-field=line]');
    t.match(await line.textContent(), /接続中/);
    t.match(await page.textContent('[data-field=reader]'), /Virtual PCD 00 00/);
    t.match(await page.textContent('[data-field=tls]'), h.tls.fingerprint);
    await shot(page, '04-dashboard');
    h.setStatus({
      line: { state: 'down', since: new Date().toISOString(), lastError: 'CENTRAL_UNREACHABLE' },
      outbox: { depth: 2, oldestAt: new Date().toISOString() },
    });
    // The page shows it by itself (no reload); the ceiling only keeps a loaded machine from failing it.
    await line.filter({ hasText: '切断' }).waitFor({ timeout: 20_000 });
    t.equal(await line.getAttribute('data-tone'), 'bad');
    t.match(await page.textContent('[data-field=outbox]'), /2件/);
    await shot(page, '05-dashboard-line-down');
  });

  t.test('language switch: Japanese first, English on request, kept across pages', async (t) => {
    const h = await harness(t);
    const { page } = await open(t, h);
    await page.goto(`${h.url}/login`);
    t.equal(await page.getAttribute('html', 'lang'), 'ja');
    await Promise.all([page.waitForURL(`${h.url}/login`), page.click('#lang-switch')]);
    t.equal(await page.getAttribute('html', 'lang'), 'en');
    t.match(await page.textContent('main h2'), /Log in/);
    await login(page, h, h.secret);
    t.match(await page.textContent('main'), /still the initial secret/);
    await page.fill('#current', h.secret);
    await page.fill('#next', 'another long passphrase');
    await page.fill('#confirm', 'another long passphrase');
    await Promise.all([page.waitForURL(`${h.url}/?done=password`), page.click('#change')]);
    t.match(await page.textContent('main h2'), /Gateway status/);
    t.match(await page.textContent('[data-field=line]'), /Up/);
    await shot(page, '06-dashboard-en');
    await Promise.all([page.waitForURL(h.url + '/'), page.click('#lang-switch')]);
    t.match(await page.textContent('main h2'), /ゲートウェイの状態/);
  });

  t.test('receipt-computer clients: added and revoked through the page', async (t) => {
    const h = await harness(t);
    const { page } = await open(t, h);
    await firstLogin(page, h);
    await page.goto(`${h.url}/clients`);
    await page.fill('#client-name', '受付1');
    await submit(page, '#client-add');
    const token = (await page.textContent('#new-token'))!.trim();
    t.match(token, /^onshi_[a-f0-9]{8}_[A-Za-z0-9_-]{43}$/);
    t.equal(h.clients.authenticate(token)?.name, '受付1', 'the token shown authenticates');
    await shot(page, '07-client-created');
    await page.goto(`${h.url}/clients`);
    t.notOk((await page.content()).includes(token), 'the token is never shown again');

    page.once('dialog', (d) => void d.accept());
    await Promise.all([page.waitForURL(/done=revoked/), page.click('tr[data-client="受付1"] button.revoke')]);
    t.equal(h.clients.authenticate(token), undefined, 'revoked: the token no longer works');
    t.match(await page.textContent('main'), /削除しました/);
    await shot(page, '08-client-revoked');
  });

  t.test('the other pages render, and settings are checked by the config schema', async (t) => {
    const h = await harness(t);
    const { page } = await open(t, h);
    await firstLogin(page, h);
    for (const [path, name] of [
      ['/reconciliation', '09-reconciliation'],
      ['/rechecks', '10-rechecks'],
      ['/batches', '11-batches'],
      ['/audit', '12-audit'],
      ['/backup', '13-backup'],
      ['/support', '14-support'],
    ]) {
      const res = await page.goto(h.url + path!);
      t.equal(res?.status(), 200, path!);
      await shot(page, name!);
    }
    await page.goto(`${h.url}/audit`);
    t.match(await page.textContent('main table'), /パスワード変更/);
    await page.goto(`${h.url}/settings`);
    await page.fill('[name="api.port"]', '99999');
    await submit(page, '#settings-save');
    t.match(await page.textContent('[role=alert]'), /「ポート番号」は65535以下にしてください/);
    await page.fill('[name="api.port"]', '9100');
    await page.fill('[name="tls.hostnames"]', 'reception.clinic.lan, gw');
    await submit(page, '#settings-save');
    t.match(await page.textContent('main h2'), /設定の変更を確認/, 'a review before saving');
    await submit(page, '#settings-confirm');
    t.equal(
      await page.locator('[role=alert]').count(),
      0,
      (await page.locator('[role=alert]').allTextContents()).join(' '),
    );
    t.match(page.url(), /done=saved/);
    const saved = JSON.parse(readFileSync(join(h.dir, 'config.json'), 'utf8')) as {
      api: { port: number };
      tls: { hostnames: string[] };
    };
    t.same(
      saved,
      { api: { port: 9100 }, tls: { hostnames: ['reception.clinic.lan', 'gw'] } },
      'only what differs from the defaults',
    );
    const said = (await page.locator('[role=status]').allTextContents()).join(' ');
    t.match(said, /ポート番号 ⚠/);
    t.match(said, /新しいアドレスとポートで開けることを確かめて/);
    await shot(page, '15-settings');
  });

  t.test('every page in Japanese shows Japanese: no English word outside codes and names', async (t) => {
    const step = 5 * 60_000;
    const start = Math.floor(Date.now() / step) * step - 3 * 3_600_000;
    const h = await harness(t, {
      backend: () => ({
        listHistory: async () => [
          { at: start, central: 4, cache: 0, none: 0, outbox: 0, latency: [0, 2, 2] },
          { at: start + step, central: 0, cache: 3, none: 1, outbox: 4 },
          { at: start + 2 * step, central: 0, cache: 2, none: 0, outbox: 6 },
          { at: start + 3 * step, central: 5, cache: 0, none: 0, outbox: 0, latency: [0, 0, 4, 1] },
        ],
        // マイナ保険証 use: this month and the one before, counted by method
        listUsage: async (month) => {
          const row = { cardPin: 3, cardVisual: 1, numbers: 5, patients: 7, cardPatients: 4 };
          const first = `${month}-01`;
          return {
            months: [
              { month: addMonths(month, -1), ...row },
              { month, ...row, cardPin: 0 },
            ],
            days: daysOf(month).map((day) =>
              day === first
                ? { day, ...row }
                : { day, ...row, cardPin: 0, cardVisual: 0, numbers: 0, patients: 0, cardPatients: 0 },
            ),
          };
        },
        // the line's state changes and the tunnel's, with the reasons the daemon gives them
        listLineEvents: async () => [
          { at: start - 60_000, kind: 'state', state: 'up', reason: 'starting' },
          { at: start + step, kind: 'tunnel', state: 'down', reason: 'CHILD_SA DELETING, IKE_SA ESTABLISHED' },
          {
            at: start + step,
            kind: 'state',
            state: 'down',
            reason: 'line down: CHILD_SA DELETING, IKE_SA ESTABLISHED',
          },
          { at: start + 3 * step - 30_000, kind: 'tunnel', state: 'up', reason: 'CHILD_SA installed' },
          { at: start + 3 * step, kind: 'state', state: 'up', reason: 'central answered' },
          { at: start + 4 * step, kind: 'state', state: 'degraded', reason: '1 failure(s) (last: CENTRAL_TIMEOUT)' },
          { at: start + 5 * step, kind: 'state', state: 'down', reason: '3 failures in a row (last: CENTRAL_TIMEOUT)' },
          {
            at: start + 6 * step,
            kind: 'state',
            state: 'degraded',
            reason: 'central answered in 6200 ms (slow above 5000 ms)',
          },
          { at: start + 7 * step, kind: 'state', state: 'up', reason: 'central answered' },
        ],
      }),
    });
    const { page } = await open(t, h);
    await firstLogin(page, h);
    h.setStatus({ ready: false, checks: { store: true, api: false }, clock: { skewMs: -20 } });
    const english = (): Promise<string[]> => englishOn(page);
    const visit = async (path: string, name: string): Promise<void> => {
      await page.goto(h.url + path);
      t.same(await english(), [], `${path}: no English`);
      await shot(page, name);
    };
    // some of everything to show: a client, an audit trail with refusals, errors on forms
    await page.goto(`${h.url}/clients`);
    await page.fill('#client-name', '受付1');
    await submit(page, '#client-add');
    for (const path of [
      '/',
      '/history',
      '/events',
      '/reconciliation',
      '/rechecks',
      '/batches',
      '/usage',
      '/clients',
      '/audit',
      '/settings',
    ]) {
      await visit(path, `ja${path.replace(/\//g, '-') || '-dashboard'}`);
    }
    await visit('/history?range=7d', 'ja-history-7d');
    await visit('/backup', 'ja-backup');
    await visit('/support', 'ja-support');
    await visit('/password', 'ja-password');
    await page.goto(`${h.url}/history`);
    t.equal(
      await page.locator('svg.chart').count(),
      5,
      'the line, checks by source and by method, answer times, outbox: drawn on the server',
    );
    t.match(
      await page.textContent('#no-central'),
      /10分\s*5\s*1/,
      'the outage: 10 minutes, 5 from the cache, 1 unanswered',
    );
    await visit('/no-such-page', 'ja-404');
    t.match(await page.textContent('main h2'), /ページがありません/);
    await page.goto(`${h.url}/`);
    t.match(await page.textContent('[data-field=clock]'), /中央とのずれ ±0秒/);
    t.match(await page.textContent('[data-field=ready]'), /レセコン接続/);

    // form errors
    await page.goto(`${h.url}/backup`);
    await page.fill('#bk-pass', 'short');
    await submit(page, '#backup-create');
    t.match(await page.textContent('[role=alert]'), /パスフレーズは8文字以上/);
    t.same(await english(), [], 'backup error: no English');
    await page.goto(`${h.url}/settings`);
    await page.fill('[name="api.port"]', '99999');
    await submit(page, '#settings-save');
    t.same(await english(), [], 'settings error: no English');
    // the review before saving: a change that can lock staff out, and the restart
    await page.fill('[name="api.port"]', '9100');
    await page.fill('[name="admin.port"]', '9443');
    await page.selectOption('[name="admin.enabled"]', 'false');
    await submit(page, '#settings-save');
    t.same(await english(), [], 'settings review: no English');
    await shot(page, 'ja-settings-review');
    await page.goto(`${h.url}/audit`);
    t.same(await english(), [], 'audit after refusals: no English');
  });

  t.test(
    'staff can act: the patient and the receipt computer by name, who handled it, alerts with what to do',
    async (t) => {
      const items: ReconciliationItem[] = [];
      const h = await harness(t, {
        backend: ({ clients }) => {
          const reception = clients.add('受付1').client;
          items.push({
            id: '7',
            checkedAt: new Date(Date.now() - 3_600_000).toISOString(),
            reverifiedAt: new Date().toISOString(),
            kind: 'numbers',
            client: reception.id,
            patient: { name: '山田 花子', birthdate: '1980-04-01', insurerNumber: '06130011', symbolNumber: '12・345' },
            before: '有効',
            after: '無効',
          });
          return {
            listReconciliation: async ({ includeHandled }) => items.filter((i) => includeHandled || !i.handledAt),
            markHandled: async (id, by) => {
              const i = items.find((x) => x.id === id)!;
              i.handledAt = new Date().toISOString();
              i.handledBy = by;
            },
          };
        },
      });
      h.setStatus({
        alerts: [{ code: 'STORE_KEY_CREATED', message: 'a new cache key was created' }],
        reconciliation: { open: 1 },
      } as Partial<GatewayStatus>);
      const { page } = await open(t, h);
      await firstLogin(page, h);
      const attention = await page.textContent('.attention');
      t.match(attention, /再照会で結果が変わった確認が1件あります/);
      t.match(attention, /キャッシュの暗号鍵を新しく作りました。.*バックアップを作り/);
      await shot(page, 'ja-dashboard-attention');
      await page.goto(`${h.url}/reconciliation`);
      const row = page.locator('tr[data-id="7"]');
      t.match(await row.textContent(), /受付1/, 'the receipt computer by name');
      t.match(await row.textContent(), /山田 花子.*保険者番号 06130011.*記号・番号 12・345/);
      await submit(page, 'tr[data-id="7"] button');
      await page.goto(`${h.url}/reconciliation?all=1`);
      t.match(
        await page.locator('tr[data-id="7"]').textContent(),
        /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d admin/,
        'who and when',
      );
      await shot(page, 'ja-reconciliation-handled');
    },
  );
}
