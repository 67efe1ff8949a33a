// Per-source-address limiter for failed WebSocket authentications and admin logins.
import t from 'tap';
import { FailureLimiter, sourceKey } from '../../src/api/rate-limit.js';

t.test('N failures in a window lock the address out, with a retry-after', async (t) => {
  const l = new FailureLimiter({ maxFailures: 3, windowMs: 60_000, lockoutMs: 300_000 });
  const ip = '192.168.1.50';
  t.match(l.fail(ip, 0), { allowed: true, failures: 1, justLocked: false });
  t.match(l.fail(ip, 1000), { allowed: true, failures: 2 });
  t.match(l.fail(ip, 2000), {
    allowed: false,
    failures: 3,
    retryAfterMs: 300_000,
    lockedUntil: 302_000,
    justLocked: true,
  });
  t.match(
    l.check(ip, 3000),
    { allowed: false, retryAfterMs: 299_000 },
    'even the right credentials are refused while locked',
  );
  t.match(
    l.fail(ip, 4000),
    { allowed: false, justLocked: false, lockedUntil: 302_000 },
    'attempts while locked neither relock nor extend',
  );
  t.match(l.check('192.168.1.51', 3000), { allowed: true, failures: 0 }, 'another address is not affected');
  t.match(l.check(ip, 302_000), { allowed: true, failures: 0 }, 'lockout over');
  t.match(l.fail(ip, 302_001), { allowed: true, failures: 1 }, 'a fresh window after the lockout');
});

t.test('failures spread over windows do not add up; only time clears them', async (t) => {
  const l = new FailureLimiter({ maxFailures: 3, windowMs: 10_000 });
  const ip = '10.0.0.7';
  l.fail(ip, 0);
  l.fail(ip, 5000);
  t.match(l.fail(ip, 10_000), { allowed: true, failures: 1 }, 'window expired: counting restarts');
  l.fail(ip, 10_001);
  t.match(l.check(ip, 10_002), { allowed: true, failures: 2 }, 'still counted');
  t.match(l.fail(ip, 10_003), { allowed: false, justLocked: true });
});

t.test('records restore the counts and lockouts after a restart; expired ones are skipped', async (t) => {
  const a = new FailureLimiter({ maxFailures: 3, windowMs: 10_000, lockoutMs: 60_000 });
  for (let i = 0; i < 3; i++) a.fail('10.0.0.8', 100 + i);
  a.fail('10.0.0.9', 200);
  a.fail('10.0.0.10', 0);
  const kept = ['10.0.0.8', '10.0.0.9', '10.0.0.10'].map((ip) => a.record(ip, 300)!);
  t.match(kept[0], { source: '10.0.0.8', failures: 3, lockedUntil: 60_102, expiresAt: 60_102 });
  t.match(kept[1], { failures: 1, lockedUntil: 0, expiresAt: 10_200 });
  t.equal(a.record('10.0.0.11', 300), undefined, 'nothing counted: nothing to keep');
  const b = new FailureLimiter({ maxFailures: 3, windowMs: 10_000, lockoutMs: 60_000 });
  t.equal(b.restore(kept, 10_100), 2, 'the window of 10.0.0.10 ended at 10 000');
  t.match(b.check('10.0.0.8', 10_100), { allowed: false, retryAfterMs: 50_002 }, 'still locked');
  t.match(b.fail('10.0.0.9', 10_150), { allowed: true, failures: 2 }, 'the count goes on');
  t.match(b.check('10.0.0.10', 10_100), { allowed: true, failures: 0 });
});

t.test('addresses are normalised: IPv4-mapped, IPv6 by /64, zone ids', async (t) => {
  t.equal(sourceKey('::ffff:192.168.0.9'), '192.168.0.9');
  t.equal(sourceKey('192.168.0.9'), '192.168.0.9');
  t.equal(sourceKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  t.equal(sourceKey('2001:0DB8:0001:0002:ffff:1:2:3'), '2001:db8:1:2::/64');
  t.equal(sourceKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  t.equal(sourceKey('::1'), '0:0:0:0::/64');
  t.equal(sourceKey('64:ff9b::192.0.2.33'), '64:ff9b:0:0::/64');
  t.equal(sourceKey('not:an:address:::'), 'not:an:address:::', 'garbage is its own key, never a crash');
  const l = new FailureLimiter({ maxFailures: 2 });
  l.fail('2001:db8:1:2::a', 0);
  t.match(
    l.fail('2001:db8:1:2::b', 1),
    { allowed: false, justLocked: true },
    'rotating privacy addresses in one /64 count together',
  );
  t.match(l.check('::ffff:10.1.1.1', 0), { allowed: true });
});

t.test('memory is bounded; locked addresses are evicted last', async (t) => {
  const l = new FailureLimiter({ maxFailures: 2, windowMs: 60_000, lockoutMs: 600_000, maxEntries: 100 });
  l.fail('10.9.9.9', 0);
  l.fail('10.9.9.9', 1); // locked
  for (let i = 0; i < 10_000; i++) l.fail(`10.0.${i >> 8}.${i & 255}`, 2 + i);
  t.ok(l.size <= 100, `size ${l.size}`);
  t.match(l.check('10.9.9.9', 20_000), { allowed: false }, 'a flood from other addresses does not free the locked one');
  // expired entries are swept
  t.match(l.fail('10.8.8.8', 700_000), { allowed: true, failures: 1 });
  t.ok(l.size <= 100);
});

t.test('bad options are refused', async (t) => {
  t.throws(() => new FailureLimiter({ maxFailures: 0 }), RangeError);
  t.throws(() => new FailureLimiter({ windowMs: 1.5 }), RangeError);
});
