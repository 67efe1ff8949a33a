// The layout stays readable (issue 15): no function in src/ longer than ~150 lines, no folder with
// more than ~20 files of its own or more than ~30 % of the lines. A long function is the first sign
// of a composition root or a parser growing back into one piece.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import t from 'tap';
import ts from 'typescript';

const SRC = resolve(import.meta.dirname, '../../src');
const MAX_FUNCTION_LINES = 150;
const MAX_OWN_FILES = 20;
const MAX_SHARE = 0.3;

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return tsFiles(p);
    return n.endsWith('.ts') ? [p] : [];
  });
}

/** Every function, method, arrow and constructor longer than `max` lines, as "file:line name (n lines)". */
export function longFunctions(file: string, text: string, max: number): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isFunctionLike(n) && 'body' in n && n.body) {
      const from = sf.getLineAndCharacterOfPosition(n.getStart()).line;
      const to = sf.getLineAndCharacterOfPosition(n.getEnd()).line;
      const name = 'name' in n && n.name ? n.name.getText(sf) : '(anonymous)';
      if (to - from > max) found.push(`${relative(SRC, file)}:${from + 1} ${name} (${to - from} lines)`);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return found;
}

const files = tsFiles(SRC);

t.test(`no function in src/ longer than ${MAX_FUNCTION_LINES} lines`, async (t) => {
  const long = files.flatMap((f) => longFunctions(f, readFileSync(f, 'utf8'), MAX_FUNCTION_LINES));
  t.same(long, [], long.join('\n'));
});

t.test('the measure finds a long function (so the check above can fail)', async (t) => {
  const body = Array.from({ length: 200 }, (_, i) => `  const v${i} = ${i};`).join('\n');
  t.same(longFunctions(join(SRC, 'x.ts'), `export function big() {\n${body}\n}\n`, MAX_FUNCTION_LINES), [
    'x.ts:1 big (201 lines)',
  ]);
});

t.test(
  `no folder holds more than ${MAX_OWN_FILES} files of its own or ${MAX_SHARE * 100} % of the lines`,
  async (t) => {
    const lines = new Map<string, number>();
    const own = new Map<string, number>();
    let total = 0;
    for (const f of files) {
      const rel = relative(SRC, f).split('/');
      const top = rel.length > 1 ? rel[0]! : '.';
      const dir = rel.slice(0, -1).join('/') || '.';
      const n = readFileSync(f, 'utf8').split('\n').length;
      lines.set(top, (lines.get(top) ?? 0) + n);
      own.set(dir, (own.get(dir) ?? 0) + 1);
      total += n;
    }
    const crowded = [...own].filter(([, n]) => n > MAX_OWN_FILES).map(([d, n]) => `${d}: ${n} files`);
    const heavy = [...lines]
      .filter(([, n]) => n / total > MAX_SHARE)
      .map(([d, n]) => `${d}: ${Math.round((n / total) * 100)} %`);
    t.same(crowded, [], crowded.join(', '));
    t.same(heavy, [], heavy.join(', '));
  },
);
