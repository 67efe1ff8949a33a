// Hostile virtual-card profiles: the model spoils only the answers it was told to, still behaves
// like the card otherwise, and the reader's CardSession turns every spoiled answer into a typed error.
import t from 'tap';
import { CardSession, ReaderError, READER_ERROR_CODES, type PcscCard } from '../../src/reader/index.js';
import { CardModel, commandKind, spoil, type HostileRule } from '../../src/sim/card/model.js';
import {
  HOSTILE_PROFILES,
  HOSTILE_PROFILE_NAMES,
  buildDfs,
  loadCardProfiles,
  resolveProfile,
  type CardProfileMaterial,
} from '../../src/sim/card/profiles.js';
import { seedCardDir } from '../helpers/card-dir.js';

let all: CardProfileMaterial[];
let dir: string;
t.before(async () => {
  dir = await seedCardDir(t.testdir()); // one folder for the whole file, the profiles copied in
  all = await loadCardProfiles(dir);
});

const hex = (s: string) => Buffer.from(s.replace(/\s/g, ''), 'hex');
const SELECT_AP = hex('00A4040C0AD392F000260100000001');
const SELECT_CERT = hex('00A4020C02000A');
const SELECT_PIN = hex('00A4020C020018');
const READ0 = hex('00B0000000');
const TRIES = hex('00200080');
const VERIFY = hex('002000800431323334');

const model = (hostile: readonly HostileRule[] = []) => {
  const normal = all.find((p) => p.name === 'normal')!;
  return new CardModel({ dfs: buildDfs(normal, { authTriesLeft: 3, signTriesLeft: 5 }), hostile });
};

t.test('command kinds', async (t) => {
  t.equal(commandKind(SELECT_AP), 'select-ap');
  t.equal(commandKind(SELECT_CERT), 'select-ef');
  t.equal(commandKind(READ0), 'read');
  t.equal(commandKind(TRIES), 'tries');
  t.equal(commandKind(VERIFY), 'verify');
  t.equal(commandKind(hex('802A00800300010200')), 'sign');
  t.equal(commandKind(hex('00CA0000')), 'other');
  t.equal(commandKind(hex('00')), 'other');
});

t.test('each action spoils the answer as described, deterministically', async (t) => {
  const ok = hex('0102030405 9000');
  t.same(spoil(ok, { kind: 'truncate', keep: 1 }, 0), hex('01'));
  t.same(spoil(ok, { kind: 'truncate', keep: 0 }, 0), Buffer.alloc(0));
  t.same(spoil(ok, { kind: 'cut-data', keep: 2 }, 0), hex('0102 9000'));
  t.same(spoil(ok, { kind: 'oversize', extra: 3 }, 0), hex('0102030405 EEEEEE 9000'));
  t.same(spoil(ok, { kind: 'sw', sw: 0x6f00 }, 0), hex('6F00'));
  t.same(spoil(ok, { kind: 'sw', sw: 0x6281, keepData: true }, 0), hex('0102030405 6281'));
  t.same(spoil(ok, { kind: 'data', data: hex('3080') }, 0), hex('3080 9000'));
  t.same(spoil(hex('6A82'), { kind: 'cut-data', keep: 5 }, 0), hex('9000'), 'no data to cut: 9000 alone');
  const g = spoil(ok, { kind: 'garbage', length: 7 }, 3);
  t.equal(g.length, 7);
  t.same(spoil(ok, { kind: 'garbage', length: 7 }, 3), g, 'same noise for the same sequence number');
  t.notSame(spoil(ok, { kind: 'garbage', length: 7 }, 4), g);
});

t.test('only the chosen command is spoiled; the card logic still runs', async (t) => {
  const m = model([{ on: 'verify', action: { kind: 'sw', sw: 0x6581 } }]);
  t.same(m.process(SELECT_AP).response, hex('9000'), 'SELECT honest');
  t.same(m.process(SELECT_PIN).response, hex('9000'));
  t.same(m.process(TRIES).response, hex('63C3'), 'tries honest');
  t.same(m.process(hex('002000800439393939')).response, hex('6581'), 'VERIFY spoiled');
  t.equal(m.pin('jpki', 0x18)?.remaining, 2, 'the wrong PIN still cost a try, as on a real card');
  t.same(m.process(TRIES).response, hex('63C2'));
  const honest = model();
  honest.process(SELECT_AP);
  honest.process(SELECT_CERT);
  const h = model([{ on: 'read', action: { kind: 'oversize', extra: 10 } }]);
  h.process(SELECT_AP);
  h.process(SELECT_CERT);
  const real = honest.process(READ0).response;
  const spoiled = h.process(READ0).response;
  t.equal(spoiled.length, real.length + 10);
  t.same(spoiled.subarray(0, 256), real.subarray(0, 256), 'real data first');
  t.same(spoiled.subarray(-2), hex('9000'));
  const any = model([{ on: 'any', action: { kind: 'garbage', length: 7 } }]);
  t.equal(any.process(SELECT_AP).response.length, 7);
  t.equal(any.process(READ0).response.length, 7);
});

t.test('hostile profiles borrow the normal card; other names are untouched', async (t) => {
  for (const name of HOSTILE_PROFILE_NAMES) {
    const r = resolveProfile(all, name)!;
    t.equal(r.material.name, name);
    t.equal(r.material.certPem, all.find((p) => p.name === 'normal')!.certPem);
    t.same(r.hostile, HOSTILE_PROFILES[name]);
  }
  t.same(resolveProfile(all, 'revoked'), { material: all.find((p) => p.name === 'revoked') });
  t.equal(resolveProfile(all, 'nope'), undefined);
  t.equal(resolveProfile(all, 'constructor'), undefined);
});

/** In-process PC/SC card over the model (no receive-buffer limit: the integration test has one). */
class ModelCard implements PcscCard {
  constructor(private readonly m: CardModel) {}
  async transmit(apdu: Buffer) {
    return this.m.process(apdu).response;
  }
  async beginTransaction() {}
  async endTransaction() {}
  status() {
    return { present: true };
  }
  async disconnect() {}
}

/** What the reader must make of each hostile profile, and with which operation. */
const EXPECTED: Record<string, { op: 'cert' | 'auth'; code: string | undefined }> = {
  'hostile-short-answer': { op: 'cert', code: 'CARD_BAD_RESPONSE' },
  'hostile-cut-cert': { op: 'cert', code: 'CARD_BAD_CERTIFICATE' },
  'hostile-oversized-read': { op: 'cert', code: 'CARD_BAD_CERTIFICATE' },
  'hostile-bad-der': { op: 'cert', code: 'CARD_BAD_RESPONSE' },
  'hostile-huge-der': { op: 'cert', code: 'CARD_BAD_RESPONSE' },
  'hostile-garbage-cert': { op: 'cert', code: 'CARD_BAD_CERTIFICATE' },
  'hostile-select-sw': { op: 'cert', code: 'CARD_UNEXPECTED_SW' },
  'hostile-tries-9000': { op: 'auth', code: 'CARD_BAD_RESPONSE' },
  'hostile-verify-sw': { op: 'auth', code: 'CARD_UNEXPECTED_SW' },
  'hostile-short-signature': { op: 'auth', code: 'CARD_BAD_RESPONSE' },
  'hostile-oversized-signature': { op: 'auth', code: 'CARD_BAD_RESPONSE' },
  'hostile-garbage': { op: 'cert', code: undefined }, // noise: any typed error
};

t.test('the reader turns every hostile profile into a typed error', async (t) => {
  t.same(Object.keys(EXPECTED).sort(), [...HOSTILE_PROFILE_NAMES].sort(), 'every profile has an expectation');
  for (const name of HOSTILE_PROFILE_NAMES) {
    const { material, hostile } = resolveProfile(all, name)!;
    const m = new CardModel({
      dfs: buildDfs(material, { authTriesLeft: 3, signTriesLeft: 5 }),
      ...(hostile ? { hostile } : {}),
    });
    const s = new CardSession(new ModelCard(m), { apduTimeoutMs: 1000 });
    const pin = Buffer.from('1234', 'latin1');
    const e = await (EXPECTED[name]!.op === 'cert'
      ? s.readAuthCertificate()
      : s.authenticate(pin, Buffer.from('c'))
    ).then(
      () => undefined,
      (x: unknown) => x,
    );
    t.ok(
      e instanceof ReaderError && READER_ERROR_CODES.includes(e.code),
      `${name}: ${String((e as Error)?.message ?? 'no error')}`,
    );
    if (EXPECTED[name]!.code) t.equal((e as ReaderError).code, EXPECTED[name]!.code, name);
    if (EXPECTED[name]!.op === 'auth')
      t.ok(
        pin.every((b) => b === 0),
        `${name}: PIN wiped`,
      );
  }
});
