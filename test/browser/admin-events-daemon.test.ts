/**
 * The event log of a real gateway in Debian's Chromium (issue 19, "must show"): the daemon with its
 * admin page, the central simulator behind the line fault proxy; the line cut and restored; the
 * event log lists the outage with its length, the audit log finds the cache answer of the cut by
 * the receipt computer's name; the dashboard's timeline shows the cut with its length, the checks
 * chart the cache answer, the reconciliation list the patient and the receipt computer. Screenshots: test-artifacts/browser/evd-*.png.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClientStore } from '../../src/api/tokens.js';
import { HISTORY_STEP_MS } from '../../src/cache/index.js';
import { GatewayClient } from '../../src/client/index.js';
import { validateConfig } from '../../src/core/config.js';
import { startGateway } from '../../src/daemon/index.js';
import { CentralSim } from '../../src/sim/central/server.js';
import { peopleRows } from '../../src/sim/central/population.js';
import { FaultProxy } from '../../src/sim/line/index.js';
import { todayJst } from '../../src/oqs/dates.js';
import { englishOn, PHONE, shot, sidewaysOverflow, submit } from '../helpers/admin-browser.js';
import { hasChromium, launchChromium } from '../helpers/chromium.js';
import { sharedPki, waitFor } from '../helpers/gateway.js';
import { silentLogger } from '../helpers/logger.js';
import { outageConfig, queryOf } from '../helpers/outage.js';
import { testdir } from '../helpers/testdir.js';

t.setTimeout(180_000);

if (hasChromium(t)) {
  t.test('a line cut on a real gateway: the event log and the audit log show it', async (t) => {
    const pki = await sharedPki();
    const central = await CentralSim.start({ pki });
    t.teardown(() => central.close());
    const proxy = await FaultProxy.start({ targetHost: '127.0.0.1', targetPort: Number(new URL(central.url).port) });
    t.teardown(() => proxy.close());
    const stateDir = testdir(t);
    const { token } = new ClientStore(stateDir).add('受付1');
    const base = outageConfig(stateDir, `https://127.0.0.1:${proxy.port}`);
    const config = validateConfig({ ...base, admin: { ...base.admin, enabled: true, host: '127.0.0.1', port: 0 } });
    const gateway = await startGateway(config, { logger: silentLogger() });
    t.teardown(() => gateway.close());
    const client = await GatewayClient.connect(`ws://127.0.0.1:${gateway.wsPort}/v1`, token);
    t.teardown(() => client.close());
    const row = peopleRows(central.people, todayJst())[0]!;
    const ask = async (): Promise<string | undefined> =>
      (
        (await client.request({
          type: 'inquiry.numbers',
          id: `q${Date.now()}`,
          deadlineMs: 2000,
          query: queryOf(row),
        })) as {
          result: { source: string };
        }
      ).result.source;
    t.equal(await ask(), 'central', 'seen before the cut');

    proxy.setMode({ kind: 'down' });
    await waitFor(() => gateway.link.state === 'down', 'the line to be down', 15_000);
    t.equal(await ask(), 'cache', 'answered from the cache during the cut');
    // Meanwhile central learned that the patient left the insurer: the replay will differ.
    const person = central.people.find((p) => p.id === row.id)!;
    person.qualifications[0]!.disqualificationDate = todayJst();
    await new Promise((r) => setTimeout(r, 2000)); // a cut of a few seconds
    proxy.setMode({ kind: 'up' });
    await waitFor(() => gateway.link.state === 'up', 'the line to be up', 15_000);
    await waitFor(() => gateway.store.reconciliation.openCount() > 0, 'the changed outcome to be filed', 30_000);
    // The history job samples each 5-minute interval once it has ended; brought forward here, as
    // its next run would do it, so that this hour's cache answer is in the checks chart now.
    await gateway.store.history.sample(gateway.store.outbox.stats().depth, Date.now() + HISTORY_STEP_MS);

    const url = `https://localhost:${gateway.adminPort}`;
    const browser = await launchChromium(gateway.tls!.spkiSha256);
    t.teardown(() => browser.close());
    const page = await (await browser.newContext({ locale: 'ja-JP' })).newPage();
    page.setDefaultTimeout(10_000);
    const secret = readFileSync(join(stateDir, 'admin-initial-secret'), 'utf8').trim();
    await page.goto(`${url}/login`);
    await page.fill('#password', secret);
    await submit(page, '#login');
    await page.fill('#current', secret);
    await page.fill('#next', 'correct horse battery');
    await page.fill('#confirm', 'correct horse battery');
    await submit(page, '#change');

    // The dashboard's timeline: the cut with its length.
    await page.goto(`${url}/`);
    t.match(
      await page.locator('[data-timeline] tr[data-state=down]').first().textContent(),
      /切断.*\d+秒/s,
      "the dashboard's timeline: the cut and its length",
    );
    await shot(page, 'evd-dashboard-ja-desktop');
    // The checks chart: this hour's answer from the cache.
    await page.goto(`${url}/history`);
    t.ok((await page.locator('svg.chart rect.c-cache').count()) >= 1, "the checks chart: this hour's cache answer");
    // The reconciliation list: the patient and the receipt computer by name.
    await page.goto(`${url}/reconciliation`);
    const item = (await page.textContent('main')) ?? '';
    t.match(item, person.name, 'the reconciliation item names the patient');
    t.match(item, '受付1', '… and the receipt computer');
    t.same(await englishOn(page), [], '/reconciliation in Japanese');
    await shot(page, 'evd-reconciliation-ja-desktop');

    await page.goto(`${url}/events?kind=outage`);
    const cut = page.locator('tr[data-kind=outage]', { hasText: '回線が切断' }).first();
    t.match(
      await cut.textContent(),
      /回線が切断.*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d.*\d+秒/s,
      'the cut with its end and its length',
    );
    t.notMatch(await cut.textContent(), /継続中/, 'it has ended');
    t.same(await englishOn(page), [], 'in Japanese');
    await shot(page, 'evd-events-ja-desktop');
    await page.goto(`${url}/events`);
    t.match(await page.textContent('main'), /ゲートウェイ起動/, "the gateway's start");

    await page.goto(`${url}/audit?kind=check&q=${encodeURIComponent('受付1')}`);
    const checks = await page
      .locator('table.audit tbody tr')
      .evaluateAll((rows) => rows.map((r) => (r.textContent ?? '').replace(/\s+/g, ' ')));
    t.equal(checks.length, 2, 'the two checks of 受付1');
    t.match(checks[0], /受付1.*資格確認（番号）.*キャッシュ/, 'the newest: answered from the cache');
    await shot(page, 'evd-audit-ja-desktop');

    await page.setViewportSize(PHONE);
    for (const path of ['/', '/history', '/events', '/audit', '/reconciliation']) {
      await page.goto(url + path);
      t.equal(await sidewaysOverflow(page), 0, `${path}: no sideways scroll at 390 px`);
    }
    await shot(page, 'evd-audit-ja-phone');
  });
}
