/**
 * 7. Growth: cache lookups (the outage path's eligibility.get: keyed hash, indexed point read,
 * AES-GCM open) in a store holding 1,000 people against one holding 100,000, interleaved blocks
 * of random hits. Target: p99 grows ≤ 1.5×.
 */
import { join } from 'node:path';
import { GatewayStore, type LookupInput } from '../src/cache/index.js';
import {
  cleanup,
  interleaved,
  pairFigures,
  round,
  scaled,
  tempDir,
  type BenchContext,
  type BenchResult,
} from './lib.js';

const BLOCK = 1000;
const DAY = 24 * 3600_000;

const lookup = (i: number): LookupInput => ({
  kind: 'numbers',
  insurerNumber: '06139992',
  symbol: 'テスト',
  number: String(100000 + i),
  branch: '00',
  birthdate: '19800401',
});

/** About the size of a cached numbers answer (one insurance, 限度額 block, notices). */
function answer(i: number): Record<string, unknown> {
  return {
    referenceClassification: '2',
    source: 'central',
    verifiedAt: new Date().toISOString(),
    processTime: '20261201093000',
    confirmationDate: '20261201',
    status: '1',
    validity: '1',
    validityLabel: '有効',
    notices: [],
    results: [
      {
        name: `テスト　太郎${i}`,
        nameKana: 'ﾃｽﾄ ﾀﾛｳ',
        sex: '1',
        birthdate: '19800401',
        address: '東京都千代田区テスト町1-1',
        postNumber: '100-0001',
        insurerNumber: '06139992',
        insurerName: 'テスト健康保険組合',
        symbol: 'テスト',
        number: String(100000 + i),
        branch: '00',
        cardClassification: '01',
        personalFamily: '1',
        qualificationDate: '20200401',
        limitInfo: { classification: '01', classificationFlag: 'A03', validStartDate: '20240901' },
      },
    ],
  };
}

async function fill(store: GatewayStore, n: number): Promise<void> {
  const at = new Date();
  for (let i = 0; i < n; i += 256) {
    await Promise.all(
      Array.from({ length: Math.min(256, n - i) }, (_x, k) => store.eligibility.put(lookup(i + k), answer(i + k), at)),
    );
  }
}

export async function run(ctx: BenchContext): Promise<BenchResult> {
  const small = 1000,
    large = scaled(ctx, 100_000, 20_000);
  const dir = tempDir('growth');
  const a = await GatewayStore.open({ dir: join(dir, 'small') });
  const b = await GatewayStore.open({ dir: join(dir, 'large') });
  try {
    const t0 = performance.now();
    await fill(a, small);
    await fill(b, large);
    const fillMs = performance.now() - t0;
    const block = (store: GatewayStore, n: number) => async (): Promise<number[]> => {
      const out: number[] = [];
      for (let k = 0; k < BLOCK; k++) {
        const key = lookup(Math.floor(Math.random() * n));
        const t = performance.now();
        const hit = store.eligibility.get(key, 31 * DAY);
        out.push(performance.now() - t);
        if (!hit) throw new Error('a cached person was not found');
      }
      return out;
    };
    await interleaved(2, block(b, large), block(a, small));
    const m = await interleaved(scaled(ctx, 20, 4), block(b, large), block(a, small));
    const figures: Record<string, number> = {
      ...pairFigures(m.ours, m.ref, `people_${large}`, `people_${small}`),
      fill_ms: round(fillMs, 0),
    };
    return {
      name: 'growth',
      figures,
      target: `cache lookup p99 with ${large} cached people ≤ 1.5 × with ${small}`,
      met: figures.p99_ratio! <= 1.5,
    };
  } finally {
    await a.close();
    await b.close();
    cleanup(dir);
  }
}
