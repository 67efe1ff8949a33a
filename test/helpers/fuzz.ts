/**
 * Shared settings for test/fuzz: bounded runs by default (CI), long runs with FUZZ_RUNS
 * (`npm run fuzz` uses 20000). FUZZ_SEED replays a failure that fast-check reported.
 */
import fc from 'fast-check';
import type { OnshiError } from '../../src/core/errors.js';

export const FUZZ_RUNS = Math.max(1, Number(process.env['FUZZ_RUNS'] ?? 300) || 300);

/** fast-check parameters; `scale` lets an expensive property run fewer cases than a cheap one. */
export function fuzzParams<T>(scale = 1): fc.Parameters<T> {
  const p: fc.Parameters<T> = { numRuns: Math.max(1, Math.round(FUZZ_RUNS * scale)) };
  const seed = process.env['FUZZ_SEED'];
  if (seed !== undefined && seed !== '') p.seed = Number(seed);
  return p;
}

/** Per-case bound for synchronous parsers: a case slower than this counts as a hang. */
export const CASE_MS = Number(process.env['FUZZ_CASE_MS'] ?? 2000);

export interface Outcome {
  ok: boolean;
  code?: string;
}

/**
 * Runs fn and classifies: returned, or threw an error of `type` whose code is in `codes`.
 * Anything else (a TypeError, a RangeError, a string, an unknown code) or a case slower than CASE_MS
 * throws, which fails the property with fast-check's counterexample.
 */
export function typedOnly<T>(
  fn: () => T,
  type: abstract new (...a: never[]) => OnshiError,
  codes: readonly string[],
): Outcome {
  const t0 = performance.now();
  let out: Outcome;
  try {
    fn();
    out = { ok: true };
  } catch (e) {
    if (!(e instanceof type))
      throw new Error(`untyped failure: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    if (!codes.includes(e.code)) throw new Error(`unknown code ${e.code}`);
    out = { ok: false, code: e.code };
  }
  const ms = performance.now() - t0;
  if (ms > CASE_MS) throw new Error(`case took ${ms.toFixed(0)} ms (bound ${CASE_MS} ms)`);
  return out;
}

/** Mutations of a valid byte string: flips, truncation, insertion of hostile snippets, repetition. */
export function mutatedBytes(seeds: readonly Buffer[], snippets: readonly string[] = []): fc.Arbitrary<Buffer> {
  const seed = fc.constantFrom(...seeds);
  const snippet =
    snippets.length > 0
      ? fc.constantFrom(...snippets).map((s) => Buffer.from(s, 'utf8'))
      : fc.uint8Array({ maxLength: 16 }).map((u) => Buffer.from(u));
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), what: snippet }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 64 }) }),
    fc.record({
      kind: fc.constant('repeat' as const),
      at: fc.nat(),
      len: fc.integer({ min: 1, max: 64 }),
      times: fc.integer({ min: 2, max: 200 }),
    }),
  );
  return fc.tuple(seed, fc.array(mutation, { minLength: 1, maxLength: 6 })).map(([s, ms]) => {
    let b = Buffer.from(s);
    for (const m of ms) {
      const at = b.length === 0 ? 0 : m.at % (b.length + 1);
      if (m.kind === 'flip' && b.length > 0) {
        b = Buffer.from(b);
        b[at % b.length] = m.byte;
      } else if (m.kind === 'truncate') b = b.subarray(0, at);
      else if (m.kind === 'insert') b = Buffer.concat([b.subarray(0, at), m.what, b.subarray(at)]);
      else if (m.kind === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.len)]);
      else if (m.kind === 'repeat') {
        const piece = b.subarray(at, at + m.len);
        b = Buffer.concat([b.subarray(0, at), ...Array<Buffer>(m.times).fill(piece), b.subarray(at)]);
      }
    }
    return b;
  });
}
