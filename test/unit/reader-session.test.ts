// CardSession, the PIN guard and the manager against a fake PC/SC backend driving the card model.
import t from 'tap';
import { X509Certificate, verify } from 'node:crypto';
import {
  CardSession,
  PinAttempt,
  runPinVerify,
  ReaderManager,
  ReaderError,
  isReaderError,
  type PcscBackend,
  type PcscCard,
  type PcscContext,
  type ReaderSnapshot,
} from '../../src/reader/index.js';
import { CardModel } from '../../src/sim/card/model.js';
import { buildDfs, loadCardProfiles, type CardProfileMaterial } from '../../src/sim/card/profiles.js';
import { seedCardDir } from '../helpers/card-dir.js';

let material: CardProfileMaterial;
let dir: string;
t.before(async () => {
  dir = await seedCardDir(t.testdir()); // one folder for the whole file, the profiles copied in
  material = (await loadCardProfiles(dir)).find((p) => p.name === 'normal')!;
});

type Fault = 'remove' | 'hang' | 'empty' | 'late' | undefined;
class FakeCard implements PcscCard {
  log: string[] = [];
  present = true;
  fault: (apdu: Buffer) => Fault = () => undefined;
  transactions = 0;
  disconnected: string | undefined;
  constructor(public model: CardModel) {}
  async transmit(apdu: Buffer): Promise<Buffer> {
    this.log.push(apdu.toString('hex').toUpperCase());
    if (!this.present) throw new ReaderError('READER_CARD_REMOVED', 'gone');
    const f = this.fault(apdu);
    if (f === 'remove') {
      this.present = false;
      throw new ReaderError('READER_IO', 'PC/SC: Transaction failed');
    }
    if (f === 'hang') return new Promise(() => undefined);
    if (f === 'late') {
      const r = this.model.process(apdu).response;
      return new Promise((res) => setTimeout(() => res(r), 150));
    }
    if (f === 'empty') {
      this.present = false;
      return Buffer.alloc(0);
    }
    return this.model.process(apdu).response;
  }
  async beginTransaction() {
    this.transactions++;
  }
  async endTransaction() {
    /* nothing */
  }
  status() {
    if (!this.present) throw new ReaderError('READER_CARD_REMOVED', 'gone');
    return { present: true };
  }
  async disconnect(d: 'leave' | 'reset' = 'leave') {
    this.disconnected = d;
  }
}

const model = (auth = 3) => new CardModel({ dfs: buildDfs(material, { authTriesLeft: auth, signTriesLeft: 5 }) });
const pin = (s: string) => Buffer.from(s, 'latin1');

t.test('PinAttempt: format, blocked, last-try confirmation, one VERIFY, wipe', async (t) => {
  const io = (tries: number, sw = 0x9000) => {
    const sent: Buffer[] = [];
    return {
      sent,
      io: {
        triesLeft: async () => tries,
        sendVerify: async (a: Buffer) => {
          sent.push(Buffer.from(a));
          return { data: Buffer.alloc(0), sw };
        },
      },
    };
  };
  for (const bad of ['123', '12345', 'abcd', '']) {
    const p = pin(bad);
    const x = io(3);
    await t.rejects(runPinVerify(p, {}, x.io), { code: 'CARD_PIN_FORMAT' });
    t.equal(x.sent.length, 0, `nothing sent for ${JSON.stringify(bad)}`);
  }
  let p = pin('1234');
  let x = io(0);
  await t.rejects(runPinVerify(p, { confirmLastTry: true }, x.io), { code: 'CARD_PIN_BLOCKED' });
  t.equal(x.sent.length, 0);
  t.ok(
    p.every((b) => b === 0),
    'wiped on refusal',
  );
  p = pin('1234');
  x = io(1);
  await t.rejects(runPinVerify(p, {}, x.io), { code: 'CARD_PIN_CONFIRM_REQUIRED', details: { triesLeft: 1 } });
  t.equal(x.sent.length, 0);
  p = pin('1234');
  x = io(1);
  t.same(await runPinVerify(p, { confirmLastTry: true }, x.io), { triesLeftBefore: 1 });
  t.equal(x.sent.length, 1, 'exactly one VERIFY');
  t.equal(x.sent[0]!.toString('hex'), '002000800431323334');
  t.ok(
    p.every((b) => b === 0),
    'PIN wiped after VERIFY',
  );
  p = pin('1234');
  x = io(3, 0x63c2);
  await t.rejects(runPinVerify(p, {}, x.io), { code: 'CARD_PIN_WRONG', details: { triesLeft: 2 } });
  t.equal(x.sent.length, 1, 'no retry on a wrong PIN');
  for (const sw of [0x63c0, 0x6983, 0x6984]) {
    x = io(3, sw);
    await t.rejects(runPinVerify(pin('1234'), {}, x.io), { code: 'CARD_PIN_BLOCKED' });
  }
  const a = new PinAttempt(pin('1234'));
  a.validate();
  a.authorize(3, {});
  a.takeApdu();
  t.throws(() => a.takeApdu(), { code: 'READER_IO' }, 'a second VERIFY is impossible');
  const err = await runPinVerify(pin('9876'), {}, io(3, 0x63c1).io).catch((e: unknown) => e as ReaderError);
  t.notMatch(JSON.stringify(err), /9876|39383736/, 'the PIN is in no error');
});

t.test('session: certificate with minimal APDUs, token check on request', async (t) => {
  const c = new FakeCard(model());
  const s = new CardSession(c);
  const { der } = await s.readAuthCertificate();
  t.same(der, new X509Certificate(material.certPem).raw);
  t.equal(c.log[0], '00A4040C0AD392F000260100000001', 'full AID');
  t.equal(c.log[1], '00A4020C02000A');
  t.equal(c.log[2], '00B0000000', 'first read is a full chunk');
  t.equal(s.apduCount, 2 + Math.ceil(der.length / 256));
  // a second read in the same session needs no SELECT
  await s.readAuthCertificate();
  t.equal(s.apduCount, 2 + 2 * Math.ceil(der.length / 256));
  const c2 = new FakeCard(model());
  await new CardSession(c2).readAuthCertificate({ checkToken: true });
  t.ok(c2.log.includes('00A4020C020006') && c2.log.includes('00B0000020'), 'token info read when asked');
});

t.test('session: authenticate = 6 APDUs in one transaction; signature verifies', async (t) => {
  const c = new FakeCard(model());
  const s = new CardSession(c);
  const r = await s.authenticate(pin('1234'), Buffer.from('nonce'));
  t.ok(verify('sha256', Buffer.from('nonce'), new X509Certificate(material.certPem).publicKey, r.signature));
  t.same(
    c.log.map((h) => h.slice(0, 8)),
    ['00A4040C', '00A4020C', '00200080', '00200080', '00A4020C', '802A0080'],
  );
  t.equal(c.transactions, 1);
  t.equal(s.counters.verifies, 1);
  // separate verifyPin + sign on one connection
  const c2 = new FakeCard(model());
  const s2 = new CardSession(c2);
  t.equal(await s2.triesLeft(), 3);
  await s2.verifyPin(pin('1234'));
  t.equal((await s2.sign(Buffer.from('x'))).length, 256);
  await t.rejects(
    new CardSession(new FakeCard(model())).sign(Buffer.from('x')),
    { code: 'CARD_SECURITY_STATUS' },
    'sign without VERIFY',
  );
});

t.test('session: not a JPKI card', async (t) => {
  const c = new FakeCard(new CardModel({ dfs: [] }));
  await t.rejects(new CardSession(c).readAuthCertificate(), { code: 'CARD_NOT_JPKI' });
});

t.test('session: card removed at each step → READER_CARD_REMOVED', async (t) => {
  const steps: Array<[string, (h: string) => boolean, 'remove' | 'empty']> = [
    ['SELECT AP', (h) => h.startsWith('00A4040C'), 'remove'],
    ['SELECT 0018', (h) => h === '00A4020C020018', 'remove'],
    ['tries', (h) => h === '00200080', 'empty'],
    ['VERIFY', (h) => h.startsWith('0020008004'), 'remove'],
    ['SELECT 0017', (h) => h === '00A4020C020017', 'empty'],
    ['SIGN', (h) => h.startsWith('802A'), 'remove'],
  ];
  for (const [name, m, how] of steps) {
    const c = new FakeCard(model());
    c.fault = (a) => (m(a.toString('hex').toUpperCase()) ? how : undefined);
    const s = new CardSession(c);
    await t.rejects(s.authenticate(pin('1234'), Buffer.from('x')), { code: 'READER_CARD_REMOVED' }, `${name} (${how})`);
    await t.rejects(s.triesLeft(), { code: 'READER_CARD_REMOVED' }, `${name}: session stays broken`);
  }
  const c = new FakeCard(model());
  c.fault = (a) => (a[1] === 0xb0 && a[2] === 1 ? 'remove' : undefined);
  await t.rejects(new CardSession(c).readAuthCertificate(), { code: 'READER_CARD_REMOVED' }, 'during a READ');
});

t.test('session: a hung card → READER_TIMEOUT within the bound; deadline and abort', async (t) => {
  const c = new FakeCard(model());
  c.fault = (a) => (a[1] === 0x2a ? 'hang' : undefined);
  const t0 = Date.now();
  await t.rejects(new CardSession(c, { apduTimeoutMs: 150 }).authenticate(pin('1234'), Buffer.from('x')), {
    code: 'READER_TIMEOUT',
  });
  t.ok(Date.now() - t0 < 1000);
  const c2 = new FakeCard(model());
  c2.fault = () => 'hang';
  await t.rejects(new CardSession(c2, { deadline: Date.now() + 100 }).readAuthCertificate(), {
    code: 'READER_TIMEOUT',
  });
  const ac = new AbortController();
  const c3 = new FakeCard(model());
  c3.fault = () => 'hang';
  setTimeout(() => ac.abort(), 50);
  await t.rejects(new CardSession(c3, { signal: ac.signal }).readAuthCertificate(), { code: 'READER_ABORTED' });
});

// A fake PC/SC service that can go down and come back.
class FakeService implements PcscBackend {
  up = true;
  establishCalls = 0;
  readers: ReaderSnapshot[] = [{ name: 'R1', state: 0x10, present: false }];
  card = new FakeCard(model());
  /** given to each card connected from now on */
  fault: FakeCard['fault'] | undefined;
  /** connect never answers (a reader wedged by a stuck transmit) */
  connectHangs = false;
  closed = 0;
  async establish(): Promise<PcscContext> {
    this.establishCalls++;
    if (!this.up) throw new ReaderError('READER_PCSC_UNAVAILABLE', 'down');
    let valid = true;
    const check = () => {
      if (!this.up || !valid) {
        valid = false;
        throw new ReaderError('READER_PCSC_UNAVAILABLE', 'gone');
      }
    };
    return {
      listReaders: () => {
        check();
        return this.readers.map((r) => ({ ...r }));
      },
      connect: async (name) => {
        if (this.connectHangs) return new Promise<never>(() => {});
        check();
        const r = this.readers.find((x) => x.name === name);
        if (!r) throw new ReaderError('READER_NO_READER', 'x');
        if (!r.present) throw new ReaderError('READER_NO_CARD', 'x');
        this.card = new FakeCard(model());
        if (this.fault) this.card.fault = this.fault;
        return this.card;
      },
      waitForChange: async (_cur, ms) => {
        await new Promise((r) => setTimeout(r, Math.min(ms, 30)));
        check();
        return 'timeout';
      },
      cancel: () => undefined,
      close: () => {
        valid = false;
        this.closed++;
      },
    };
  }
}

t.test('manager: events, waitForCard, withSession, recovery after the service dies', async (t) => {
  const svc = new FakeService();
  const mgr = new ReaderManager({ backend: svc, pollMs: 30, backoffInitialMs: 20, backoffMaxMs: 80 });
  const events: string[] = [];
  mgr.on('card', (e) => events.push(`card:${e.reader}:${e.present}`));
  mgr.on('reader', (e) => events.push(`reader:${e.name}:${e.attached}`));
  await mgr.start();
  t.teardown(() => mgr.stop());
  t.match(mgr.status(), { pcsc: 'up', readers: [{ name: 'R1', cardPresent: false }] });
  await t.rejects(
    mgr.withSession((s) => s.triesLeft()),
    { code: 'READER_NO_CARD' },
  );
  await t.rejects(mgr.waitForCard({ deadline: Date.now() + 50 }), { code: 'READER_NO_CARD' });
  const waiting = mgr.waitForCard({ deadline: Date.now() + 2000 });
  svc.readers[0]!.present = true;
  t.equal(await waiting, 'R1');
  t.equal(await mgr.withSession((s) => s.triesLeft()), 3);
  t.match(mgr.lastSession, { reader: 'R1', apdus: 3 });
  t.equal(svc.card.disconnected, 'reset', 'card reset on close');

  // service dies
  svc.up = false;
  await new Promise((r) => setTimeout(r, 150));
  t.equal(mgr.status().pcsc, 'down');
  t.same(mgr.status().readers, []);
  await t.rejects(
    mgr.withSession((s) => s.triesLeft()),
    { code: 'READER_PCSC_UNAVAILABLE' },
  );
  const calls = svc.establishCalls;
  await new Promise((r) => setTimeout(r, 400));
  t.ok(svc.establishCalls - calls <= 8, `backoff, not a busy loop (${svc.establishCalls - calls} attempts in 400 ms)`);
  // and comes back
  svc.up = true;
  const back = await mgr.waitForCard({ deadline: Date.now() + 2000 });
  t.equal(back, 'R1');
  t.equal(mgr.status().pcsc, 'up');
  t.equal(await mgr.withSession((s) => s.triesLeft()), 3, 'a check works again without a restart');
  // reader disappears and comes back
  const saved = svc.readers;
  svc.readers = [];
  await new Promise((r) => setTimeout(r, 120));
  t.same(mgr.status().readers, []);
  await t.rejects(
    mgr.withSession((s) => s.triesLeft()),
    { code: 'READER_NO_READER' },
  );
  svc.readers = saved;
  await mgr.waitForCard({ deadline: Date.now() + 2000 });
  t.ok(events.includes('reader:R1:false') && events.includes('card:R1:true') && events.includes('card:R1:false'));
  t.ok(isReaderError(new ReaderError('READER_NO_CARD', 'x'), 'READER_NO_CARD'));
});

t.test('manager: a wedged connect is a typed error in time, and the next session gets a fresh context', async (t) => {
  const svc = new FakeService();
  svc.readers[0]!.present = true;
  const mgr = new ReaderManager({ backend: svc, pollMs: 30, connectTimeoutMs: 100 });
  await mgr.start();
  t.teardown(() => mgr.stop());
  t.equal(await mgr.withSession((s) => s.triesLeft()), 3);
  const contexts = svc.establishCalls;
  svc.connectHangs = true;
  const t0 = Date.now();
  await t.rejects(
    mgr.withSession((s) => s.triesLeft()),
    { code: 'READER_BUSY' },
  );
  t.ok(Date.now() - t0 < 1000, 'within the connect limit, not forever');
  svc.connectHangs = false;
  t.equal(await mgr.withSession((s) => s.triesLeft()), 3, "the next patient's check works");
  t.equal(svc.establishCalls, contexts + 1, 'on a fresh context');

  // A transmit that timed out holds its context: the next session does not queue behind it.
  svc.fault = () => 'hang';
  const before = svc.establishCalls;
  await t.rejects(
    mgr.withSession((s) => s.triesLeft(), { apduTimeoutMs: 50 }),
    { code: 'READER_TIMEOUT' },
  );
  svc.fault = undefined;
  t.equal(await mgr.withSession((s) => s.triesLeft()), 3);
  t.equal(svc.establishCalls, before + 1, 'a fresh context after the timed-out transmit');
});

t.test(
  "manager: a context given up while the other slot's session uses it is closed only after that session",
  async (t) => {
    const svc = new FakeService();
    svc.readers = [
      { name: 'R1', state: 0x20, present: true },
      { name: 'R2', state: 0x20, present: true },
    ];
    const mgr = new ReaderManager({ backend: svc, pollMs: 30 });
    await mgr.start();
    t.teardown(() => mgr.stop());
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let running!: () => void;
    const started = new Promise<void>((r) => {
      running = r;
    });
    const other = mgr.withSession(
      async (s) => {
        running();
        await gate;
        return s.triesLeft();
      },
      { readerName: 'R2' },
    );
    await started;
    const closedBefore = svc.closed;
    svc.fault = () => 'late'; // answers after 150 ms, past this session's 50 ms
    await t.rejects(
      mgr.withSession((s) => s.triesLeft(), { readerName: 'R1', apduTimeoutMs: 50 }),
      { code: 'READER_TIMEOUT' },
    );
    svc.fault = undefined;
    await new Promise((r) => setTimeout(r, 250)); // the late transmit has ended
    t.equal(svc.closed, closedBefore, "not closed under the other slot's session");
    release();
    t.equal(await other, 3, "the other slot's session finished on it");
    t.equal(svc.closed, closedBefore + 1, 'closed once the last session on it ended');
    t.equal(
      await mgr.withSession((s) => s.triesLeft(), { readerName: 'R1' }),
      3,
      'and the next session runs on a fresh one',
    );
  },
);
