/**
 * tap's t.testdir() (a fresh folder under .tap/fixtures, removed when the test ends), with the
 * test's teardowns run before the folder goes. tap removes the folder in the first end-of-test hook
 * set up, and t.testdir() sets one up itself: a store, server or child registered with t.teardown()
 * after it would be closed once its folder is already gone. Registering a teardown first puts the
 * removal last.
 *
 * A second t.testdir() in the same test would empty the folder, so testdir() refuses to be called
 * twice: ask for subfolders in the fixture (testdir(t, { state: {}, creds: {} })), or use subdir().
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';

const made = new WeakMap<Test, string>();
const counts = new WeakMap<Test, number>();

export function testdir(t: Test, fixture?: Parameters<Test['testdir']>[0]): string {
  if (made.has(t)) throw new Error(`testdir() twice in "${t.name}": it would empty the first`);
  t.teardown(() => {});
  const dir = t.testdir(fixture);
  made.set(t, dir);
  return dir;
}

/** A new, empty folder `name` (by default 1, 2, …) inside the test's testdir (made on first use). */
export function subdir(t: Test, name?: string): string {
  const n = (counts.get(t) ?? 0) + 1;
  counts.set(t, n);
  const dir = join(made.get(t) ?? testdir(t), name ?? String(n));
  mkdirSync(dir);
  return dir;
}
