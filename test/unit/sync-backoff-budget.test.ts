import t from 'tap';
import { fullJitter } from '../../src/core/backoff.js';
import { RetryBudget } from '../../src/sync/retry-budget.js';

t.test('full jitter: uniform below min(cap, base·2^n)', async (t) => {
  const o = { baseMs: 1000, capMs: 30_000 };
  t.equal(
    fullJitter(0, o, () => 0.999999),
    999,
    'first retry within 1 s',
  );
  t.equal(
    fullJitter(3, o, () => 0.5),
    4000,
    '2^3 s window, half way',
  );
  t.equal(
    fullJitter(10, o, () => 0.999999),
    29_999,
    'capped at 30 s',
  );
  t.equal(
    fullJitter(1000, o, () => 0.999999),
    29_999,
    'huge attempt numbers do not overflow',
  );
  t.equal(
    fullJitter(5, o, () => 0),
    0,
    'the window starts at 0',
  );
  const samples = Array.from({ length: 2000 }, () => fullJitter(4, o));
  t.ok(
    samples.every((s) => s >= 0 && s < 16_000),
    'all inside the window',
  );
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  t.ok(mean > 6500 && mean < 9500, `spread over the window (mean ${Math.round(mean)} ≈ 8000)`);
});

t.test('retry budget: retries ≤ maxTokens + 10 % of first attempts', async (t) => {
  const b = new RetryBudget({ ratio: 0.1, maxTokens: 10, now: () => 0 });
  let granted = 0;
  for (let i = 0; i < 1000; i++) {
    b.onRequest();
    // every request fails and wants a retry
    if (b.tryRetry()) granted++;
  }
  t.ok(granted <= 10 + 100, `granted ${granted}`);
  t.ok(granted >= 100, 'but the budget does allow retries');
  const s = b.stats();
  t.equal(s.requests, 1000);
  t.equal(s.retries, granted);
  t.equal(s.refused, 1000 - granted);
});

t.test('retry budget: an idle spell refills only to maxTokens', async (t) => {
  let clock = 0;
  const b = new RetryBudget({ ratio: 0.1, maxTokens: 3, minPerSecond: 1, now: () => clock });
  for (let i = 0; i < 500; i++) b.onRequest();
  clock += 3600_000;
  t.ok(b.tryRetry() && b.tryRetry() && b.tryRetry(), 'three retries');
  t.notOk(b.tryRetry(), 'the fourth is refused');
});

t.test('retry budget: with no new checks, the floor still lets a queue of retries drain slowly', async (t) => {
  let clock = 0;
  const b = new RetryBudget({ ratio: 0.1, maxTokens: 2, minPerSecond: 0.5, now: () => clock });
  t.ok(b.tryRetry() && b.tryRetry());
  t.notOk(b.tryRetry(), 'empty');
  clock += 1000;
  t.notOk(b.tryRetry(), 'half a token after 1 s');
  clock += 1000;
  t.ok(b.tryRetry(), 'one token after 2 s');
});
