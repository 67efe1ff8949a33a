import t from 'tap';
import { LinkMonitor } from '../../src/sync/link.js';
import { OutboxRelay, type RelayEntry, type RelayOutcome, type RelayStore } from '../../src/sync/relay.js';
import { RetryBudget } from '../../src/sync/retry-budget.js';

/** An in-memory outbox with the store's semantics (oldest first, inflight until completed). */
class MemStore implements RelayStore {
  entries: (RelayEntry & { state: string; dueAt: number; outcome?: RelayOutcome })[] = [];
  add(n: number): void {
    for (let i = 0; i < n; i++) {
      const id = this.entries.length + 1;
      this.entries.push({
        id,
        idempotencyKey: `k${id}`,
        kind: 'numbers',
        payload: { n: id },
        createdAt: new Date(Date.now() - 1000 + id),
        attempts: 0,
        state: 'pending',
        dueAt: 0,
      });
    }
  }
  async nextDue(limit: number): Promise<RelayEntry[]> {
    const due = this.entries.filter((e) => e.state === 'pending' && e.dueAt <= Date.now()).slice(0, limit);
    for (const e of due) {
      e.state = 'inflight';
      e.attempts++;
    }
    return due.map((e) => ({ ...e }));
  }
  async complete(id: number, outcome: RelayOutcome): Promise<void> {
    const e = this.entries[id - 1]!;
    e.outcome = outcome;
    if (outcome === 'done') e.state = 'done';
    else if ('dead' in outcome) e.state = 'dead';
    else {
      e.state = 'pending';
      e.dueAt = outcome.retryAt.getTime();
      if (outcome.unsent) e.attempts--;
    }
  }
  async settle(id: number, outcome: RelayOutcome, o: { next: number }): Promise<RelayEntry[]> {
    await this.complete(id, outcome);
    return o.next > 0 ? this.nextDue(o.next) : [];
  }
  stats() {
    const open = this.entries.filter((e) => e.state === 'pending' || e.state === 'inflight');
    return {
      depth: open.length,
      dead: this.entries.filter((e) => e.state === 'dead').length,
      fillRatio: 0,
      ...(open[0] ? { oldestAt: open[0].createdAt } : {}),
    };
  }
}

const err = (code: string, retryable: boolean, details?: Record<string, unknown>) =>
  Object.assign(new Error(code), { code, retryable, ...(details ? { details } : {}) });
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));
// The relay's and the monitor's timers are unref'd (a daemon's servers keep it alive): keep the test alive.
const keepAlive = setInterval(() => {}, 1000);
t.teardown(() => clearInterval(keepAlive));

function setup(replay: (e: RelayEntry) => Promise<void>, o: { maxInFlight?: number; ttlMs?: number } = {}) {
  const store = new MemStore();
  const link = new LinkMonitor({ probe: async () => {}, backoff: { baseMs: 10, capMs: 50 }, probeIntervalMs: 60_000 });
  const budget = new RetryBudget();
  const relay = new OutboxRelay({ store, link, budget, replay, backoff: { baseMs: 10, capMs: 50 }, tickMs: 20, ...o });
  return { store, link, budget, relay };
}

t.test('drains oldest first with at most 5 in flight', async (t) => {
  let inflight = 0;
  let peak = 0;
  const order: number[] = [];
  const { store, relay } = setup(
    async (e) => {
      order.push(e.id);
      peak = Math.max(peak, ++inflight);
      await tick(5);
      inflight--;
    },
    { maxInFlight: 9 },
  );
  store.add(40);
  const drained = new Promise((r) => relay.once('drained', r));
  relay.start();
  t.teardown(() => relay.stop());
  await drained;
  t.equal(peak, 5, 'never more than 5 at once (even when asked for 9)');
  t.same(order.slice(0, 5), [1, 2, 3, 4, 5], 'oldest first');
  t.ok(
    store.entries.every((e) => e.state === 'done'),
    'all done',
  );
});

t.test('a refusal goes to the dead letters with an event, a line failure is retried', async (t) => {
  let attemptsOf3 = 0;
  const { store, relay } = setup(async (e) => {
    if (e.id === 2) throw err('CENTRAL_REFUSED', false);
    if (e.id === 3 && ++attemptsOf3 < 3) throw err('CENTRAL_UNAVAILABLE', true);
  });
  store.add(3);
  const dead: unknown[] = [];
  const retries: unknown[] = [];
  relay.on('dead', (d) => dead.push(d));
  relay.on('retry', (r) => retries.push(r));
  const drained = new Promise((r) => relay.once('drained', r));
  relay.start();
  t.teardown(() => relay.stop());
  await drained;
  t.match(dead, [{ id: 2, code: 'CENTRAL_REFUSED' }], 'dead-lettered once, not looping');
  t.equal(store.entries[1]!.state, 'dead');
  t.equal(retries.length, 2, 'retried twice');
  t.equal(store.entries[2]!.state, 'done');
  t.equal(store.entries[2]!.attempts, 3);
});

t.test(
  "a refused login or TLS failure is the line's fault, never the entry's: retried, not dead-lettered",
  async (t) => {
    let calls = 0;
    const { store, relay } = setup(async () => {
      if (++calls <= 2) throw err(calls === 1 ? 'CENTRAL_AUTH_FAILED' : 'CENTRAL_TLS_FAILED', false);
    });
    store.add(1);
    const dead: unknown[] = [];
    relay.on('dead', (d) => dead.push(d));
    const drained = new Promise((r) => relay.once('drained', r));
    relay.start();
    t.teardown(() => relay.stop());
    await drained;
    t.same(dead, [], 'nothing dead-lettered');
    t.equal(store.entries[0]!.attempts, 3, 'retried until central took it');
  },
);

t.test('Retry-After is honoured and opens the breaker', async (t) => {
  const sent: number[] = [];
  let first = true;
  const { store, relay, link } = setup(
    async (e) => {
      sent.push(Date.now());
      if (first) {
        first = false;
        throw err('CENTRAL_UNAVAILABLE', true, { retryAfterMs: 500 });
      }
      void e;
    },
    { maxInFlight: 1 },
  );
  store.add(2);
  link.start();
  t.teardown(() => link.stop());
  const drained = new Promise((r) => relay.once('drained', r));
  relay.start();
  t.teardown(() => relay.stop());
  await tick(100);
  t.equal(link.state, 'down', 'central asked us to wait');
  t.equal(sent.length, 1, 'nothing sent while waiting');
  await drained;
  t.ok(sent[1]! - sent[0]! >= 480, `the next replay waited ${sent[1]! - sent[0]!} ms`);
});

t.test('the line going down mid-drain stops the relay; it resumes when the line returns', async (t) => {
  let lineUp = true;
  const { store, relay, link } = setup(
    async () => {
      await tick(2);
      if (!lineUp) throw err('CENTRAL_UNREACHABLE', true);
    },
    { maxInFlight: 2 },
  );
  store.add(30);
  relay.start();
  t.teardown(() => relay.stop());
  await tick(15);
  lineUp = false;
  await tick(150);
  t.equal(link.state, 'down');
  const doneAtCut = store.entries.filter((e) => e.state === 'done').length;
  await tick(150);
  t.equal(store.entries.filter((e) => e.state === 'done').length, doneAtCut, 'nothing replayed while down');
  lineUp = true;
  const drained = new Promise((r) => relay.once('drained', r));
  link.recordSuccess(1);
  await drained;
  t.ok(
    store.entries.every((e) => e.state === 'done'),
    'all replayed after the line returned',
  );
});

t.test('retries beyond the budget are deferred, not sent', async (t) => {
  let sends = 0;
  const store = new MemStore();
  const link = new LinkMonitor({ probe: async () => {}, failureThreshold: 1000 });
  const budget = new RetryBudget({ ratio: 0.1, maxTokens: 2, minPerSecond: 0 });
  const relay = new OutboxRelay({
    store,
    link,
    budget,
    tickMs: 10,
    backoff: { baseMs: 1, capMs: 5 },
    replay: async () => {
      sends++;
      throw err('CENTRAL_UNAVAILABLE', true);
    },
  });
  store.add(10);
  relay.start();
  await tick(400);
  await relay.stop();
  const s = budget.stats();
  t.equal(s.requests, 10, '10 first attempts');
  t.ok(s.retries <= 2 + 1, `retries sent ${s.retries} ≤ 2 + 10 %·10`);
  t.equal(sends, s.requests + s.retries, 'only budgeted retries reached central');
  t.ok(s.refused > 0, 'the rest were deferred');
  t.ok(
    store.entries.every((e) => e.state === 'pending' || e.state === 'inflight'),
    'and still queued, nothing dropped',
  );
});

t.test('entries past their time-to-live are reported, not removed', async (t) => {
  const { store, relay, link } = setup(
    async () => {
      throw err('CENTRAL_UNREACHABLE', true);
    },
    { ttlMs: 100 },
  );
  for (let i = 0; i < 3; i++) link.recordFailure({ code: 'CENTRAL_UNREACHABLE' });
  store.add(2);
  store.entries[0]!.createdAt = new Date(Date.now() - 10_000);
  const overdue = new Promise<{ oldestAt: Date }>((r) => relay.once('overdue', r));
  relay.start();
  t.teardown(() => relay.stop());
  const o = await overdue;
  t.equal(o.oldestAt.getTime(), store.entries[0]!.createdAt.getTime());
  t.equal(store.stats().depth, 2, 'still in the outbox');
});

t.test(
  "a slot sends its next request while the last answer's commit runs; an entry is done only once committed",
  async (t) => {
    const log: string[] = [];
    const { store, relay } = setup(
      async (e) => {
        log.push(`replay ${e.id}`);
        await tick(5);
      },
      { maxInFlight: 1 },
    );
    const settle = store.settle.bind(store);
    store.settle = async (id, outcome, o) => {
      await tick(15); // an fsync
      const taken = await settle(id, outcome, o);
      log.push(`committed ${id}`);
      return taken;
    };
    store.add(4);
    const replayed: number[] = [];
    relay.on('replayed', (i) => replayed.push(i.id));
    const drained = new Promise((r) => relay.once('drained', r));
    relay.start();
    t.teardown(() => relay.stop());
    await drained;
    t.ok(
      log.indexOf('replay 3') < log.indexOf('committed 2'),
      `entry 3 is sent before entry 2's commit is over (${log.join(', ')})`,
    );
    t.same(replayed, [1, 2, 3, 4], 'each reported once committed, in order');
    t.ok(
      store.entries.every((e) => e.state === 'done'),
      'all done',
    );
  },
);

t.test('an entry taken ahead goes back to pending, unsent, when the relay stops', async (t) => {
  const sent: number[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const { store, relay } = setup(
    async (e) => {
      sent.push(e.id);
      if (e.id === 2) await gate;
    },
    { maxInFlight: 1 },
  );
  store.add(5);
  relay.start();
  // entry 1 answered, its commit took 2 and 3 (one ahead); 2 is waiting at central
  await new Promise<void>((r) => {
    const i = setInterval(() => {
      if (sent.includes(2)) {
        clearInterval(i);
        r();
      }
    }, 2);
  });
  const stopped = relay.stop();
  release();
  await stopped;
  t.same(sent, [1, 2], 'nothing sent after the stop');
  t.same(
    store.entries.map((e) => e.state),
    ['done', 'done', 'pending', 'pending', 'pending'],
    'the held entry is pending again, none left inflight',
  );
  t.same(
    store.entries.map((e) => e.attempts),
    [1, 1, 0, 0, 0],
    'its attempt given back: it was never sent, so it is no retry',
  );
});

t.test("central's 409 for a live attempt still in flight is retried later and is no line failure", async (t) => {
  let calls = 0;
  const { store, relay, link } = setup(async (e) => {
    if (e.id <= 4 && ++calls <= 8) throw err('CENTRAL_IN_FLIGHT', true, { status: 409 });
  });
  const states: string[] = [];
  link.on('state', (s) => states.push(s.state));
  store.add(4);
  const drained = new Promise((r) => relay.once('drained', r));
  relay.start();
  t.teardown(() => relay.stop());
  await drained;
  t.ok(calls >= 8, 'met 409 eight times');
  t.same(states, [], 'the line never left up');
  t.equal(link.status().consecutiveFailures, 0);
  t.ok(
    store.entries.every((e) => e.state === 'done'),
    'each entry replayed once central finished',
  );
});
