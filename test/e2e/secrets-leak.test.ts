/**
 * Secrets never leak. A full sandbox session — the real daemon process, real pcscd with a virtual
 * card whose PIN (5739) is found nowhere else, central behind the line fault proxy — with card
 * checks (a wrong PIN, then the right one), checks by numbers, an outage with checks answered from
 * the cache and their replay, and a support bundle. Then every file the gateway wrote (its state
 * directory with the database, WAL and keys; its log; its config; the support bundle) and every
 * frame another receipt computer received are searched: the PIN appears nowhere, and the seeded
 * names and insurance numbers are not in the database files in clear.
 * (The virtual card's own APDU log is the card's, not the gateway's: it is not searched.)
 */
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import iconv from 'iconv-lite';
import { GatewayClient } from '../../src/client/index.js';
import { seedPopulation } from '../../src/sim/central/population.js';
import { startSandboxProcess } from '../helpers/sandbox-cli.js';
import { waitFor } from '../helpers/gateway.js';
import { ensurePcscd } from '../helpers/pcscd.js';

const BIN = fileURLToPath(new URL('../../bin/onshi.js', import.meta.url));
const run = promisify(execFile);
const PIN = '5739';
const WRONG_PIN = '5793';
t.setTimeout(300_000);

if (await ensurePcscd(t)) t.test('a full sandbox session leaves no PIN and no clear personal data behind', session);

type Msg = Record<string, unknown>;

async function session(t: Test): Promise<void> {
  const { state, ready } = await startSandboxProcess(t, 'onshi-leak-');
  const env = { ...process.env, ONSHI_SIM_LINE: ready.line!, ONSHI_SIM_CARDS: ready.cards! };
  await run(process.execPath, [BIN, 'sim', 'card', 'insert', '--profile', 'canary', '--reset'], { env });

  // Another receipt computer on every topic: everything it receives is kept, as raw frames.
  const observer = await GatewayClient.connect(
    ready.ws!,
    JSON.parse(
      (await run(process.execPath, [BIN, 'clients', 'add', 'observer', '--json', '--config', ready.config!])).stdout,
    ).token,
  );
  const seenByOthers: string[] = [];
  (observer as unknown as { ws: { on(e: 'message', f: (d: Buffer) => void): void } }).ws.on('message', (d) =>
    seenByOthers.push(d.toString()),
  );
  await observer.request({ type: 'subscribe', topics: ['line', 'outbox', 'reconciliation', 'reader'] });

  const client = await GatewayClient.connect(ready.ws!, ready.token!);
  t.teardown(async () => {
    await client.close();
    await observer.close();
  });
  const asked: number[] = [];
  const cardCheck = async (pins: string[]): Promise<Msg> => {
    const id = `card-${Math.random().toString(36).slice(2)}`;
    const queue = [...pins];
    return client.request(
      { type: 'inquiry.card', id, mode: 'pin', deadlineMs: 30_000 },
      {
        onProgress: (m) => {
          if (m.type === 'pin.required') asked.push(m.triesLeft as number);
          const pin = m.type === 'pin.required' ? queue.shift() : undefined;
          if (pin) void client.request({ type: 'pin.submit', inquiryId: id, pin }).catch(() => {});
        },
      },
    );
  };
  const people = seedPopulation();
  const numbers = people.flatMap((p) => p.qualifications.slice(0, 1).map((x) => ({ p, x }))).slice(0, 6);
  const byNumbers = (i: number): Promise<Msg> => {
    const { p, x } = numbers[i]!;
    return client.request({
      type: 'inquiry.numbers',
      query: {
        insurerNumber: x.insurerNumber,
        ...(x.symbol ? { symbol: x.symbol } : {}),
        number: x.number,
        ...(x.branch ? { branch: x.branch } : {}),
        birthdate: p.birthdate,
      },
    });
  };

  // Line up: a wrong PIN (the gateway asks again, with the tries left), then the right one; checks by numbers.
  t.match(
    (await cardCheck([WRONG_PIN, PIN])).result,
    { source: 'central', validity: '1' },
    'a wrong PIN, then the right one',
  );
  t.same(asked, [3, 2], 'the wrong PIN reached the card (one try spent)');
  for (let i = 0; i < numbers.length; i++) await byNumbers(i);

  // Outage: the card proves its PIN locally, numbers come from the cache, all are queued.
  await run(process.execPath, [BIN, 'sim', 'line', 'down'], { env });
  t.match(
    (await cardCheck([PIN])).result,
    { source: 'cache', recheck: { queued: true } },
    'card check during the outage',
  );
  for (let i = 0; i < 3; i++) t.match((await byNumbers(i)).result, { source: 'cache', recheck: { queued: true } });
  await run(process.execPath, [BIN, 'sim', 'line', 'up'], { env });
  const drained = async (): Promise<boolean> =>
    ((await client.request({ type: 'status' })).status as { outbox: { depth: number } }).outbox.depth === 0;
  await t.resolves(
    waitFor(drained, 'the outbox to drain', 30_000),
    'the outbox drained after the line came back (replayed)',
  );
  // The event reaches the observer's socket after the status answer may already say "drained".
  await t.resolves(
    waitFor(() => seenByOthers.some((f) => f.includes('"outbox.replayed"')), 'the observer to see a replay', 30_000),
    'the observer saw the replays',
  );

  const bundle = join(state, 'support.tar.gz');
  await run(process.execPath, [BIN, 'support-bundle', '--config', ready.config!, '--out', bundle]);

  // What the gateway wrote: its state directory (database, WAL, keys, tokens, TLS), log, config, bundle.
  const files = [...walk(join(state, 'gateway')), join(state, 'gateway.log'), ready.config!, bundle];
  t.ok(
    files.some((f) => f.endsWith('gateway.db-wal')),
    'the WAL is among the files searched (searched while the daemon runs)',
  );
  const contents = (f: string): Buffer => (f.endsWith('.gz') ? gunzipSync(readFileSync(f)) : readFileSync(f));
  const pinForms = [PIN, WRONG_PIN].flatMap((p) => [
    Buffer.from(p),
    Buffer.from(p, 'utf16le'),
    Buffer.from(Buffer.from(p).toString('hex')),
    Buffer.from(Buffer.from(p).toString('base64').replace(/=+$/, '')),
  ]);
  // Four digits turn up by chance inside the long runs of hex, base64 and UUID text the gateway
  // stores and writes (token hashes in clients.json, request ids and hashes in the database and its
  // WAL): about one run in fifty met one. An occurrence counts as a leak unless it lies inside such
  // a run of 20 characters or more, which the PIN alone, or between delimiters, never makes.
  const TOKEN_CHAR = /[0-9A-Za-z+/=_-]/;
  const inLongToken = (buf: Buffer, at: number, len: number): boolean => {
    let from = at;
    let to = at + len;
    while (from > 0 && TOKEN_CHAR.test(String.fromCharCode(buf[from - 1]!))) from--;
    while (to < buf.length && TOKEN_CHAR.test(String.fromCharCode(buf[to]!))) to++;
    return to - from >= 20;
  };
  const leaksOutsideTokens = (buf: Buffer, needles: Buffer[]): string[] =>
    needles
      .filter((n) => {
        for (let i = buf.indexOf(n); i !== -1; i = buf.indexOf(n, i + 1))
          if (!inLongToken(buf, i, n.length)) return true;
        return false;
      })
      .map((n) => n.toString());
  t.notOk(inLongToken(Buffer.from(`{"pin":"${PIN}"}`), 8, 4), 'the excuse cannot hide a PIN between delimiters');
  for (const f of files)
    t.same(leaksOutsideTokens(contents(f), pinForms), [], `no PIN in ${f.slice(state.length + 1)}`);
  t.same(
    leaksOutsideTokens(Buffer.from(seenByOthers.join('\n')), pinForms),
    [],
    `no PIN in the ${seenByOthers.length} frames another client received`,
  );

  // The database files hold personal data only sealed.
  const personal = numbers
    .flatMap(({ p, x }) => [p.name, p.nameKana, x.insurerNumber, x.number, ...(x.symbol ? [x.symbol] : [])])
    .filter((s) => s.length >= 4);
  const forms = personal.flatMap((s) => [Buffer.from(s), iconv.encode(s, 'cp932')]);
  const dbFiles = files.filter((f) => /gateway\.db(-wal|-shm)?$/.test(f));
  t.ok(dbFiles.length >= 2, 'the database and its WAL');
  for (const f of dbFiles)
    t.same(
      leaksOutsideTokens(readFileSync(f), forms),
      [],
      `no name or insurance number in clear in ${f.slice(state.length + 1)}`,
    );
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}
