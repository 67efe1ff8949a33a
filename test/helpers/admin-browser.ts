/**
 * The admin page's browser tests' harness: an AdminServer over a state directory of its own (its
 * certificate, accounts, clients), a status the test sets, a backend the test may override, and
 * Debian's Chromium that trusts the certificate by its key (test/helpers/chromium.ts). With the
 * steps every test takes (log in, the forced change, submit and wait) and the checks several make
 * (no English on a Japanese page, no sideways scroll, tap targets).
 */
import type { Test } from 'tap';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { AdminAccounts, AdminServer, createAdminBackend } from '../../src/admin/index.js';
import type { AdminBackend, BasicBackendOptions } from '../../src/admin/backend.js';
import { ClientStore } from '../../src/api/tokens.js';
import { validateConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/core/logger.js';
import type { GatewayStatus } from '../../src/ops/status.js';
import { loadOrCreateTlsIdentity, type TlsIdentity } from '../../src/ops/tls-identity.js';
import { launchChromium } from './chromium.js';

export const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'browser');
/** The phone the pages are checked at (390 px wide: no sideways scroll, 44 px tap targets). */
export const PHONE = { width: 390, height: 844 };

export interface AdminHarness {
  url: string;
  dir: string;
  secret: string;
  clients: ClientStore;
  setStatus(over: Partial<GatewayStatus>): void;
  server: AdminServer;
  tls: TlsIdentity;
}

export function baseStatus(tls: TlsIdentity): GatewayStatus {
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

export interface HarnessOptions {
  maxFailures?: number;
  sessionIdleMs?: number;
  /** overrides of the basic backend's parts */
  backend?: (h: { clients: ClientStore }) => Partial<AdminBackend>;
  /** options of the basic backend (client activity, the restart seam) */
  basic?: (h: { clients: ClientStore }) => Partial<BasicBackendOptions>;
}

export async function adminHarness(t: Test, opts: HarnessOptions = {}): Promise<AdminHarness> {
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
      ...opts.basic?.({ clients }),
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
    sessionIdleMs: opts.sessionIdleMs ?? 600_000,
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

/** A Chromium of its own for this harness (trust is given per launch), a Japanese context. */
export async function openBrowser(
  t: Test,
  h: AdminHarness,
  opts: { viewport?: { width: number; height: number }; locale?: string } = {},
): Promise<{ context: BrowserContext; page: Page }> {
  const browser = await launchChromium(h.tls.spkiSha256);
  t.teardown(() => browser.close());
  const context = await browser.newContext({
    locale: opts.locale ?? 'ja-JP',
    ...(opts.viewport ? { viewport: opts.viewport } : {}),
  });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  return { context, page };
}

export function shot(page: Page, name: string): Promise<Buffer> {
  mkdirSync(ARTIFACTS, { recursive: true });
  return page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Clicks a submit button and waits for the page the form leads to (not the one already loaded). */
export async function submit(page: Page, selector: string): Promise<void> {
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(selector)]);
}

export async function login(page: Page, h: AdminHarness, password: string): Promise<void> {
  await page.goto(`${h.url}/login`);
  await page.fill('#password', password);
  await submit(page, '#login');
}

/** First login with the initial secret and the forced change; leaves the page on the dashboard. */
export async function firstLogin(page: Page, h: AdminHarness, newPassword = 'correct horse battery'): Promise<void> {
  await login(page, h, h.secret);
  await page.waitForURL(`${h.url}/password`);
  await page.fill('#current', h.secret);
  await page.fill('#next', newPassword);
  await page.fill('#confirm', newPassword);
  await Promise.all([page.waitForURL(`${h.url}/?done=password`), page.click('#change')]);
}

/** Latin words a Japanese page may show: protocol and file names, units, codes, setting values. */
export const JA_ALLOWED = new Set(
  (
    'TLS HTTPS LAN PEM CA JPKI PC/SC API Web cron ID IP wss UTF-8 Shift_JIS req res auto off on request error debug ' +
    'systemd root sudo onshi restore status pcscd SHA-256 NAME.local localhost Virtual PCD 00 admin SQLite ' +
    'healthz WebSocket req/res IPsec IKE ESP DPD VICI strongSwan IP-VPN ip-vpn ipsec cert psk CHILD_SA IKE_SA CSV'
  ).split(' '),
);

/**
 * Words of Latin letters on the page, minus identifiers staff type or compare (paths, codes,
 * fingerprints, ids, commands): on a Japanese page this list is empty.
 */
export async function englishOn(page: Page): Promise<string[]> {
  // a string, so the page's DOM types stay out of this Node project
  const text = await page.evaluate<string>(`(() => {
    const hidden = [...document.querySelectorAll('select, input, .fp, .token, #lang-switch, code')];
    for (const el of hidden) el.style.display = 'none';
    const text = document.title + '\\n' + document.body.innerText;
    for (const el of hidden) el.style.display = '';
    return text;
  })()`);
  const words = (text.match(/[A-Za-z0-9/][A-Za-z0-9_./:-]*/g) ?? []).filter((w) => /[A-Za-z]/.test(w));
  return words.filter((w) => !/^\/|^[0-9A-F:]+$|^[0-9a-f]{8}$/.test(w) && !JA_ALLOWED.has(w.replace(/[.:]+$/, '')));
}

/** How far the page is wider than the window (0: no sideways scroll). */
export function sidewaysOverflow(page: Page): Promise<number> {
  return page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
}

/** The visible elements matching `selector` whose box is under 44 px high or wide (label: text). */
export function smallTapTargets(page: Page, selector: string): Promise<string[]> {
  return page.evaluate<string[]>(`(() => [...document.querySelectorAll(${JSON.stringify(selector)})]
    .filter((el) => el.getClientRects().length > 0)
    .map((el) => [el, el.getBoundingClientRect()])
    .filter(([, r]) => r.height < 44 || r.width < 44)
    .map(([el, r]) => (el.id || el.textContent.trim().slice(0, 20)) + ' ' + Math.round(r.width) + 'x' + Math.round(r.height)))()`);
}
