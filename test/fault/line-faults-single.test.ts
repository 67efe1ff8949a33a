/**
 * Fault injection during single checks: for each line fault, checks keep being answered before
 * their deadline (from central, the cache, or an honest "unavailable"), every acknowledged outage
 * check is in the outbox and is replayed once the line is back, and central never acts twice.
 */
import t from 'tap';
import { OutageHarness, type Answer } from '../helpers/outage.js';
import { SCENARIOS } from '../helpers/fault-scenarios.js';

t.setTimeout(300_000);

for (const sc of SCENARIOS) {
  t.test(`line ${sc.name} during single checks`, async (t) => {
    const h = await OutageHarness.start();
    t.teardown(() => h.close());
    const rows = h.rows().slice(0, 6);
    // Warm the cache: these patients were seen before the fault.
    for (const r of rows.slice(0, 4)) t.equal((await h.check(r)).result?.source, 'central', `warm ${r.id}`);

    h.setLine(sc.mode);
    const faultAt = Date.now();
    let detectMs: number | undefined;
    const answers: Answer[] = [];
    // Rounds of 6 concurrent checks for at least 3 s, so that a flapping line is seen in both phases.
    for (let round = 0; round < 3 || Date.now() - faultAt < 3000; round++) {
      const batch = await Promise.all(rows.map((r) => h.check(r, 2000)));
      for (const a of batch) {
        answers.push(a);
        if (detectMs === undefined && a.result && a.result.source !== 'central') detectMs = Date.now() - faultAt;
      }
      await new Promise((r) => setTimeout(r, 150));
    }
    h.setLine({ kind: 'up' });
    const drainMs = await h.waitDrained(30_000);
    const f = h.figures(answers);
    t.comment(
      `FIGURES ${JSON.stringify({ scenario: `${sc.name} / single checks`, ...f, detectMs: detectMs ?? null, drainMs })}`,
    );

    t.equal(f.late, 0, 'every answer before its deadline + 100 ms');
    t.equal(f.answered, f.attempted, 'every check got an answer, not an error');
    t.equal(f.lost, 0, 'acknowledged-but-lost: 0');
    t.equal(f.duplicateEffects, 0, 'duplicate effects at central: 0');
    t.equal(f.dead, 0, 'no dead letters from a line fault');
    for (const a of answers) {
      const r = a.result!;
      if (r.source === 'cache')
        t.ok(r.verifiedAt && r.verifiedAt < r.answeredAt, 'a cached answer carries when central confirmed it');
      if (r.source === 'none') t.ok(r.unavailable?.guidance.length, 'unavailable comes with guidance');
      if (r.source !== 'central') t.ok(r.recheck, 'an outage answer says whether it was queued');
    }
    if (sc.outage) {
      t.ok(f.acknowledged > 0, `the fault was felt: ${f.acknowledged} checks queued`);
      const cachedRows = answers.filter((a) => a.result?.source === 'cache').length;
      t.ok(cachedRows > 0, 'patients seen before were answered from the cache');
    } else {
      t.equal(f.acknowledged, 0, 'a fragmenting line still carries every answer');
    }
    t.ok(
      h.outboxRows().every((r) => r.state === 'done'),
      'every queued check was re-verified',
    );
  });
}
