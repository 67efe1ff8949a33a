import type { Test } from 'tap';
import { OqsError } from '../../src/oqs/index.js';

/** The OqsError thrown by fn (fails the test if fn returns or throws something else). */
export function errorOf(t: Test, fn: () => unknown): OqsError | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof OqsError) return e;
    t.fail(`expected OqsError, got ${String(e)}`);
    return undefined;
  }
  t.fail('expected an OqsError, nothing thrown');
  return undefined;
}
