import t from 'tap';
import { Writable } from 'node:stream';
import { createLogger, redact } from '../../src/gateway/logger.js';

function capture(level: 'info' | 'debug' = 'debug') {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({ write(c, _e, cb) { lines.push(JSON.parse(c.toString()) as Record<string, unknown>); cb(); } });
  return { log: createLogger({ level, stream, component: 'test' }), lines };
}

t.test('JSON lines with level, message, timestamp and component', async (t) => {
  const { log, lines } = capture();
  log.info('hello', { event: 'x', ms: 3 });
  await new Promise((r) => setImmediate(r));
  t.match(lines[0], { level: 'info', message: 'hello', event: 'x', ms: 3, component: 'test', timestamp: /^\d{4}-/ });
});

t.test('personal and secret fields are redacted wherever they appear, at every level', async (t) => {
  const { log, lines } = capture('debug');
  log.debug('oops', { pin: '1234', query: { insurerNumber: '06139992' }, nested: { deeper: [{ name: 'テスト　太郎', ok: 1 }] }, token: 'onshi_x' });
  await new Promise((r) => setImmediate(r));
  const text = JSON.stringify(lines[0]);
  for (const s of ['1234', '06139992', 'テスト', 'onshi_x']) t.notOk(text.includes(s), `${s} not in the log`);
  t.match(lines[0], { pin: '[redacted]', query: '[redacted]', nested: { deeper: [{ name: '[redacted]', ok: 1 }] } });
});

t.test('levels below the configured one are dropped', async (t) => {
  const { log, lines } = capture('info');
  log.debug('quiet');
  log.warn('loud');
  await new Promise((r) => setImmediate(r));
  t.same(lines.map((l) => l.message), ['loud']);
});

t.test('a line below the level is not even formatted, and a level raised at run time is honoured', async (t) => {
  const { log, lines } = capture('info');
  let touched = 0;
  log.debug('quiet', { get probe() { touched++; return 1; } });
  t.equal(touched, 0, 'the redaction never walked the dropped entry');
  log.level = 'debug';
  log.debug('now heard', { get probe() { touched++; return 1; } });
  await new Promise((r) => setImmediate(r));
  t.ok(touched > 0);
  t.same(lines.map((l) => l.message), ['now heard']);
});

t.test('redact keeps errors readable without their stacks', async (t) => {
  t.same(redact({ e: Object.assign(new Error('boom'), { code: 'X' }) }), { e: { name: 'Error', message: 'boom', code: 'X' } });
});
