// The layout's dependency rule (docs/architecture.md): each folder of src/ imports only the folders
// below it, and no module imports itself back through others — type-only imports included, since
// a type cycle is a design cycle that the next value import turns into a load-order bug.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import t from 'tap';

const SRC = resolve(import.meta.dirname, '../../src');

/** What each folder may import besides itself. Everything else is against the direction. */
export const ALLOWED: Record<string, readonly string[]> = {
  core: [],
  oqs: ['core'],
  protocol: ['core', 'oqs'],
  reader: ['core'],
  cache: ['core', 'oqs'],
  sync: ['core', 'oqs'],
  checks: ['core', 'oqs', 'protocol', 'reader', 'cache', 'sync'],
  ops: ['core', 'oqs', 'protocol', 'reader', 'cache', 'sync', 'checks'],
  'file-exchange': ['core', 'oqs', 'protocol', 'sync', 'checks'],
  api: ['core', 'oqs', 'protocol', 'reader', 'cache', 'sync', 'checks', 'ops'],
  admin: ['core', 'oqs', 'protocol', 'reader', 'cache', 'sync', 'checks', 'ops', 'api'],
  kiosk: ['core', 'oqs', 'protocol', 'reader', 'cache', 'sync', 'checks', 'ops', 'api'],
  client: ['core', 'protocol'],
  daemon: [
    'core',
    'oqs',
    'protocol',
    'reader',
    'cache',
    'sync',
    'checks',
    'ops',
    'file-exchange',
    'api',
    'admin',
    'kiosk',
  ],
  cli: [
    'core',
    'oqs',
    'protocol',
    'reader',
    'cache',
    'sync',
    'checks',
    'ops',
    'file-exchange',
    'api',
    'admin',
    'client',
    'daemon',
  ],
  // The simulator stands in for the far end: it may use the pure codecs and the PKI helpers, and
  // nothing of the gateway's own runtime.
  sim: ['core', 'oqs', 'reader'],
};

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

/** Relative imports of one file, resolved to the .ts files they name. */
export function importsOf(file: string, text = readFileSync(file, 'utf8')): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = (m[1] ?? m[2])!;
    out.push(resolve(dirname(file), spec).replace(/\.js$/, '.ts'));
  }
  return out;
}

export const folderOf = (file: string): string => relative(SRC, file).split('/')[0]!.replace(/\.ts$/, '');

/** Strongly connected components with more than one file (or a file importing itself). */
export function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || graph.get(v)?.includes(v)) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

t.test('the rule itself has no cycle and names every folder of src/', async (t) => {
  const folders = readdirSync(SRC).filter((n) => statSync(join(SRC, n)).isDirectory());
  t.same(
    folders.filter((f) => !(f in ALLOWED)),
    [],
    'every folder has a rule',
  );
  t.same(
    Object.keys(ALLOWED).filter((f) => !folders.includes(f)),
    [],
    'every rule has a folder',
  );
  t.same(cycles(new Map(Object.entries(ALLOWED).map(([k, v]) => [k, [...v]]))), [], 'the allowed edges form no cycle');
  t.same(
    readdirSync(SRC).filter((n) => n.endsWith('.ts')),
    [],
    'no module outside a folder',
  );
});

t.test('every import points down the layers', async (t) => {
  const wrong: string[] = [];
  for (const file of walk(SRC)) {
    const from = folderOf(file);
    for (const target of importsOf(file)) {
      const to = folderOf(target);
      if (to !== from && !ALLOWED[from]?.includes(to)) wrong.push(`${relative(SRC, file)} → ${relative(SRC, target)}`);
    }
  }
  t.same(wrong, [], 'imports against the direction');
});

t.test('no import cycle between modules, type-only imports included', async (t) => {
  const graph = new Map(walk(SRC).map((f) => [f, importsOf(f)]));
  t.same(
    cycles(graph).map((c) => c.map((f) => relative(SRC, f))),
    [],
    'cycles',
  );
});

t.test('the checker sees what it must (it could fail)', async (t) => {
  const fake = join(SRC, 'checks', 'x.ts');
  t.same(
    importsOf(
      fake,
      "import type { A } from '../admin/backend.js';\nexport { b } from './y.js';\nawait import('../sim/z.js');",
    ).map((f) => relative(SRC, f)),
    ['admin/backend.ts', 'checks/y.ts', 'sim/z.ts'],
  );
  t.same(
    cycles(
      new Map([
        ['a', ['b']],
        ['b', ['a']],
        ['c', ['a']],
      ]),
    ),
    [['a', 'b']],
  );
});
