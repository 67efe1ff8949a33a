#!/usr/bin/env node
// The `onshi` entry: simulator commands load src/sim, everything else the gateway, so the daemon
// never loads simulator code. Runs the built JavaScript (npm run build): the gateway from
// dist/bundle/ (a few files: node's loader costs per module) when it is at least as new as dist/,
// else from dist/ itself (a bare `tsc` rebuilds dist/ only).
import { statSync } from 'node:fs';

const [command] = process.argv.slice(2);
const mtime = (rel) => {
  try {
    return statSync(new URL(rel, import.meta.url)).mtimeMs;
  } catch {
    return -1;
  }
};
const gateway =
  mtime('../dist/bundle/cli.js') >= mtime('../dist/cli/index.js') ? '../dist/bundle/cli.js' : '../dist/cli/index.js';
const entry = command === 'sim' || command === 'sandbox' ? '../dist/sim/cli.js' : gateway;
let mod;
try {
  mod = await import(new URL(entry, import.meta.url));
} catch (e) {
  if (e && e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('/dist/')) {
    process.stderr.write('onshi: the build is missing; run `npm run build` (or ./scripts/sandbox.sh) first\n');
    process.exit(1);
  }
  throw e;
}
const code = await mod.main(process.argv.slice(2));
process.exitCode = code;
