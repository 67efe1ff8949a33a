import { Writable } from 'node:stream';
import cron from 'node-cron';
import t from 'tap';
import { OnshiError, codeOf } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';
import { JobsService } from '../../src/sync/jobs.js';

function logged(): { logger: ReturnType<typeof createLogger>; events: Record<string, unknown>[] } {
  const events: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(c, _e, cb) {
      for (const l of c.toString().split('\n').filter(Boolean)) events.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger({ level: 'info', stream }), events };
}

const deferred = (): { promise: Promise<void>; resolve(): void } => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};

t.test('a bad schedule is refused at construction, naming its setting', async (t) => {
  const { logger } = logged();
  t.throws(
    () => new JobsService([{ name: 'x', setting: 'audit.purgeSchedule', schedule: 'every night' }], { logger }),
    {
      code: 'CONFIG_INVALID',
      message: /audit\.purgeSchedule "every night"/,
    },
  );
  t.equal(cron.getTasks().size, 0, 'nothing was scheduled');
});

t.test('every scheduled job needs its work before start; unknown jobs cannot be given any', async (t) => {
  const { logger } = logged();
  const jobs = new JobsService([{ name: 'a', setting: 's', schedule: '0 3 * * *' }], { logger });
  t.throws(() => jobs.define('b', async () => {}), { code: 'INTERNAL' });
  await t.rejects(jobs.start(), { code: 'INTERNAL', message: /without work: a/ });
  t.equal(cron.getTasks().size, 0);
});

t.test(
  'a job runs at start when asked, one run at a time; stop destroys the tasks and waits for the run',
  async (t) => {
    const { logger } = logged();
    let clock = 1_000_000;
    const jobs = new JobsService(
      [
        { name: 'at-start', setting: 's1', schedule: '0 3 * * *', atStart: true },
        { name: 'scheduled', setting: 's2', schedule: '0 4 * * *' },
      ],
      { logger, now: () => clock },
    );
    const gate = deferred();
    let runs = 0;
    jobs.define('at-start', async () => {
      runs++;
      await gate.promise;
      clock += 250;
    });
    let scheduledRuns = 0;
    jobs.define('scheduled', async () => void scheduledRuns++);
    await jobs.start();
    t.equal(cron.getTasks().size, 2, 'both scheduled');
    await new Promise((r) => setImmediate(r));
    t.equal(runs, 1, 'the at-start job ran once');
    t.equal(scheduledRuns, 0, 'the other waits for its time');
    const [a, b] = jobs.status();
    t.match(a, { name: 'at-start', schedule: '0 3 * * *', running: true, nextRunAt: String });
    t.notOk(a!.lastResult, 'no result while it runs');
    t.match(b, { name: 'scheduled', running: false, nextRunAt: String });
    t.ok(new Date(b!.nextRunAt!).getTime() > Date.now(), 'the next run is ahead');

    // its cron turn comes while it still runs: skipped, not doubled
    const task = [...cron.getTasks().values()].find((x) => x.name === 'at-start')!;
    const turn = task.execute();
    await new Promise((r) => setImmediate(r));
    t.equal(runs, 1, 'no second run while the first is going');

    let stopped = false;
    const stopping = jobs.stop().then(() => (stopped = true));
    await new Promise((r) => setImmediate(r));
    t.equal(cron.getTasks().size, 0, 'the cron tasks are destroyed at once');
    t.equal(stopped, false, 'stop waits for the run still going');
    gate.resolve();
    await stopping;
    await turn;
    t.match(jobs.status()[0], { running: false, lastResult: { ok: true, durationMs: 250 } });
    t.notOk(jobs.status()[0]!.nextRunAt, 'no next run once stopped');
  },
);

t.test('a failure is reported one way: one job_failed event and the last result', async (t) => {
  const { logger, events } = logged();
  const jobs = new JobsService([{ name: 'purge', setting: 's', schedule: '0 3 * * *', atStart: true }], { logger });
  let fail: unknown = new OnshiError('STORE_FULL', 'disk full');
  jobs.define('purge', async () => {
    if (fail) throw fail;
  });
  await jobs.start();
  await jobs.stop(); // waits for the at-start run
  t.match(jobs.status()[0]!.lastResult, { ok: false, code: 'STORE_FULL' });
  t.match(
    events.filter((e) => e.event === 'job_failed'),
    [{ level: 'error', job: 'purge', code: 'STORE_FULL', error: 'disk full' }],
  );
  fail = undefined;
  t.equal(codeOf(new Error('x')), 'INTERNAL');
  t.equal(codeOf(Object.assign(new Error('x'), { code: 'ENOSPC' })), 'ENOSPC', 'a system error keeps its errno code');
  t.equal(codeOf('thrown string'), 'INTERNAL');
});
