/**
 * tap's t.testdir() (a fresh folder under .tap/fixtures, removed when the test ends), with the
 * test's teardowns run before the folder goes. tap removes the folder in the first end-of-test hook
 * set up, and t.testdir() sets one up itself: a store, server or child registered with t.teardown()
 * after it would be closed once its folder is already gone. Registering a teardown first puts the
 * removal last. Call it once per test (a second call empties the folder): ask for subfolders with
 * the fixture object instead, e.g. testdir(t, { state: {}, creds: {} }).
 */
import type { Test } from 'tap';

export function testdir(t: Test, fixture?: Parameters<Test['testdir']>[0]): string {
  t.teardown(() => {});
  return t.testdir(fixture);
}
