/**
 * The workload of the power-cut test (test/fault/power-cut.test.ts), run under the write recorder
 * (power-cut-shim.c, LD_PRELOAD). It opens the store in <dir>/state and, per phase:
 *   fill:   enqueues <n> outbox entries, a few at a time, as the outage path does;
 *   replay: enqueues <n>, then settles them as the replay does (nextDue → settle 'done').
 * Each resolved promise is written to <dir>/ACK ("E key" enqueued, "D key" settled): the shim
 * journals those writes in order with the file operations, so the checker knows what had been
 * acknowledged at any cut.
 *
 * Usage: node --import ./test/helpers/ts-register.mjs power-cut-child.ts <dir> <fill|replay> <n>
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { GatewayStore } from '../../src/cache/index.js';

const [dir, phase, count] = process.argv.slice(2) as [string, 'fill' | 'replay', string];
const n = Number(count);
const ack = openSync(join(dir, 'ACK'), 'a');
const tell = (line: string): void => void writeSync(ack, `${line}\n`);

const store = await GatewayStore.open({ dir: join(dir, 'state') });
const payload = (i: number) => ({ query: { insurerNumber: '06139992', number: String(i), birthdate: '19800401' } });
for (let i = 0; i < n; i += 4) {
  const batch = [i, i + 1, i + 2, i + 3].filter((j) => j < n);
  await Promise.all(
    batch.map(async (j) => {
      const key = `${phase}-${j}`;
      await store.outbox.enqueue({ idempotencyKey: key, kind: 'inquiry.numbers', payload: payload(j) });
      tell(`E ${key}`);
    }),
  );
}
if (phase === 'replay') {
  for (let due = await store.outbox.nextDue(4); due.length > 0; due = await store.outbox.nextDue(4)) {
    for (const e of due) {
      await store.outbox.settle(e.id, 'done', { next: 0 });
      tell(`D ${e.idempotencyKey}`);
    }
  }
}
await store.close();
closeSync(ack);
