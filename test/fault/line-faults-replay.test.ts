/**
 * Fault injection during replay: an outbox of outage checks starts draining, then the line fails
 * in each way for a while and comes back. Every entry is replayed exactly once at central (the
 * idempotency key makes a repeated replay an answer from central's record), none is lost or
 * dead-lettered, and the outbox drains.
 */
import t from 'tap';
import { OutageHarness, type Answer } from '../helpers/outage.js';
import { waitFor } from '../helpers/gateway.js';
import { SCENARIOS } from '../helpers/fault-scenarios.js';

t.setTimeout(300_000);

for (const sc of SCENARIOS) {
  t.test(`line ${sc.name} during replay`, async (t) => {
    const h = await OutageHarness.start();
    t.teardown(() => h.close());
    const rows = h.rows().slice(0, 6);
    for (const r of rows.slice(0, 4)) await h.check(r);

    h.setLine({ kind: 'down' });
    const answers: Answer[] = [];
    for (let round = 0; round < 8; round++) answers.push(...(await Promise.all(rows.map((r) => h.check(r)))));
    const queued = answers.filter((a) => a.result?.recheck?.queued).length;
    t.equal(queued, answers.length, `${queued} outage checks queued`);
    // Slow the replay down so the fault lands in the middle of it.
    h.central.updateSettings({ latencyMs: 40 });

    h.setLine({ kind: 'up' });
    const upAt = Date.now();
    await waitFor(() => h.outboxRows().filter((r) => r.state === 'done').length >= 5, 'the first replays', 10_000);
    const doneBeforeFault = h.outboxRows().filter((r) => r.state === 'done').length;
    h.setLine(sc.mode);
    const faultAt = Date.now();
    let detectMs: number | null = null;
    if (sc.outage && sc.mode.kind !== 'flap') {
      await h.waitLink('down', 10_000).then(
        (ms) => {
          detectMs = ms;
        },
        () => {},
      );
    }
    await new Promise((r) => setTimeout(r, Math.max(0, 2000 - (Date.now() - faultAt))));
    h.setLine({ kind: 'up' });
    const drainMs = await h.waitDrained(60_000);
    const f = h.figures(answers);
    t.comment(
      `FIGURES ${JSON.stringify({ scenario: `${sc.name} / replay`, ...f, doneBeforeFault, detectMs, drainMs, totalReplayMs: Date.now() - upAt })}`,
    );
    t.equal(f.lost, 0, 'acknowledged-but-lost: 0');
    t.equal(f.duplicateEffects, 0, 'duplicate effects at central: 0');
    t.equal(f.dead, 0, 'a line fault never dead-letters');
    t.ok(
      h.outboxRows().every((r) => r.state === 'done'),
      'every entry re-verified',
    );
    if (sc.mode.kind !== 'fragment') t.ok(doneBeforeFault < answers.length, 'the fault hit a replay in progress');
  });
}
