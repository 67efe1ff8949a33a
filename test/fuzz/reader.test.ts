// Fuzzing what a card (or a broken reader driver) can answer: the APDU response parsers, and the
// whole CardSession against a fake PC/SC card that, APDU by APDU, answers normally or with a
// truncated, oversized, garbage or wrong-status response, hangs, or throws.
// Property: every operation resolves correctly or rejects with a ReaderError with a known code,
// within its bound; the PIN buffer is always wiped and at most one VERIFY carries a PIN.
import t from 'tap';
import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CardSession, READER_ERROR_CODES, ReaderError, errorFromSw, type PcscCard } from '../../src/reader/index.js';
import {
  assertAllowedApdu,
  derHeaderBytesNeeded,
  derTotalLength,
  parseResponse,
  triesFromSw,
} from '../../src/reader/apdu.js';
import { CardModel } from '../../src/sim/card/model.js';
import { buildDfs, loadCardProfiles, type CardProfileMaterial } from '../../src/sim/card/profiles.js';
import { fuzzParams, typedOnly } from '../helpers/fuzz.js';
import { seedCardDir } from '../helpers/card-dir.js';

let material: CardProfileMaterial;
let dir: string;
t.before(async () => {
  dir = await seedCardDir(await mkdtemp(join(tmpdir(), 'fuzz-reader-')));
  material = (await loadCardProfiles(dir)).find((p) => p.name === 'normal')!;
});
t.teardown(() => rm(dir, { recursive: true, force: true }));

t.test('APDU response parsers', async (t) => {
  const bytes = fc.uint8Array({ maxLength: 600 });
  fc.assert(
    fc.property(bytes, (b) => {
      typedOnly(() => parseResponse(b), ReaderError, READER_ERROR_CODES);
      typedOnly(() => derTotalLength(b), ReaderError, READER_ERROR_CODES);
      typedOnly(() => assertAllowedApdu(b), ReaderError, READER_ERROR_CODES);
      const n = derHeaderBytesNeeded(b);
      return Number.isInteger(n) && n >= 2 && n <= 2 + 127;
    }),
    fuzzParams(5),
  );
  fc.assert(
    fc.property(fc.integer({ min: -1, max: 0x1ffff }), (sw) => {
      const e = errorFromSw(sw, 'read');
      const tries = triesFromSw(sw);
      return (
        e instanceof ReaderError &&
        READER_ERROR_CODES.includes(e.code) &&
        (tries === undefined || (tries >= 0 && tries <= 15))
      );
    }),
    fuzzParams(5),
  );
  t.pass();
});

type Step =
  | { b: 'normal' }
  | { b: 'truncate'; at: number }
  | { b: 'shortData'; at: number }
  | { b: 'tooShort'; len: 0 | 1 }
  | { b: 'oversize'; extra: Uint8Array; after: boolean }
  | { b: 'sw'; sw: number; keepData: boolean }
  | { b: 'random'; data: Uint8Array }
  | { b: 'okGarbage'; data: Uint8Array }
  | { b: 'hang' }
  | { b: 'throw'; what: 'error' | 'string' | 'undefined' | 'reader' }
  | { b: 'removed' };

const big = fc.integer({ min: 1, max: 70_000 }).map((n) => new Uint8Array(n).fill(0x5a));
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ b: 'normal' as const }) },
  { weight: 2, arbitrary: fc.record({ b: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ b: fc.constant('shortData' as const), at: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      b: fc.constant('oversize' as const),
      extra: fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 300 }), big),
      after: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      b: fc.constant('sw' as const),
      sw: fc.oneof(
        fc.integer({ min: 0, max: 0xffff }),
        fc.constantFrom(0x9000, 0x63c0, 0x63cf, 0x6982, 0x6a82, 0x6b00, 0x6100, 0x6c00),
      ),
      keepData: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ b: fc.constant('random' as const), data: fc.uint8Array({ minLength: 2, maxLength: 600 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      b: fc.constant('okGarbage' as const),
      data: fc.oneof(
        fc.uint8Array({ maxLength: 300 }),
        fc.constant(new Uint8Array([0x30, 0x84, 0xff, 0xff, 0xff, 0xff])),
        fc.constant(new Uint8Array([0x30, 0x82, 0x7f, 0xff])),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ b: 'hang' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      b: fc.constant('throw' as const),
      what: fc.constantFrom('error' as const, 'string' as const, 'undefined' as const, 'reader' as const),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ b: 'removed' as const }) },
);

/** A PC/SC card whose n-th answer follows the n-th step of a schedule (then normal answers). */
class HostileCard implements PcscCard {
  sent: Buffer[] = [];
  present = true;
  constructor(
    private readonly model: CardModel,
    private readonly schedule: Step[],
    private readonly beginFault: boolean,
  ) {}
  async transmit(apdu: Buffer): Promise<Buffer> {
    this.sent.push(Buffer.from(apdu));
    if (!this.present) throw new ReaderError('READER_CARD_REMOVED', 'gone');
    const s = this.schedule[this.sent.length - 1] ?? { b: 'normal' };
    const real = this.model.process(apdu).response;
    switch (s.b) {
      case 'normal':
        return real;
      // Cut anywhere, but keep 2 bytes: a shorter answer costs the session's 1.2 s removal check (tooShort).
      case 'truncate':
        return real.length <= 2 ? real : real.subarray(0, 2 + (s.at % (real.length - 2)));
      case 'shortData':
        return Buffer.concat([real.subarray(0, s.at % Math.max(1, real.length - 1)), real.subarray(-2)]);
      case 'tooShort':
        return real.subarray(0, s.len);
      case 'oversize':
        return s.after
          ? Buffer.concat([real, s.extra])
          : Buffer.concat([real.subarray(0, -2), s.extra, real.subarray(-2)]);
      case 'sw':
        return Buffer.concat([
          s.keepData ? real.subarray(0, -2) : Buffer.alloc(0),
          Buffer.from([s.sw >> 8, s.sw & 0xff]),
        ]);
      case 'random':
        return Buffer.from(s.data);
      case 'okGarbage':
        return Buffer.concat([s.data, Buffer.from([0x90, 0x00])]);
      case 'hang':
        return new Promise<Buffer>(() => undefined);
      case 'removed':
        this.present = false;
        return Buffer.alloc(0);
      case 'throw':
        // Beyond the PcscCard contract (ReaderError only): the session must still classify it.
        if (s.what === 'reader') throw new ReaderError('READER_IO', 'PC/SC: Transaction failed');
        if (s.what === 'error') throw new Error('native failure');
        throw s.what === 'string' ? 'a string' : undefined;
    }
  }
  async beginTransaction(): Promise<void> {
    if (this.beginFault) throw new ReaderError('READER_BUSY', 'busy');
  }
  async endTransaction(): Promise<void> {
    /* nothing */
  }
  status(): { present: boolean } {
    if (!this.present) throw new ReaderError('READER_CARD_REMOVED', 'gone');
    return { present: true };
  }
  async disconnect(): Promise<void> {
    /* nothing */
  }
}

type Op = 'cert' | 'certToken' | 'tries' | 'auth' | 'verifySign';
const CASE_BOUND_MS = 3000;

async function runCase(schedule: Step[], op: Op, beginFault: boolean): Promise<boolean> {
  const card = new HostileCard(
    new CardModel({ dfs: buildDfs(material, { authTriesLeft: 3, signTriesLeft: 5 }) }),
    schedule,
    beginFault,
  );
  const session = new CardSession(card, { apduTimeoutMs: 40, deadline: Date.now() + 2500 });
  const pin = Buffer.from(material.pin, 'latin1');
  const run = async (): Promise<unknown> => {
    switch (op) {
      case 'cert':
        return session.readAuthCertificate();
      case 'certToken':
        return session.readAuthCertificate({ checkToken: true });
      case 'tries':
        return session.triesLeft();
      case 'auth':
        return session.authenticate(pin, Buffer.from('challenge'), { confirmLastTry: true });
      case 'verifySign':
        await session.verifyPin(pin, { confirmLastTry: true });
        return session.sign(Buffer.from('x'));
    }
  };
  const t0 = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    run().then(
      () => 'ok',
      (e: unknown) => e,
    ),
    new Promise((r) => {
      timer = setTimeout(() => r('HANG'), CASE_BOUND_MS);
    }),
  ]).finally(() => clearTimeout(timer));
  if (outcome === 'HANG')
    throw new Error(`hung for ${CASE_BOUND_MS} ms: ${op} ${JSON.stringify(schedule.map((s) => s.b))}`);
  if (outcome !== 'ok') {
    if (!(outcome instanceof ReaderError)) throw new Error(`untyped failure: ${String(outcome)}`);
    if (!READER_ERROR_CODES.includes(outcome.code)) throw new Error(`unknown code ${outcome.code}`);
    if (JSON.stringify(outcome.toJSON()).includes(material.pin === '1234' ? '31323334' : '\u0000'))
      throw new Error('PIN bytes in an error');
  }
  if ((op === 'auth' || op === 'verifySign') && !pin.every((b) => b === 0)) throw new Error('PIN buffer not wiped');
  const verifies = card.sent.filter((a) => a[1] === 0x20 && a.length > 4).length;
  if (verifies > 1) throw new Error(`${verifies} VERIFYs with a PIN`);
  if (Date.now() - t0 > CASE_BOUND_MS) throw new Error('too slow');
  return true;
}

t.test('CardSession against a hostile card', async (t) => {
  const schedule = fc.array(step, { minLength: 1, maxLength: 10 });
  const op = fc.constantFrom<Op>('cert', 'certToken', 'tries', 'auth', 'verifySign');
  await fc.assert(
    fc.asyncProperty(
      schedule,
      op,
      fc.boolean().map((b) => b && Math.random() < 0.1),
      runCase,
    ),
    fuzzParams(),
  );
  t.pass();
});

t.test('every fault at every position of the flows', async (t) => {
  // Deterministic sweep: each single fault at each APDU index of each operation.
  const faults: Step[] = [
    { b: 'truncate', at: 0 },
    { b: 'truncate', at: 1 },
    { b: 'truncate', at: 200 },
    { b: 'shortData', at: 0 },
    { b: 'shortData', at: 100 },
    { b: 'oversize', extra: new Uint8Array(65_536), after: false },
    { b: 'oversize', extra: new Uint8Array([1]), after: true },
    { b: 'sw', sw: 0x6f00, keepData: false },
    { b: 'sw', sw: 0x9000, keepData: false },
    { b: 'sw', sw: 0x63c5, keepData: true },
    { b: 'okGarbage', data: new Uint8Array([0x30, 0x82, 0x7f, 0xff]) },
    { b: 'okGarbage', data: new Uint8Array(0) },
    { b: 'hang' },
    { b: 'throw', what: 'error' },
    { b: 'removed' },
  ];
  let cases = 0;
  for (const op of ['cert', 'tries', 'auth'] as const) {
    for (let at = 0; at < 10; at++) {
      for (const f of faults) {
        const schedule: Step[] = Array.from({ length: at }, () => ({ b: 'normal' as const }));
        schedule.push(f);
        await runCase(schedule, op, false);
        cases++;
      }
    }
  }
  t.ok(cases > 300, `${cases} cases`);
});

t.test('an answer shorter than a status word, the card still present', async (t) => {
  // The session first waits (up to 1.2 s) to tell a pulled card from garbage: few cases, they are slow.
  for (const [op, at, len] of [
    ['cert', 0, 0],
    ['cert', 2, 1],
    ['auth', 3, 1],
  ] as const) {
    const schedule: Step[] = Array.from({ length: at }, () => ({ b: 'normal' as const }));
    schedule.push({ b: 'tooShort', len });
    t.ok(await runCase(schedule, op, false), `${op}: a ${len}-byte answer at APDU ${at}`);
  }
});

t.test('regression: a card dribbling a few bytes per READ cannot make the session read forever', async (t) => {
  // Before the fix a short chunk was simply followed by another READ at the next offset, so a card
  // answering 1 byte per READ with a DER header claiming 32 KiB held the reader for 32 768 APDUs
  // (each allowed the full APDU timeout). A chunk shorter than asked before the end of the
  // certificate now means the EF ended early.
  const model = new CardModel({ dfs: buildDfs(material, { authTriesLeft: 3, signTriesLeft: 5 }) });
  const sent: Buffer[] = [];
  const card: PcscCard = {
    async transmit(apdu) {
      sent.push(apdu);
      const r = model.process(apdu).response;
      if (apdu[1] !== 0xb0 || r.length <= 3) return r;
      const offset = (apdu[2]! << 8) | apdu[3]!;
      // a DER header claiming 0x7fff bytes, then one byte per answer
      const fake = Buffer.concat([Buffer.from([0x30, 0x82, 0x7f, 0xfb]), r.subarray(4, -2)]);
      return Buffer.concat([fake.subarray(offset, offset + (offset === 0 ? 4 : 1)), Buffer.from([0x90, 0x00])]);
    },
    async beginTransaction() {},
    async endTransaction() {},
    status: () => ({ present: true }),
    async disconnect() {},
  };
  const e = await new CardSession(card, { apduTimeoutMs: 1000 }).readAuthCertificate().catch((x: unknown) => x);
  t.match(e, { code: 'CARD_BAD_CERTIFICATE' });
  t.ok(sent.length <= 3, `${sent.length} APDUs`);
});
