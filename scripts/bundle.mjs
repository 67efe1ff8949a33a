// The daemon's path as a few files (npm run build, after tsc): dist/bundle/cli.js with the CLI and
// the daemon, dist/bundle/writer-worker.js for the store's writer thread, and chunks for what loads
// on demand (each CLI command, the admin page, the kiosk, the file exchange). Node's ESM loader costs
// per module: the daemon started 150–200 ms sooner from these than from the ~180 files in dist/.
// bin/onshi.js uses the bundle only when it is newer than dist/cli/index.js (a bare tsc leaves it stale).
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
rmSync(`${root}dist/bundle`, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  // The writer-worker entry sits next to the chunks: spawn-writer's `./writer-worker.js` is
  // resolved against the chunk it ends up in.
  entryPoints: { cli: 'dist/cli/index.js', 'writer-worker': 'dist/cache/writer-worker.js' },
  outdir: 'dist/bundle',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Dependencies stay in node_modules (native modules, and what the package installs).
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});
