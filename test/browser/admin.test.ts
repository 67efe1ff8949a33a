/**
 * The admin page in a real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core;
 * no browser is ever downloaded). The browser trusts the gateway's certificate by its public-key
 * fingerprint (--ignore-certificate-errors-spki-list), not by ignoring certificate errors.
 * Screenshots of each page go to test-artifacts/browser/.
 */
import t, { type Test } from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { AdminAccounts, AdminServer, createAdminBackend } from '../../src/admin/index.js';
import type { AdminBackend, ReconciliationItem } from '../../src/admin/backend.js';
import { ClientStore } from '../../src/api/tokens.js';
import { validateConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/core/logger.js';
import type { GatewayStatus } from '../../src/ops/status.js';
import { loadOrCreateTlsIdentity, type TlsIdentity } from '../../src/ops/tls-identity.js';
import { CHROMIUM, launchChromium } from '../helpers/chromium.js';

const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'browser');

if (!existsSync(CHROMIUM)) {
  if (process.env.CI)
    t.fail(`${CHROMIUM} is missing: the browser tests need Debian's chromium (scripts/lib/setup.sh installs it)`);
  else t.plan(0, `${CHROMIUM} is not installed (apt-get install chromium); browser tests skipped`);
} else {
  await run();
}

interface Harness {
  url: string;
  dir: string;
  secret: string;
  clients: ClientStore;
  setStatus(over: Partial<GatewayStatus>): void;
  server: AdminServer;
  tls: TlsIdentity;
}

function baseStatus(tls: TlsIdentity): GatewayStatus {
  const now = new Date().toISOString();
  return {
    version: '0.1.0',
    startedAt: now,
    now,
    ready: true,
    checks: { store: true, api: true },
    reader: { enabled: true, state: 'ready', readers: [{ name: 'Virtual PCD 00 00', cardPresent: true }] },
    card: { present: true, stage: 'idle' },
    line: { state: 'up', since: now },
    outbox: { depth: 0 },
    cache: { entries: 12 },
    clock: { skewMs: 800 },
    certificates: [{ name: 'central-client', notAfter: new Date(Date.now() + 200 * 86_400_000).toISOString() }],
    tls: { fingerprint: tls.fingerprint, spkiSha256: tls.spkiSha256, notAfter: tls.notAfter.toISOString() },
    api: { listening: true, port: 8765, connections: 1 },
  };
}

async function harness(
  t: Test,
  opts: { maxFailures?: number; backend?: (h: { clients: ClientStore }) => Partial<AdminBackend> } = {},
): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'onshi-admin-'));
  const tls = loadOrCreateTlsIdentity({ stateDir: dir, machineName: 'gw-test' });
  const accounts = new AdminAccounts(dir);
  const init = await accounts.ensureInitialized();
  const clients = new ClientStore(dir);
  let status = baseStatus(tls);
  const backend = {
    ...createAdminBackend({
      status: { status: () => ({ ...status, now: new Date().toISOString() }) },
      clients,
      configFile: join(dir, 'config.json'),
      stateDir: dir,
      config: validateConfig({ stateDir: dir }),
    }),
    ...opts.backend?.({ clients }),
  };
  const server = await AdminServer.start({
    host: '127.0.0.1',
    port: 0,
    tls,
    backend,
    accounts,
    logger: createLogger({ level: 'error' }),
    sessionIdleMs: 600_000,
    sessionMaxMs: 3_600_000,
    loginMaxFailures: opts.maxFailures ?? 5,
    loginLockoutMs: 60_000,
    liveIntervalMs: 250,
  });
  t.teardown(() => server.close());
  return {
    url: `https://localhost:${server.port}`,
    dir,
    secret: init!.secret!,
    clients,
    server,
    tls,
    setStatus: (over) => {
      status = { ...status, ...over };
    },
  };
}

async function run(): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  // One key for every harness of this file would be simpler, but each harness makes its own: trust
  // is given per launch, so the browser is launched per harness below.
  const launch = (tls: TlsIdentity): Promise<Browser> => launchChromium(tls.spkiSha256);

  async function open(t: Test, h: Harness): Promise<{ context: BrowserContext; page: Page }> {
    const browser = await launch(h.tls);
    t.teardown(() => browser.close());
    const context = await browser.newContext({ locale: 'ja-JP' });
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    return { context, page };
  }

  const shot = (page: Page, name: string): Promise<Buffer> =>
    page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

  /** Clicks a submit button and waits for the page the form leads to (not the one already loaded). */
  async function submit(page: Page, selector: string): Promise<void> {
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(selector)]);
  }

  async function login(page: Page, h: Harness, password: string): Promise<void> {
    await page.goto(`${h.url}/login`);
    await page.fill('#password', password);
    await submit(page, '#login');
  }

  /** First login with the initial secret and the forced change; leaves the page on the dashboard. */
  async function firstLogin(page: Page, h: Harness, newPassword = 'correct horse battery'): Promise<void> {
    await login(page, h, h.secret);
    await page.waitForURL(`${h.url}/password`);
    await page.fill('#current', h.secret);
    await page.fill('#next', newPassword);
    await page.fill('#confirm', newPassword);
    await Promise.all([page.waitForURL(`${h.url}/?done=password`), page.click('#change')]);
  }

  t.test('the certificate is trusted by its fingerprint, not by ignoring errors', async (t) => {
    const h = await harness(t);
    const { page } = await open(t, h);
    const res = await page.goto(`${h.url}/login`);
    t.equal(res?.status(), 200);
    const sec = await res!.securityDetails();
    t.equal(sec?.protocol, 'TLS 1.3');
    t.equal(sec?.subjectName, 'gw-test');
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

    await Promise.all([page.waitForURL(`${h.url}/login`), page.click('#logout')]);
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
      await post(`name=with-token&_csrf=${encodeURIComponent(token)}`),
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
    t.match(await page.textContent('main'), /無効にしました/);
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
          { at: start, central: 4, cache: 0, none: 0, outbox: 0 },
          { at: start + step, central: 0, cache: 3, none: 1, outbox: 4 },
          { at: start + 2 * step, central: 0, cache: 2, none: 0, outbox: 6 },
          { at: start + 3 * step, central: 5, cache: 0, none: 0, outbox: 0 },
        ],
      }),
    });
    const { page } = await open(t, h);
    await firstLogin(page, h);
    h.setStatus({ ready: false, checks: { store: true, api: false }, clock: { skewMs: -20 } });
    /** Words of Latin letters on the page, minus identifiers staff type or compare (paths, codes, units). */
    const english = async (): Promise<string[]> => {
      // a string, so the page's DOM types stay out of this Node project
      const text = await page.evaluate<string>(`(() => {
        const hidden = [...document.querySelectorAll('select, input, .fp, .token, #lang-switch')];
        for (const el of hidden) el.style.display = 'none';
        const text = document.title + '\\n' + document.body.innerText;
        for (const el of hidden) el.style.display = '';
        return text;
      })()`);
      const words = (text.match(/[A-Za-z0-9/][A-Za-z0-9_./:-]*/g) ?? []).filter((w) => /[A-Za-z]/.test(w));
      // paths, fingerprints and the receipt computers' ids are identifiers staff compare, not words
      return words.filter((w) => !/^\/|^[0-9A-F:]+$|^[0-9a-f]{8}$/.test(w) && !JA_ALLOWED.has(w.replace(/[.:]+$/, '')));
    };
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
      '/reconciliation',
      '/rechecks',
      '/batches',
      '/clients',
      '/audit',
      '/settings',
    ]) {
      await visit(path, `ja${path.replace(/\//g, '-') || '-dashboard'}`);
    }
    await visit('/backup', 'ja-backup');
    await visit('/support', 'ja-support');
    await visit('/password', 'ja-password');
    await page.goto(`${h.url}/history`);
    t.equal(await page.locator('svg.chart').count(), 2, 'two charts, drawn on the server');
    t.match(
      await page.textContent('main table'),
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

/** Latin words a Japanese page may show: protocol and file names, units, codes, setting values. */
const JA_ALLOWED = new Set(
  (
    'TLS HTTPS LAN PEM CA JPKI PC/SC API Web cron ID IP wss UTF-8 Shift_JIS req res auto off on request error debug ' +
    'systemd root sudo onshi restore status pcscd SHA-256 NAME.local localhost Virtual PCD 00 admin SQLite ' +
    'healthz WebSocket req/res IPsec IKE ESP DPD VICI strongSwan IP-VPN ip-vpn ipsec cert psk'
  ).split(' '),
);
