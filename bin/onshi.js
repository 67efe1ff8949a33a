#!/usr/bin/env node
// The `onshi` entry: simulator commands load src/sim, everything else the gateway, so the daemon
// never loads simulator code. Runs the built JavaScript in dist/ (npm run build).
const [command] = process.argv.slice(2);
const entry = command === 'sim' || command === 'sandbox' ? '../dist/sim/cli.js' : '../dist/cli/index.js';
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
