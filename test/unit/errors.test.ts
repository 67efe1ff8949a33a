import t from 'tap';
import { OnshiError, isOnshiError } from '../../src/core/errors.js';

t.test('OnshiError carries a code, retry hint and frozen details', async (t) => {
  const e = new OnshiError('X_TEST', 'boom', { retryable: true, details: { a: 1 } });
  t.equal(e.code, 'X_TEST');
  t.equal(e.retryable, true);
  t.same(e.toJSON(), { code: 'X_TEST', message: 'boom', retryable: true, details: { a: 1 } });
  t.ok(Object.isFrozen(e.details));
  t.ok(isOnshiError(e, 'X_TEST'));
  t.notOk(isOnshiError(e, 'OTHER'));
  t.notOk(isOnshiError(new Error('x')));
});
