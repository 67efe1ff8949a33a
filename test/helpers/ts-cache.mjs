/**
 * TypeScript for the tests, compiled once and kept: each .ts file is stripped of its types by
 * esbuild and the result kept on disk under its content's hash, so a test process reads the
 * JavaScript of every module instead of starting a compiler (tsx cost ~0.5 s of CPU per process).
 * Used by ts-hooks.mjs in every test process, and run as a script by scripts/test.sh to compile
 * the tree ahead of a run (`node test/helpers/ts-cache.mjs src test …`).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CACHE_DIR = process.env.ONSHI_TS_CACHE ?? join(ROOT, 'node_modules/.cache/onshi-ts');
// The options below are part of every key: changing them recompiles everything.
const OPTIONS = {
  loader: 'ts',
  format: 'esm',
  target: 'node20',
  sourcemap: 'inline',
  // tsconfig.json's target ES2022 implies define semantics for class fields.
  tsconfigRaw: { compilerOptions: { useDefineForClassFields: true } },
};
const SALT = JSON.stringify(OPTIONS);

function keyOf(path, source) {
  return createHash('sha1').update(SALT).update('\0').update(path).update('\0').update(source).digest('hex');
}

let esbuild;
async function compile(path, source) {
  esbuild ??= await import('esbuild');
  const { code } = await esbuild.transform(source, { ...OPTIONS, sourcefile: path });
  return code;
}

/** The JavaScript for the TypeScript file at `path`, from the cache or compiled into it. */
export async function javascriptOf(path) {
  const source = readFileSync(path, 'utf8');
  const file = join(CACHE_DIR, `${keyOf(path, source)}.js`);
  try {
    return readFileSync(file, 'utf8');
  } catch {
    const code = await compile(path, source);
    mkdirSync(CACHE_DIR, { recursive: true });
    // Several test processes may compile the same file at once: each renames a whole file in.
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
    writeFileSync(tmp, code);
    renameSync(tmp, file);
    return code;
  }
}

function* tsFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== 'fixtures') yield* tsFiles(path);
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) yield path;
  }
}

/** Compiles every .ts file under `dirs` into the cache; drops entries no file has used for a day. */
export async function warm(dirs) {
  const keep = new Set();
  const todo = [];
  for (const dir of dirs) {
    for (const path of tsFiles(resolve(ROOT, dir))) {
      const source = readFileSync(path, 'utf8');
      const key = keyOf(path, source);
      keep.add(`${key}.js`);
      try {
        statSync(join(CACHE_DIR, `${key}.js`));
      } catch {
        todo.push(path);
      }
    }
  }
  await Promise.all(todo.map((path) => javascriptOf(path)));
  const dayAgo = Date.now() - 86_400_000;
  for (const name of readdirSync(CACHE_DIR)) {
    const path = join(CACHE_DIR, name);
    if (!keep.has(name) && statSync(path).mtimeMs < dayAgo) rmSync(path, { force: true });
  }
  esbuild?.stop?.();
  return { files: keep.size, compiled: todo.length };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { files, compiled } = await warm(process.argv.slice(2));
  if (compiled > 0) console.error(`ts-cache: ${compiled} of ${files} TypeScript files compiled`);
}
