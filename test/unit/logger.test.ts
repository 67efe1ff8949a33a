import t from 'tap';
import { Writable } from 'node:stream';
import { createLogger, redact } from '../../src/core/logger.js';
import { RUN_TYPESCRIPT } from '../helpers/typescript.js';

function capture(level: 'info' | 'debug' = 'debug') {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(c, _e, cb) {
      lines.push(JSON.parse(c.toString()) as Record<string, unknown>);
      cb();
    },
  });
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
  log.debug('oops', {
    pin: '1234',
    query: { insurerNumber: '06139992' },
    nested: { deeper: [{ name: 'テスト　太郎', ok: 1 }] },
    token: 'onshi_x',
  });
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
  t.same(
    lines.map((l) => l.message),
    ['loud'],
  );
});

t.test('a line below the level is not even formatted, and a level raised at run time is honoured', async (t) => {
  const { log, lines } = capture('info');
  let touched = 0;
  log.debug('quiet', {
    get probe() {
      touched++;
      return 1;
    },
  });
  t.equal(touched, 0, 'the redaction never walked the dropped entry');
  log.level = 'debug';
  log.debug('now heard', {
    get probe() {
      touched++;
      return 1;
    },
  });
  await new Promise((r) => setImmediate(r));
  t.ok(touched > 0);
  t.same(
    lines.map((l) => l.message),
    ['now heard'],
  );
});

t.test('redact keeps errors readable without their stacks', async (t) => {
  t.same(redact({ e: Object.assign(new Error('boom'), { code: 'X' }) }), {
    e: { name: 'Error', message: 'boom', code: 'X' },
  });
});

t.test('standard output gets one write per turn of the loop, and what is waiting at exit is written', async (t) => {
  const { CoalescedOutput } = await import('../../src/core/logger.js');
  const { openSync, readFileSync, closeSync } = await import('node:fs');
  const { join } = await import('node:path');
  const file = join(t.testdir(), 'out');
  const fd = openSync(file, 'w');
  const out = new CoalescedOutput(fd);
  const log = createLogger({ level: 'info', stream: out });
  for (let i = 0; i < 3; i++) log.info(`line ${i}`);
  await new Promise((r) => process.nextTick(r));
  t.equal(readFileSync(file, 'utf8'), '', 'nothing written within the same turn');
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  t.same(
    readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { message: string }).message),
    ['line 0', 'line 1', 'line 2'],
  );
  closeSync(fd);

  // A daemon that logs and exits at once (a fatal start) must not lose its last lines.
  const { spawnSync } = await import('node:child_process');
  const script = `import { createLogger } from ${JSON.stringify(new URL('../../src/core/logger.ts', import.meta.url).href)};
    const log = createLogger({ level: 'info' }); log.error('fatal: last words', { event: 'x' }); process.exit(3);`;
  const r = spawnSync(process.execPath, [...RUN_TYPESCRIPT, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  t.equal(r.status, 3);
  t.match(r.stdout, /"message":"fatal: last words"/, 'the line written at exit');
});

t.test('every line is well-formed JSON and UTF-8 whatever the input: lone surrogates anywhere', async (t) => {
  const raw: string[] = [];
  const stream = new Writable({
    write(c, _e, cb) {
      raw.push(c.toString());
      cb();
    },
  });
  const log = createLogger({ level: 'info', stream });
  let deep: Record<string, unknown> = { leaf: 'x\udc00' };
  for (let i = 0; i < 12; i++) deep = { [`k${i}`]: deep };
  log.info('hello \ud800', {
    event: 'ws.hello',
    client: 'bad\ud800',
    list: ['\udfff', 'ok 😀'],
    ['key\ud83d']: 1,
    deep,
    err: new Error('boom \ud800'),
  });
  await new Promise((r) => setImmediate(r));
  t.equal(raw.length, 1);
  const line = raw[0] as string;
  // Log tools reject an escaped lone surrogate (\ud800) as well as a raw one.
  t.notMatch(line, /\\u[dD][89a-fA-F][0-9a-fA-F]{2}/, 'no surrogate escapes in the text');
  t.equal(Buffer.from(line, 'utf8').toString('utf8'), line, 'the text survives UTF-8 encoding unchanged');
  const parsed = JSON.parse(line) as Record<string, unknown>;
  const lone = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
  const strings: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') strings.push(v);
    else if (v && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) {
        strings.push(k);
        walk(x);
      }
  };
  walk(parsed);
  t.same(
    strings.filter((s) => lone.test(s)),
    [],
    'no lone surrogate in any key or value',
  );
  t.match(parsed, { message: 'hello \ufffd', client: 'bad\ufffd', list: ['\ufffd', 'ok 😀'], 'key\ufffd': 1 });
  t.match(parsed, { err: { message: 'boom \ufffd' } });
});

t.test('what native JSON refuses still makes a line: a BigInt, a cycle below the redaction depth', async (t) => {
  const { log, lines } = capture();
  let deep: Record<string, unknown> = {};
  const top = deep;
  for (let i = 0; i < 12; i++) deep = deep.next = {} as Record<string, unknown>;
  deep.back = top; // a cycle deeper than redact copies
  log.info('odd', { big: 10n, top, pin: '1234' });
  await new Promise((r) => setImmediate(r));
  t.equal(lines.length, 1);
  t.match(lines[0], { level: 'info', message: 'odd', big: '10', pin: '[redacted]', timestamp: /^\d{4}-/ });
  t.notOk(JSON.stringify(lines[0]).includes('1234'), 'the PIN is not in the line');
});
