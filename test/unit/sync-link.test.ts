import t from 'tap';
import { LinkMonitor, type LinkStatus } from '../../src/sync/link.js';

const fail = (code = 'CENTRAL_UNREACHABLE', details?: Record<string, unknown>) =>
  Object.assign(new Error(code), { code, ...(details ? { details } : {}) });

function monitor(probe: () => Promise<void>, extra: Partial<ConstructorParameters<typeof LinkMonitor>[0]> = {}) {
  const states: LinkStatus[] = [];
  const m = new LinkMonitor({
    probe,
    failureThreshold: 3,
    probeIntervalMs: 60_000,
    probeTimeoutMs: 200,
    backoff: { baseMs: 20, capMs: 100 },
    ...extra,
  });
  m.on('state', (s) => states.push(s));
  return { m, states };
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('failures below the threshold degrade; at the threshold the breaker opens', async (t) => {
  const { m, states } = monitor(() => Promise.reject(fail()));
  m.recordFailure({ code: 'CENTRAL_TIMEOUT' });
  t.equal(m.state, 'degraded');
  t.ok(m.allowRequest(), 'degraded still sends');
  m.recordFailure({ code: 'CENTRAL_TIMEOUT' });
  m.recordFailure({ code: 'CENTRAL_TIMEOUT' });
  t.equal(m.state, 'down');
  t.notOk(m.allowRequest(), 'down: the breaker is open');
  t.same(
    states.map((s) => s.state),
    ['degraded', 'down'],
    'each change pushed once',
  );
  t.match(m.status().reason, /3 failures in a row/);
  m.recordSuccess(10);
  t.equal(m.state, 'up');
  t.ok(m.allowRequest());
});

t.test('while down the probe backs off with jitter and the first success closes the breaker', async (t) => {
  let calls = 0;
  let healthy = false;
  const { m, states } = monitor(async () => {
    calls++;
    if (!healthy) throw fail();
  });
  m.start();
  t.teardown(() => m.stop());
  for (let i = 0; i < 3; i++) m.recordFailure({ code: 'CENTRAL_UNREACHABLE' });
  t.equal(m.state, 'down');
  await tick(600);
  t.ok(calls >= 3, `probed ${calls} times while down (cap 100 ms)`);
  t.ok(calls < 100, 'but not in a tight loop');
  t.equal(m.state, 'down');
  healthy = true;
  await tick(300);
  t.equal(m.state, 'up', 'closed by a successful probe');
  t.equal(states.at(-1)?.state, 'up');
});

t.test('Retry-After opens the breaker for that long, then a probe closes it', async (t) => {
  let calls = 0;
  const { m } = monitor(async () => {
    calls++;
  });
  m.start();
  t.teardown(() => m.stop());
  await tick(30);
  const before = calls;
  m.recordFailure({ code: 'CENTRAL_UNAVAILABLE', details: { retryAfterMs: 400 } });
  t.equal(m.state, 'down');
  t.notOk(m.allowRequest());
  t.ok(m.status().retryAfterUntil, 'the wait is shown');
  await tick(250);
  t.equal(calls, before, 'no probe before Retry-After is over');
  await tick(400);
  t.ok(calls > before, 'probed after it');
  t.equal(m.state, 'up');
});

t.test('a slow answer degrades, a quick one restores', async (t) => {
  const { m } = monitor(async () => {}, { slowMs: 100 });
  m.recordSuccess(500);
  t.equal(m.state, 'degraded');
  t.match(m.status().reason, /slow/);
  m.recordSuccess(5);
  t.equal(m.state, 'up');
});

t.test("a caller's own short budget and central's 409 in flight are not line failures", async (t) => {
  const { isLineFailure } = await import('../../src/sync/link.js');
  const { m, states } = monitor(() => Promise.resolve(), { slowMs: 5000 });
  for (let i = 0; i < 10; i++) {
    m.recordFailure({ code: 'CENTRAL_TIMEOUT', details: { budgetMs: 90, timeoutMs: 10_000 } });
    m.recordFailure({ code: 'CENTRAL_TIMEOUT', details: { budgetMs: 0, timeoutMs: 10_000 } });
    m.recordFailure({ code: 'CENTRAL_IN_FLIGHT', details: { status: 409 } });
  }
  t.equal(m.state, 'up', 'thirty of them leave the line up');
  t.same(states, [], 'and no state change');
  t.equal(m.status().consecutiveFailures, 0);

  // Central silent for (nearly) the whole time the line is judged by: a line failure.
  t.ok(isLineFailure({ code: 'CENTRAL_TIMEOUT', details: { budgetMs: 9_990, timeoutMs: 10_000 } }, 5000));
  t.ok(isLineFailure({ code: 'CENTRAL_TIMEOUT', details: { budgetMs: 2_950, timeoutMs: 3_000 } }, 5000));
  t.notOk(isLineFailure({ code: 'CENTRAL_TIMEOUT', details: { budgetMs: 1_000, timeoutMs: 3_000 } }, 5000));
  t.ok(isLineFailure({ code: 'CENTRAL_TIMEOUT' }, 5000), 'a timeout without its budget counts');
  t.ok(isLineFailure({ code: 'CENTRAL_UNREACHABLE' }, 5000));
  m.recordFailure({ code: 'CENTRAL_TIMEOUT', details: { budgetMs: 10_000, timeoutMs: 10_000 } });
  t.equal(m.state, 'degraded', 'a full-budget timeout still degrades the line');
});
