/**
 * Power cuts (issue 18, item 10). SIGKILL leaves the page cache intact; a power cut keeps only what
 * fsync/fdatasync made durable. The store runs in a child process under a write recorder
 * (test/helpers/power-cut-shim.c, LD_PRELOAD: open/write/pwrite/pwrite64/ftruncate/fsync/
 * fdatasync/rename/unlink of the files under the test's folder, the writer worker thread included,
 * journalled in order with the workload's acknowledgements). The checker then replays the journal up
 * to a cut chosen at random and builds the disk as the cut left it (the ALICE/CrashMonkey approach):
 * each file as of its last sync, plus — in the strict half of the cuts — a random subset of the
 * writes not yet synced (the page cache may have written back any of them, in any order). The -shm
 * file is dropped (memory-mapped, never synced: SQLite rebuilds it from the WAL). Directory entries
 * (create, rename, unlink) are taken as durable at once, as a journalling file system orders them.
 *
 * On each image: `PRAGMA integrity_check` is ok, every enqueue acknowledged before the cut is in
 * the outbox, every settle acknowledged before the cut is still done; on every tenth the store
 * itself is opened (GatewayStore.open: no file moved aside). Two phases: while the outbox fills,
 * and while it replays (enqueues, then nextDue → settle).
 */
import t from 'tap';
import Database from 'better-sqlite3';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DB_FILE, GatewayStore } from '../../src/cache/index.js';
import { RUN_TYPESCRIPT } from '../helpers/typescript.js';

const SHIM_SRC = fileURLToPath(new URL('../helpers/power-cut-shim.c', import.meta.url));
const CHILD = fileURLToPath(new URL('../helpers/power-cut-child.ts', import.meta.url));
const CUTS_PER_PHASE = Number(process.env['POWER_CUTS'] ?? 60);
const ENTRIES = 120;
const SEED = Number(process.env['POWER_CUT_SEED'] ?? Date.now() % 1_000_000);

type Rec =
  | { op: 'C' | 'Z' | 'S' | 'U'; path: string }
  | { op: 'W'; path: string; off: number; data: Buffer }
  | { op: 'T'; path: string; off: number }
  | { op: 'R'; path: string; to: string }
  | { op: 'A'; line: string };

function parseJournal(buf: Buffer): Rec[] {
  const out: Rec[] = [];
  let i = 0;
  const str = (): string => {
    const n = buf.readUInt32LE(i);
    i += 4;
    const s = buf.toString('utf8', i, i + n);
    i += n;
    return s;
  };
  while (i < buf.length) {
    const op = String.fromCharCode(buf[i]!);
    i += 1;
    const path = str();
    const to = op === 'R' ? str() : '';
    const off = Number(buf.readBigInt64LE(i));
    const len = buf.readUInt32LE(i + 8);
    i += 12;
    const data = buf.subarray(i, i + len);
    i += len;
    if (op === 'W') out.push({ op, path, off, data });
    else if (op === 'T') out.push({ op, path, off });
    else if (op === 'R') out.push({ op, path, to });
    else if (op === 'A') for (const line of data.toString().split('\n').filter(Boolean)) out.push({ op, line });
    else out.push({ op: op as 'C' | 'Z' | 'S' | 'U', path });
  }
  return out;
}

/** A small deterministic PRNG (mulberry32), so a failing cut can be replayed with POWER_CUT_SEED. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

type Pending = { off: number; data: Buffer } | { truncate: number };
interface FileState {
  durable: Buffer;
  pending: Pending[];
}

function apply(content: Buffer, p: Pending): Buffer {
  if ('truncate' in p)
    return p.truncate <= content.length
      ? content.subarray(0, p.truncate)
      : Buffer.concat([content, Buffer.alloc(p.truncate - content.length)]);
  const end = p.off + p.data.length;
  const out =
    end > content.length ? Buffer.concat([content, Buffer.alloc(end - content.length)]) : Buffer.from(content);
  p.data.copy(out, p.off);
  return out;
}

/** The disk after a cut before record `cut`: files as synced, plus (strict) a random subset of the unsynced writes. */
function imageAt(recs: Rec[], cut: number, keepSome: (() => number) | undefined) {
  const files = new Map<string, FileState>();
  const acked = { enqueued: new Set<string>(), settled: new Set<string>() };
  for (const r of recs.slice(0, cut)) {
    switch (r.op) {
      case 'C':
        if (!files.has(r.path)) files.set(r.path, { durable: Buffer.alloc(0), pending: [] });
        break;
      case 'Z': {
        const f = files.get(r.path) ?? { durable: Buffer.alloc(0), pending: [] };
        f.pending.push({ truncate: 0 });
        files.set(r.path, f);
        break;
      }
      case 'W':
        files.get(r.path)?.pending.push({ off: r.off, data: r.data });
        break;
      case 'T':
        files.get(r.path)?.pending.push({ truncate: r.off });
        break;
      case 'S': {
        const f = files.get(r.path);
        if (f) {
          for (const p of f.pending) f.durable = apply(f.durable, p);
          f.pending = [];
        }
        break;
      }
      case 'R': {
        const f = files.get(r.path);
        files.delete(r.path);
        if (f) files.set(r.to, f);
        break;
      }
      case 'U':
        files.delete(r.path);
        break;
      case 'A': {
        const [kind, key] = r.line.split(' ');
        (kind === 'E' ? acked.enqueued : acked.settled).add(key!);
        break;
      }
    }
  }
  const image = new Map<string, Buffer>();
  for (const [path, f] of files) {
    if (path.endsWith('-shm')) continue; // memory-mapped, never synced: lost
    let content = f.durable;
    if (keepSome) for (const p of f.pending) if (keepSome() < 0.5) content = apply(content, p);
    image.set(path, content);
  }
  return { image, acked };
}

function runChild(env: NodeJS.ProcessEnv, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...RUN_TYPESCRIPT, CHILD, ...args], {
      env,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`workload ended with ${code ?? signal}`)),
    );
  });
}

interface Figures {
  cuts: number;
  acknowledged: number;
  lost: number;
  settledLost: number;
  integrityFailures: number;
  storeOpens: number;
  storeMovedAside: number;
}

const noFigures = (): Figures => ({
  cuts: 0,
  acknowledged: 0,
  lost: 0,
  settledLost: 0,
  integrityFailures: 0,
  storeOpens: 0,
  storeMovedAside: 0,
});

t.test('power cuts while the outbox fills and while it replays: nothing acknowledged is lost', async (t) => {
  const dir = t.testdir();
  const shim = join(dir, 'power-cut-shim.so');
  execFileSync('gcc', ['-shared', '-fPIC', '-O1', '-o', shim, SHIM_SRC, '-ldl', '-lpthread']);
  const random = rng(SEED);
  t.comment(`seed ${SEED} (POWER_CUT_SEED=${SEED} replays these cuts)`);
  const total = noFigures();

  for (const phase of ['fill', 'replay'] as const) {
    const root = join(dir, phase);
    const journal = join(dir, `${phase}.journal`);
    mkdirSync(root);
    await runChild({ ...process.env, LD_PRELOAD: shim, PC_ROOT: root, PC_JOURNAL: journal }, [
      root,
      phase,
      String(ENTRIES),
    ]);
    const recs = parseJournal(readFileSync(journal));
    const acks = recs.filter((r) => r.op === 'A').length;
    t.ok(
      recs.some((r) => r.op === 'S' && r.path.endsWith('-wal')),
      `${phase}: the WAL's syncs were recorded`,
    );
    t.ok(acks >= ENTRIES, `${phase}: ${acks} acknowledgements recorded among ${recs.length} operations`);

    const f = noFigures();
    for (let c = 0; c < CUTS_PER_PHASE; c++) {
      const cut = Math.floor(random() * (recs.length + 1));
      const strict = c % 2 === 1;
      const { image, acked } = imageAt(recs, cut, strict ? random : undefined);
      const at = join(dir, `${phase}-cut-${c}`);
      for (const [path, content] of image) {
        const to = join(at, relative(root, path));
        mkdirSync(dirname(to), { recursive: true });
        writeFileSync(to, content);
      }
      f.cuts++;
      f.acknowledged += acked.enqueued.size;
      const dbPath = join(at, 'state', DB_FILE);
      const label = `${phase} cut ${c} at ${cut}/${recs.length}${strict ? ' (strict)' : ''}`;
      if (!existsSync(dbPath)) {
        t.equal(acked.enqueued.size, 0, `${label}: no database yet, nothing acknowledged`);
        continue;
      }
      const db = new Database(dbPath);
      const integrity = db.pragma('integrity_check', { simple: true });
      if (integrity !== 'ok') f.integrityFailures++;
      const hasOutbox = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'outbox'").get() !== undefined;
      const rows = new Map<string, string>(
        hasOutbox
          ? (db.prepare('SELECT idempotency_key AS k, state AS s FROM outbox').all() as { k: string; s: string }[]).map(
              (r) => [r.k, r.s],
            )
          : [],
      );
      db.close();
      const lost = [...acked.enqueued].filter((k) => !rows.has(k));
      const unsettled = [...acked.settled].filter((k) => rows.get(k) !== 'done');
      f.lost += lost.length;
      f.settledLost += unsettled.length;
      if (lost.length + unsettled.length > 0 || integrity !== 'ok')
        t.fail(
          `${label}: integrity ${String(integrity)}, lost ${lost.length} (${lost.slice(0, 5).join(',')}…), settle lost ${unsettled.length} (${unsettled.slice(0, 5).join(',')}…)`,
        );
      if (c % 10 === 0) {
        const store = await GatewayStore.open({ dir: join(at, 'state') });
        f.storeOpens++;
        if (store.startupAlerts.some((a) => a.code === 'STORE_CORRUPT')) f.storeMovedAside++;
        await store.close();
      }
      rmSync(at, { recursive: true, force: true });
    }
    t.comment(`${phase}: ${JSON.stringify(f)}`);
    for (const k of Object.keys(total) as (keyof Figures)[]) total[k] += f[k];
  }
  t.comment(`power cuts: ${JSON.stringify(total)}`);
  console.log(`power-cut figures (seed ${SEED}): ${JSON.stringify(total)}`);
  t.ok(total.cuts >= 100, `${total.cuts} cuts`);
  t.equal(total.lost, 0, 'no acknowledged enqueue lost');
  t.equal(total.settledLost, 0, 'no acknowledged settle undone');
  t.equal(total.integrityFailures, 0, 'integrity_check ok after every cut');
  t.equal(total.storeMovedAside, 0, 'the store opened every image without moving it aside');
});
