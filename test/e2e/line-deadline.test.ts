/**
 * One client's short deadline is its own affair (issue 18 item 1): with central answering in
 * 300 ms, a client asking with deadlineMs 150 every 200 ms gets its answers from the outage path,
 * but the line stays 'up' and another client's normal checks all come from central. Through the
 * real daemon (built dist/, started by the CLI).
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CentralSim } from '../../src/sim/central/server.js';
import { ClientStore } from '../../src/api/tokens.js';
import { GatewayClient } from '../../src/client/index.js';
import { pkiFiles, sharedPki } from '../helpers/gateway.js';
import { kill, startDaemon } from '../helpers/daemon-process.js';

const QUERY = { insurerNumber: '06139992', symbol: 'テスト', number: '12345', branch: '00', birthdate: '19800401' };

t.test("a client's own short deadline never moves the line out of 'up'", async (t) => {
  const central = await CentralSim.start({ pki: await sharedPki() });
  const dir = mkdtempSync(join(tmpdir(), 'onshi-deadline-'));
  t.teardown(async () => {
    await central.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const f = pkiFiles();
  const file = join(dir, 'gw.json');
  const stateDir = join(dir, 'state');
  writeFileSync(
    file,
    JSON.stringify({
      stateDir,
      api: { port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      health: { port: 0 },
      central: { url: central.url, caFile: f.caFile, certFile: f.certFile, keyFile: f.keyFile },
    }),
  );
  const clients = new ClientStore(stateDir);
  const hurried = clients.add('hurried').token;
  const normal = clients.add('normal').token;
  const d = startDaemon(file);
  t.teardown(() => kill(d.child));
  const url = `ws://127.0.0.1:${await d.ready}/v1`;
  const a = await GatewayClient.connect(url, hurried);
  const b = await GatewayClient.connect(url, normal);
  t.teardown(() => Promise.all([a.close(), b.close()]).then(() => undefined));
  central.updateSettings({ latencyMs: 300 });

  const endAt = Date.now() + 6000;
  const hurriedSources: string[] = [];
  const hurriedRun = (async () => {
    const pending: Promise<void>[] = [];
    while (Date.now() < endAt) {
      pending.push(
        a.request({ type: 'inquiry.numbers', deadlineMs: 150, query: QUERY }).then(
          (m) => {
            hurriedSources.push(String((m.result as { source?: string } | undefined)?.source ?? m.type));
          },
          (e: { code?: string }) => {
            hurriedSources.push(e.code ?? 'error');
          },
        ),
      );
      await new Promise((r) => setTimeout(r, 200));
    }
    await Promise.all(pending);
  })();
  const normalSources: string[] = [];
  while (Date.now() < endAt) {
    const m = await b.request({ type: 'inquiry.numbers', query: QUERY });
    normalSources.push(String((m.result as { source?: string } | undefined)?.source ?? m.type));
  }
  await hurriedRun;

  t.ok(hurriedSources.length >= 20, `the hurried client sent ${hurriedSources.length} checks`);
  t.ok(
    hurriedSources.some((s) => s !== 'central'),
    'the hurried client did run out of its own time (the reproduction holds)',
  );
  t.ok(normalSources.length >= 10, `the normal client sent ${normalSources.length} checks`);
  t.same(
    normalSources.filter((s) => s !== 'central'),
    [],
    'every normal answer came from central',
  );
  const changes = d.lines.filter((l) => l.includes('"event":"line_state"'));
  t.same(changes, [], 'the line never left up');
});
