/**
 * The writer thread: owns the only write connection, so commits (fsync of the WAL under
 * synchronous=FULL — tens of milliseconds on an SD card) never run on the event loop.
 *
 * Group commit: requests that arrive while a commit is running are executed together in the next
 * transaction, each inside its own savepoint (a refusal such as OUTBOX_FULL undoes only that
 * request). Replies are posted only after COMMIT returned; if the commit fails, every request of
 * the batch gets the error — nothing is acknowledged that is not durable.
 */
import type Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { OnshiError } from '../core/errors.js';
import { CacheKeys } from './crypto.js';
import { openWriter } from './open-writer.js';
import {
  toWire,
  type OpName,
  type Request,
  type Requests,
  type Response,
  type WorkerInit,
  type WorkerMessage,
} from './protocol.js';
import { toStoreError } from './sqlite-errors.js';
import { createWriterOps } from './writer-ops.js';

const MAX_BATCH = 256;

const port = parentPort;
if (!port) throw new Error('writer-worker must run in a worker thread');
const init = workerData as WorkerInit;
// The thread's name in `ps -L`, `top -H` and /proc (under Node 20 every thread is `node`): the
// benchmarks attribute the daemon's CPU by thread with it. Linux only; nothing else depends on it.
try {
  writeFileSync('/proc/thread-self/comm', 'onshi-writer');
} catch {
  /* not Linux, or /proc read-only: the name stays */
}
const post = (m: WorkerMessage): void => port.postMessage(m);

let db!: Database.Database;
let ops!: ReturnType<typeof createWriterOps>;
let closed = false;
try {
  const keys = new CacheKeys(Buffer.from(init.keyHex, 'hex'));
  const opened = openWriter(init.dbPath, keys);
  db = opened.db;
  ops = createWriterOps(db, keys, init.outboxMax);
  post({ type: 'ready', alerts: opened.alerts });
} catch (e) {
  post({ type: 'fatal', error: toWire(toStoreError(e, 'opening the store')) });
  closed = true;
  port.close(); // lets the thread end once the message is out
}

const queue: Request[] = [];
let scheduled = false;

port.on('message', (m: Request | Requests) => {
  if (m.type === 'req-batch') queue.push(...m.requests);
  else queue.push(m);
  if (!scheduled) {
    scheduled = true;
    setImmediate(drain);
  }
});

function drain(): void {
  scheduled = false;
  while (queue.length > 0 && !closed) {
    const batch = queue.splice(0, MAX_BATCH);
    const closeAt = batch.findIndex((r) => r.op === 'close');
    if (closeAt >= 0) queue.unshift(...batch.splice(closeAt + 1)); // nothing after close runs
    const writes = batch.filter((r) => r.op !== 'close');
    if (writes.length > 0) {
      const responses = runBatch(writes);
      post(responses.length === 1 ? responses[0]! : { type: 'res-batch', responses });
    }
    if (closeAt >= 0) shutdown(batch[closeAt]!.id);
  }
  for (const r of queue.splice(0)) post(errorResponse(r.id, new OnshiError('STORE_CLOSED', 'the store is closed')));
}

/** The transaction's own statements, prepared once (each commit is on the outage answer's path). */
let tx:
  | Record<'begin' | 'savepoint' | 'release' | 'rollbackTo' | 'commit' | 'rollback', Database.Statement>
  | undefined;
function txStatements(): NonNullable<typeof tx> {
  tx ??= {
    begin: db.prepare('BEGIN IMMEDIATE'),
    savepoint: db.prepare('SAVEPOINT req'),
    release: db.prepare('RELEASE req'),
    rollbackTo: db.prepare('ROLLBACK TO req'),
    commit: db.prepare('COMMIT'),
    rollback: db.prepare('ROLLBACK'),
  };
  return tx;
}

function runBatch(batch: Request[]): Response[] {
  const t = txStatements();
  const out: Response[] = [];
  try {
    t.begin.run();
  } catch (e) {
    const err = toStoreError(e, 'starting a transaction');
    return batch.map((r) => errorResponse(r.id, err));
  }
  // A lone request needs no savepoint: if it fails, the whole (one-request) transaction is undone.
  const alone = batch.length === 1;
  for (const r of batch) {
    if (!alone) t.savepoint.run();
    try {
      const result = (ops[r.op] as (a: unknown) => unknown)(r.args);
      if (!alone) t.release.run();
      out.push({ type: 'res', id: r.id, ok: true, result });
    } catch (e) {
      const err = toStoreError(e, describe(r.op));
      if (!db.inTransaction) {
        // SQLite rolled the whole transaction back (disk full, I/O error): nothing of this batch stands.
        return batch.map((x) => errorResponse(x.id, err));
      }
      if (alone) {
        try {
          t.rollback.run();
        } catch {
          /* already gone */
        }
        return [errorResponse(r.id, err)];
      }
      t.rollbackTo.run();
      t.release.run();
      out.push(errorResponse(r.id, err));
    }
  }
  try {
    t.commit.run();
  } catch (e) {
    const err = toStoreError(e, 'committing');
    if (db.inTransaction) {
      try {
        t.rollback.run();
      } catch {
        /* already gone */
      }
    }
    return batch.map((x) => errorResponse(x.id, err));
  }
  return out;
}

function shutdown(id: number): void {
  closed = true;
  try {
    // Fold the WAL into the main file so the next start (or a copy of the file) needs no -wal.
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    post({ type: 'res', id, ok: true, result: null });
  } catch (e) {
    post(errorResponse(id, toStoreError(e, 'closing')));
  }
  port!.close();
}

function errorResponse(id: number, e: OnshiError): Response {
  return { type: 'res', id, ok: false, error: toWire(e) };
}

function describe(op: OpName): string {
  return op.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`);
}
