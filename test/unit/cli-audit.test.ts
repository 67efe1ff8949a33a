// `onshi audit verify`: reads the config's stateDir, prints the result, exit 0 (intact) / 1 (broken).
import t, { type Test } from 'tap';
import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DB_FILE, GatewayStore } from '../../src/cache/index.js';
import { main } from '../../src/cli/index.js';

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string | Uint8Array) => {
    out += String(s);
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => {
    err += String(s);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await main(argv), out, err };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}

async function setup(t: Test): Promise<{ dir: string; config: string }> {
  const dir = t.testdir();
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ stateDir: join(dir, 'state') }));
  return { dir: join(dir, 'state'), config };
}

t.test('intact log: exit 0; tampered: exit 1 naming the entry', async (t) => {
  const { dir, config } = await setup(t);
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
  let r = await run(['audit', 'verify', '--config', config]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^audit log OK: 3 entries, head 3 [0-9a-f]{64}\n$/);
  await s.close();

  const db = new Database(join(dir, DB_FILE));
  db.prepare(`UPDATE audit SET outcome = 'invalid' WHERE seq = 2`).run();
  db.close();
  r = await run(['audit', 'verify', '--config', config]);
  t.equal(r.code, 1);
  t.match(r.out, /BROKEN at entry 2 \(changed\)/);
  r = await run(['audit', 'verify', '--config', config, '--json']);
  t.equal(r.code, 1);
  t.match(JSON.parse(r.out), { ok: false, seq: 2, reason: 'changed', entries: 1 });
});

t.test('no database: typed error, exit 1; usage errors exit 2', async (t) => {
  const { config } = await setup(t);
  const r = await run(['audit', 'verify', '--config', config]);
  t.equal(r.code, 1);
  t.match(JSON.parse(r.err), { error: { code: 'AUDIT_UNAVAILABLE' } });
  t.equal((await run(['audit'])).code, 2);
  t.equal((await run(['audit', 'verify', '--bogus'])).code, 2);
});
