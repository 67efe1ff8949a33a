/**
 * As a new user would, against the real sandbox (`onshi sandbox`: the daemon as its own process,
 * real pcscd with the virtual card, central behind the line fault proxy): the admin page opens in
 * Debian's Chromium, the first login uses the secret on the READY line and forces a change, the
 * dashboard shows the sandbox's reader, card and line, a line cut shows within 5 s, and a client
 * token made on the page connects to the WebSocket API.
 */
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { GatewayClient } from '../../src/client/index.js';
import { readTlsIdentity } from '../../src/ops/tls-identity.js';
import { startSandboxProcess } from '../helpers/sandbox-cli.js';
import { ensurePcscd } from '../helpers/pcscd.js';
import { hasChromium, launchChromium } from '../helpers/chromium.js';

const BIN = fileURLToPath(new URL('../../bin/onshi.js', import.meta.url));
const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'browser');
const run = promisify(execFile);
t.setTimeout(240_000);

if (hasChromium(t) && (await ensurePcscd(t))) {
  t.test('the sandbox admin page: first login, live dashboard, a line cut, a token that connects', main);
}

async function main(t: Test): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const { state, ready } = await startSandboxProcess(t, 'onshi-sandbox-admin-');
  t.match(
    ready,
    { admin: /^https:\/\/localhost:\d+\/$/, 'admin-secret': /\S{16,}/, health: /^http:\/\/127\.0\.0\.1:\d+\/status$/ },
    'READY names the admin page, its first secret and health',
  );
  const base = ready.admin!.replace(/\/$/, '');
  const tls = readTlsIdentity(join(state, 'gateway'));
  t.ok(tls, 'the gateway made its own certificate on first start');

  const browser = await launchChromium(tls!.spkiSha256);
  t.teardown(() => browser.close());
  const page = await (await browser.newContext({ locale: 'ja-JP' })).newPage();
  page.setDefaultTimeout(10_000);
  const shot = (name: string): Promise<Buffer> =>
    page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

  // First login: the READY line's secret, then the forced change.
  await page.goto(base);
  t.equal(new URL(page.url()).pathname, '/login', 'login required from the first start');
  await page.fill('#password', ready['admin-secret']!);
  await Promise.all([page.waitForURL(`${base}/password`), page.click('#login')]);
  await page.fill('#current', ready['admin-secret']!);
  await page.fill('#next', 'sandbox admin passphrase');
  await page.fill('#confirm', 'sandbox admin passphrase');
  await Promise.all([page.waitForURL(`${base}/?done=password`), page.click('#change')]);

  // The dashboard shows the sandbox's own parts.
  await page.locator('[data-field=reader]').filter({ hasText: 'Virtual PCD 00 00' }).waitFor();
  t.match(await page.textContent('[data-field=card]'), /カードあり|挿入/, 'the virtual card is in the reader');
  await page.locator('[data-field=line]').filter({ hasText: '接続中' }).waitFor();
  t.match(await page.textContent('[data-field=tls]'), tls!.fingerprint, 'the page shows the certificate fingerprint');
  await shot('20-sandbox-dashboard');

  // Cut the closed line with the CLI a new user would use; the dashboard follows within 5 s.
  const cut = Date.now();
  await run(process.execPath, [BIN, 'sim', 'line', 'down'], { env: { ...process.env, ONSHI_SIM_LINE: ready.line! } });
  await page.locator('[data-field=line]').filter({ hasText: '切断' }).waitFor({ timeout: 5000 });
  t.pass(`the outage showed ${Date.now() - cut} ms after the cut`);
  t.equal(await page.getAttribute('[data-field=line]', 'data-tone'), 'bad');
  await shot('21-sandbox-line-down');
  await run(process.execPath, [BIN, 'sim', 'line', 'up'], { env: { ...process.env, ONSHI_SIM_LINE: ready.line! } });

  // Back up: the dashboard's 24 hours show the cut as a finished period with its length, live,
  // from the daemon's own audit entries (line.state.*).
  await page.locator('[data-field=line]').filter({ hasText: '接続中' }).waitFor({ timeout: 30_000 });
  const down = page.locator('[data-timeline] tr[data-state=down]').filter({ hasNotText: '継続中' });
  await down.first().waitFor({ timeout: 20_000 });
  t.match(await down.first().textContent(), /切断.*\d+(秒|分)/, 'the cut, with its length');
  t.ok((await page.locator('[data-timeline] svg.timeline rect.s-down').count()) >= 1, 'on the timeline');
  await shot('21b-sandbox-line-back');

  // A token made on the page connects to the API; a revoked one no longer does.
  await page.goto(`${base}/clients`);
  await page.fill('#client-name', 'reception-2');
  await Promise.all([page.waitForNavigation(), page.click('#client-add')]);
  const token = (await page.textContent('#new-token'))!.trim();
  const client = await GatewayClient.connect(ready.ws!, token);
  t.equal(
    (client.welcome?.client as { name: string } | undefined)?.name,
    'reception-2',
    'the new token is accepted at once',
  );
  t.equal((await client.request({ type: 'ping' })).type, 'pong');
  // the page sees it connected, through the daemon's API server
  await page.goto(`${base}/clients`);
  t.match(await page.textContent('tr[data-client="reception-2"]'), /接続中（1）/, 'connected now, on the page');
  client.close();

  // Everything above is in the audit chain, and the page lists it.
  await page.goto(`${base}/audit`);
  const auditText = (await page.textContent('main table')) ?? '';
  t.match(auditText, /ログイン/, 'the login is audited');
  t.match(auditText, /レセコン接続の追加/, 'the token change is audited');
  t.match(auditText, /回線: 切断/, "the line's changes are in the chain, in Japanese");
  await shot('22-sandbox-audit');
  const verify = await run(process.execPath, [BIN, 'audit', 'verify', '--json', '--config', ready.config!]);
  t.match(JSON.parse(verify.stdout), { ok: true }, 'onshi audit verify: the chain holds');
}
