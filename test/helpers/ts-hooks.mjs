/**
 * Module hooks that run the tests' TypeScript (registered by ts-register.mjs): a relative
 * `./x.js` import from TypeScript finds `./x.ts` (NodeNext style), and a .ts module loads as the
 * JavaScript ts-cache.mjs keeps for it. Its URL stays the .ts file's, so `import.meta.url` and
 * paths relative to it are those of the source.
 */
import { existsSync } from 'node:fs';
import { javascriptOf } from './ts-cache.mjs';
import { fileURLToPath } from 'node:url';

export async function resolve(specifier, context, nextResolve) {
  const parent = context.parentURL;
  if (parent?.startsWith('file:') && parent.endsWith('.ts') && /^\.{1,2}\/.*\.js$/.test(specifier)) {
    const url = new URL(`${specifier.slice(0, -3)}.ts`, parent);
    if (existsSync(url)) return { url: url.href, format: 'module', shortCircuit: true };
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  if (url.startsWith('file:') && url.endsWith('.ts')) {
    return { format: 'module', source: await javascriptOf(fileURLToPath(url)), shortCircuit: true };
  }
  return nextLoad(url, context);
}
