/**
 * `onshi batch submit FILE [--now] | status ID | results ID`: a batch inquiry (一括照会) through the
 * running gateway's WebSocket API, with a client token like any receipt computer. FILE is JSON
 * (`{ "confirmationDate"?, "entries": [...] }` or just the array) or CSV with a header row naming
 * the columns arbitraryId, insurerNumber, symbol, number, branch, birthdate[, limitConsent].
 */
import { readFileSync } from 'node:fs';
import { todayJst } from '../oqs/dates.js';
import { BATCH_PART_MAX } from '../protocol/schema.js';
import { pageBySize } from '../api/batch-api.js';
import { parseCliArgs } from './args.js';
import { GatewayClient } from '../client/index.js';

interface Ctx {
  usage(message: string): Error;
}

type Entry = Record<string, unknown>;

/** entries per frame, in bytes of JSON: leaves room for the envelope under a 64 KiB frame */
const PART_BYTES = 56 * 1024;

const COLUMNS = ['arbitraryId', 'insurerNumber', 'symbol', 'number', 'branch', 'birthdate', 'limitConsent'] as const;

/** One CSV line: commas, double-quoted fields with "" for a quote (no line breaks inside fields). */
function csvFields(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((f) => f.trim());
}

/** The entries of a CSV file; empty cells are left out (no symbol, no branch). */
export function parseBatchCsv(text: string, usage: (m: string) => Error): Entry[] {
  const lines = text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '');
  if (lines.length === 0) throw usage('the CSV file is empty');
  const header = csvFields(lines[0]!);
  for (const h of header)
    if (!(COLUMNS as readonly string[]).includes(h))
      throw usage(`unknown CSV column "${h}" (known: ${COLUMNS.join(', ')})`);
  for (const need of ['arbitraryId', 'insurerNumber', 'number', 'birthdate'])
    if (!header.includes(need)) throw usage(`the CSV header needs the column ${need}`);
  return lines.slice(1).map((line, i) => {
    const cells = csvFields(line);
    if (cells.length !== header.length)
      throw usage(`CSV line ${i + 2} has ${cells.length} fields, the header ${header.length}`);
    const e: Entry = {};
    header.forEach((h, j) => {
      const v = cells[j]!;
      if (v === '') return;
      e[h] = h === 'limitConsent' ? v === '1' || v.toLowerCase() === 'true' : v;
    });
    return e;
  });
}

function readBatchFile(file: string, usage: (m: string) => Error): { confirmationDate?: string; entries: Entry[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw usage(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (/\.csv$/i.test(file)) return { entries: parseBatchCsv(text, usage) };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw usage(`${file} is neither .csv nor valid JSON`);
  }
  if (Array.isArray(json)) return { entries: json as Entry[] };
  const o = json as { confirmationDate?: unknown; entries?: unknown };
  if (typeof o !== 'object' || o === null || !Array.isArray(o.entries))
    throw usage(`${file}: expected { "entries": [...] } or an array of entries`);
  return {
    ...(typeof o.confirmationDate === 'string' ? { confirmationDate: o.confirmationDate } : {}),
    entries: o.entries as Entry[],
  };
}

interface Status {
  batchId: string;
  state: string;
  run: string;
  confirmationDate: string;
  total: number;
  finished: number;
  errors: number;
  chunks: Record<string, number>;
}
interface ResultItem {
  index: number;
  arbitraryId: string;
  state: string;
  result?: {
    validityLabel?: string;
    validity?: string;
    status?: string;
    resultCode?: string;
    results?: { name?: string }[];
  };
  error?: { code: string; message: string };
}

export async function cmdBatch(argv: string[], ctx: Ctx): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseCliArgs(
    rest,
    {
      now: { type: 'boolean' },
      date: { type: 'string' },
      json: { type: 'boolean' },
      ws: { type: 'string' },
      token: { type: 'string' },
    },
    (m) => ctx.usage(m),
    1,
  );
  const url = values.ws ?? process.env.ONSHI_WS;
  const token = values.token ?? process.env.ONSHI_TOKEN;
  if (sub !== 'submit' && sub !== 'status' && sub !== 'results')
    throw ctx.usage('batch submit FILE [--now] [--date YYYYMMDD] | status ID | results ID');
  const arg = positionals[0];
  if (!arg) throw ctx.usage(sub === 'submit' ? 'batch submit needs a FILE' : `batch ${sub} needs a batch ID`);
  if (!url || !token) throw ctx.usage('batch needs --ws and --token (or ONSHI_WS and ONSHI_TOKEN)');
  const file = sub === 'submit' ? readBatchFile(arg, (m) => ctx.usage(m)) : undefined;
  const client = await GatewayClient.connect(url, token);
  try {
    if (file) return await submit(client, file, values.date, values.now ?? false, values.json ?? false);
    if (sub === 'status') {
      const { batch } = (await client.request({ type: 'batch.status', batchId: arg })) as { batch: Status };
      if (values.json) process.stdout.write(JSON.stringify(batch, null, 2) + '\n');
      else {
        const c = batch.chunks;
        process.stdout.write(
          `batch ${batch.batchId} (${batch.confirmationDate}, ${batch.run}): ${batch.state}, ${batch.finished}/${batch.total} entries done, ${batch.errors} errors; parts: ${c.done ?? 0} done, ${c.submitted ?? 0} at central, ${c.pending ?? 0} waiting, ${c.failed ?? 0} failed\n`,
        );
      }
      return 0;
    }
    const all: ResultItem[] = [];
    let from: number | undefined = 0;
    while (from !== undefined) {
      const page = (await client.request({ type: 'batch.results', batchId: arg, from, limit: 500 })) as {
        results: ResultItem[];
        next?: number;
      };
      all.push(...page.results);
      from = page.next;
    }
    if (values.json) process.stdout.write(JSON.stringify(all, null, 2) + '\n');
    else for (const r of all) process.stdout.write(resultLine(r) + '\n');
    return 0;
  } finally {
    await client.close();
  }
}

async function submit(
  client: GatewayClient,
  file: { confirmationDate?: string; entries: Entry[] },
  date: string | undefined,
  now: boolean,
  json: boolean,
): Promise<number> {
  const confirmationDate = date ?? file.confirmationDate ?? todayJst();
  let batchId: string | undefined;
  let answer: Record<string, unknown> = {};
  // Sent in parts so that no frame passes the API's frame limit (64 KiB by default); the batch is
  // queued with the last part.
  const parts = pageBySize(file.entries, PART_BYTES).flatMap((p) =>
    Array.from({ length: Math.ceil(p.length / BATCH_PART_MAX) }, (_, k) =>
      p.slice(k * BATCH_PART_MAX, (k + 1) * BATCH_PART_MAX),
    ),
  );
  if (parts.length === 0) parts.push([]);
  for (const [i, part] of parts.entries()) {
    const final = i === parts.length - 1;
    const msg: Record<string, unknown> & { type: string } =
      batchId === undefined
        ? { type: 'batch.submit', confirmationDate, run: now ? 'now' : 'scheduled', final, entries: part }
        : { type: 'batch.submit', batchId, final, entries: part };
    answer = await client.request(msg);
    batchId = answer.batchId as string;
  }
  if (json) process.stdout.write(JSON.stringify(answer) + '\n');
  else
    process.stdout.write(
      `batch ${batchId} accepted: ${String(answer.total)} entries for ${confirmationDate}, ${now ? 'running now' : 'waiting for the batch schedule'}\n`,
    );
  return 0;
}

function resultLine(r: ResultItem): string {
  if (r.state === 'pending') return `${r.index}\t${r.arbitraryId}\tpending`;
  if (r.error) return `${r.index}\t${r.arbitraryId}\terror ${r.error.code}: ${r.error.message}`;
  const res = r.result;
  if (res?.status === '2') return `${r.index}\t${r.arbitraryId}\tper-person error ${res.resultCode ?? ''}`;
  return `${r.index}\t${r.arbitraryId}\t${res?.validityLabel ?? res?.validity ?? '?'}\t${res?.results?.[0]?.name ?? ''}`;
}
