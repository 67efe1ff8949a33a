// `onshi audit verify`: reads the config's stateDir, prints the result, exit 0 (intact) / 1 (broken).
import t from 'tap';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { DB_FILE, GatewayStore } from '../../src/cache/index.js';
import { cliConfig, runCli } from '../helpers/cli.js';

t.test('intact log: exit 0; tampered: exit 1 naming the entry', async (t) => {
  const { stateDir: dir, config } = cliConfig(t);
  const s = await GatewayStore.open({ dir });
  for (let i = 0; i < 3; i++)
    await s.audit.append({
      kind: 'check',
      actor: 'c1',
      action: 'inquiry.card',
      mode: 'card',
      outcome: 'valid',
      source: 'central',
      personal: { serial: `0${i}` },
    });
  // verify while the store is open, as next to a running daemon
  let r = await runCli(['audit', 'verify', '--config', config]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^audit log OK: 3 entries, head 3 [0-9a-f]{64}\n$/);
  await s.close();

  const db = new Database(join(dir, DB_FILE));
  db.prepare(`UPDATE audit SET outcome = 'invalid' WHERE seq = 2`).run();
  db.close();
  r = await runCli(['audit', 'verify', '--config', config]);
  t.equal(r.code, 1);
  t.match(r.out, /BROKEN at entry 2 \(changed\)/);
  r = await runCli(['audit', 'verify', '--config', config, '--json']);
  t.equal(r.code, 1);
  t.match(JSON.parse(r.out), { ok: false, seq: 2, reason: 'changed', entries: 1 });
});

t.test('no database: typed error, exit 1; usage errors exit 2', async (t) => {
  const { config } = cliConfig(t);
  const r = await runCli(['audit', 'verify', '--config', config]);
  t.equal(r.code, 1);
  t.match(JSON.parse(r.err), { error: { code: 'AUDIT_UNAVAILABLE' } });
  t.equal((await runCli(['audit'])).code, 2);
  t.equal((await runCli(['audit', 'verify', '--bogus'])).code, 2);
});
