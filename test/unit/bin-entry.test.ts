// bin/onshi.js runs the daemon's bundle (dist/bundle/, scripts/bundle.mjs) only when it is not older
// than dist/: a bare `tsc` rebuilds dist/ alone, and a stale bundle would run old code.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { testdir } from '../helpers/testdir.js';

const BIN = new URL('../../bin/onshi.js', import.meta.url);

function tree(t: Parameters<typeof testdir>[0]): string {
  const root = testdir(t);
  mkdirSync(join(root, 'bin'));
  copyFileSync(BIN, join(root, 'bin', 'onshi.js'));
  writeFileSync(join(root, 'package.json'), '{"type":"module"}');
  for (const [dir, file, says] of [
    ['dist/cli', 'index.js', 'modules'],
    ['dist/bundle', 'cli.js', 'bundle'],
    ['dist/sim', 'cli.js', 'sim'],
  ] as const) {
    mkdirSync(join(root, dir), { recursive: true });
    writeFileSync(join(root, dir, file), `export const main = () => { console.log('${says}'); return 0; };\n`);
  }
  return root;
}

const run = (root: string, ...args: string[]) =>
  spawnSync(process.execPath, [join(root, 'bin', 'onshi.js'), ...args], { encoding: 'utf8' }).stdout.trim();

t.test('the bundle when it is as new as dist/, dist/ when the bundle is older', async (t) => {
  const root = tree(t);
  const at = (rel: string, s: number) => utimesSync(join(root, rel), s, s);
  at('dist/cli/index.js', 1_000_000);
  at('dist/bundle/cli.js', 1_000_000);
  t.equal(run(root, 'status'), 'bundle', 'same time (a package clamps every mtime): the bundle');
  at('dist/bundle/cli.js', 999_000);
  t.equal(run(root, 'status'), 'modules', 'a bundle older than dist/: dist/');
  t.equal(run(root, 'sim'), 'sim', 'the simulator never comes from the bundle');
});
