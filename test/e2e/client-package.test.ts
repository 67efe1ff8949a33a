/**
 * The published package as a consumer installs it: `onshi-gateway` and `onshi-gateway/client`
 * resolve through package.json's exports to the built library, and tsc on a consumer's TypeScript
 * gives each request its answer type and refuses wrong requests. (Here rather than in test/unit:
 * it checks the build, and tsc alone costs ~4 s of CPU.)
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

// ./scripts/test.sh builds before the tests that need the build; run on its own, it says what is missing.
for (const f of ['dist/client/index.js', 'dist/client/index.d.ts']) {
  if (!existsSync(join(ROOT, f))) t.fail(`${f} is missing: run npm run build first`);
}

t.test('a consumer imports onshi-gateway/client and gets typed answers', async (t) => {
  const dir = t.testdir({
    'package.json': JSON.stringify({ name: 'consumer', type: 'module', private: true }),
    'use.mjs': [
      "import { GatewayClient, PROTOCOL_VERSION } from 'onshi-gateway/client';",
      "import * as root from 'onshi-gateway';",
      'console.log(JSON.stringify({ connect: typeof GatewayClient.connect, version: PROTOCOL_VERSION, same: root.GatewayClient === GatewayClient }));',
    ].join('\n'),
    'use.ts': [
      "import { GatewayClient, type AnswerOf, type TopicEvent } from 'onshi-gateway/client';",
      'export async function use(c: GatewayClient): Promise<number> {',
      "  const st = await c.request({ type: 'status' });",
      '  const depth: number = st.status.outbox.depth;',
      "  const r = await c.request({ type: 'inquiry.numbers', query: { insurerNumber: '06139992', number: '1', birthdate: '19800401' } });",
      "  const source: 'central' | 'cache' | 'none' = r.result.source;",
      "  const items: AnswerOf<'rechecks.list'>['items'] = (await c.request({ type: 'rechecks.list' })).items;",
      "  c.onEvent('line', (e: TopicEvent<'line'>) => e.event satisfies 'line.state' | 'line.tunnel');",
      '  // @ts-expect-error a status answer has no result',
      '  void st.result;',
      '  // @ts-expect-error the query needs its birthdate',
      "  await c.request({ type: 'inquiry.numbers', query: { insurerNumber: '06139992', number: '1' } });",
      '  // @ts-expect-error no such request type',
      "  await c.request({ type: 'inquiry.guess' });",
      '  // @ts-expect-error itemId is a number',
      "  await c.request({ type: 'reconciliation.handle', itemId: '7' });",
      '  // @ts-expect-error an unknown field',
      "  await c.request({ type: 'ping', extra: 1 });",
      '  return depth + source.length + items.length;',
      '}',
    ].join('\n'),
    node_modules: { 'onshi-gateway': t.fixture('symlink', ROOT) },
  });
  const run = spawnSync(process.execPath, ['use.mjs'], { cwd: dir, encoding: 'utf8' });
  t.equal(run.status, 0, run.stderr);
  t.same(
    JSON.parse(run.stdout),
    { connect: 'function', version: '1.0', same: true },
    '"." and "./client" are the client',
  );

  const tsc = spawnSync(
    process.execPath,
    [
      join(ROOT, 'node_modules/typescript/bin/tsc'),
      '--noEmit',
      '--strict',
      '--skipLibCheck',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
      '--types',
      'node',
      '--typeRoots',
      join(ROOT, 'node_modules/@types'),
      'use.ts',
    ],
    { cwd: dir, encoding: 'utf8' },
  );
  t.equal(tsc.status, 0, `tsc on the consumer: ${tsc.stdout}${tsc.stderr}`);
});
