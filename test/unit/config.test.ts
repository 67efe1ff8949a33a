import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_VALIDATOR_FILE, configValidatorSource } from '../../scripts/lib/config-validator-source.js';
import { configMarkdown, envNameFor, loadConfig, validateConfig } from '../../src/core/config.js';

/** A file `name` holding `body` in the test's t.testdir(). */
const file = (t: Test, name: string, body: string): string => join(t.testdir({ [name]: body }), name);

t.test('defaults fill everything the sandbox needs', async (t) => {
  const c = validateConfig({});
  t.equal(c.api.host, '127.0.0.1');
  t.equal(c.api.maxPayloadBytes, 65536);
  t.equal(c.log.level, 'info');
  t.equal(c.central.timeoutMs, 10000);
  t.equal(c.reader.enabled, true);
});

t.test('environment overrides the file, with types coerced from the schema', async (t) => {
  const f = file(t, 'a.json', JSON.stringify({ api: { port: 9000 }, log: { level: 'warn' } }));
  const c = loadConfig({
    file: f,
    env: { ONSHI_API_PORT: '9100', ONSHI_READER_ENABLED: 'false', ONSHI_CENTRAL_CA_FILE: '/x/ca.pem' },
  });
  t.equal(c.api.port, 9100);
  t.equal(c.log.level, 'warn', 'the file value stays where the environment says nothing');
  t.equal(c.reader.enabled, false);
  t.equal(c.central.caFile, '/x/ca.pem');
  t.equal(envNameFor(['central', 'caFile']), 'ONSHI_CENTRAL_CA_FILE');
});

t.test('errors name every bad key, why, and where it came from', async (t) => {
  const f = file(t, 'bad.json', JSON.stringify({ api: { port: 99999 }, log: { level: 'loud' }, bogus: 1 }));
  const err = (() => {
    try {
      loadConfig({ file: f, env: { ONSHI_API_HEARTBEAT_MS: 'often' } });
    } catch (e) {
      return e as { code: string; message: string; details: { problems: string[] } };
    }
  })();
  t.equal(err?.code, 'CONFIG_INVALID');
  const msg = err!.message;
  t.match(msg, /api\.port must be <= 65535 \(from file /);
  t.match(msg, /log\.level must be one of "error", "warn", "info", "debug"/);
  t.match(msg, /bogus is not a known setting/);
  t.match(msg, /api\.heartbeatMs must be integer \(from environment ONSHI_API_HEARTBEAT_MS\)/);
  t.equal(err!.details.problems.length, 4);
});

t.test('a missing file is fine by default, an error when named; bad JSON is an error', async (t) => {
  const dir = t.testdir({ 'x.json': '{oops', 'y.json': '[1]' });
  t.equal(loadConfig({ file: join(dir, 'nope.json'), env: {} }).api.port, 8765);
  t.throws(() => loadConfig({ file: join(dir, 'nope.json'), env: {}, explicit: true }), { code: 'CONFIG_UNREADABLE' });
  t.throws(() => loadConfig({ file: join(dir, 'x.json'), env: {} }), {
    code: 'CONFIG_INVALID',
    message: /not valid JSON/,
  });
  t.throws(() => loadConfig({ file: join(dir, 'y.json'), env: {} }), {
    code: 'CONFIG_INVALID',
    message: /JSON object/,
  });
});

t.test('docs/configuration.md is generated from the schema and up to date', async (t) => {
  const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  t.equal(doc, configMarkdown(), 'run `npm run docs` after changing the schema');
  t.match(doc, /ONSHI_CENTRAL_KEY_FILE/);
});

t.test('the generated config validator is current with the schema', async (t) => {
  t.equal(
    readFileSync(CONFIG_VALIDATOR_FILE, 'utf8'),
    configValidatorSource(),
    'run `npm run docs` after changing the schema',
  );
});
