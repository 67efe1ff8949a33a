/** `node --import=./test/helpers/ts-register.mjs file.ts`: runs TypeScript (ts-hooks.mjs). */
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
// Stack traces name the .ts lines (the compiled code carries inline source maps).
process.setSourceMapsEnabled(true);
