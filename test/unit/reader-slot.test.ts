// Card sessions on one slot never disturb each other (issue 18 item 5). A fake PC/SC card that
// behaves as pcscd does when a handle is closed with SCARD_RESET_CARD: every other handle on the
// card meets "Card was reset." on its next command. The card model answers the APDUs.
import t from 'tap';
import {
  ReaderManager,
  isReaderError,
  mapPcscError,
  type PcscBackend,
  type PcscCard,
  type PcscContext,
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

/** One physical card shared by every handle connected to it. */
class SharedCard {
  readonly model = new CardModel({ dfs: buildDfs(material, { authTriesLeft: 3, signTriesLeft: 5 }) });
  readonly open = new Set<Handle>();
  resets = 0;
  /** the longest a transmit takes; `hang` makes the next one wait this long */
  delayMs = 2;
  hangNextMs = 0;
  overlaps = 0;
  private busy: Handle | undefined;

  async transmit(h: Handle, apdu: Buffer): Promise<Buffer> {
    if (h.wasReset) throw mapPcscError(new Error('Card was reset.'), 'card');
    if (this.busy && this.busy !== h) this.overlaps++;
    this.busy = h;
    const wait = this.hangNextMs || this.delayMs;
    this.hangNextMs = 0;
    await new Promise((r) => setTimeout(r, wait));
    if (this.busy === h) this.busy = undefined;
    if (h.wasReset) throw mapPcscError(new Error('Card was reset.'), 'card');
    return this.model.process(apdu).response;
  }

  reset(by: Handle): void {
    this.resets++;
    for (const other of this.open) if (other !== by) other.wasReset = true;
  }
}

class Handle implements PcscCard {
  wasReset = false;
  constructor(private readonly card: SharedCard) {
    card.open.add(this);
  }
  transmit(apdu: Buffer): Promise<Buffer> {
    return this.card.transmit(this, apdu);
  }
  async beginTransaction(): Promise<void> {}
  async endTransaction(): Promise<void> {}
  status() {
    return { present: true };
  }
  async disconnect(d: 'leave' | 'reset' = 'leave'): Promise<void> {
    if (d === 'reset') this.card.reset(this);
    this.card.open.delete(this);
  }
}

function backend(card: SharedCard): PcscBackend {
  return {
    async establish(): Promise<PcscContext> {
      return {
        listReaders: () => [{ name: 'R1', state: 0x20, present: true, atr: Buffer.from('3B00', 'hex') }],
        connect: async () => new Handle(card),
        waitForChange: async (_c, ms) => {
          await new Promise((r) => setTimeout(r, Math.min(ms, 30)));
          return 'timeout';
        },
        cancel: () => undefined,
        close: () => undefined,
      };
    },
  };
}

async function manager(card: SharedCard): Promise<ReaderManager> {
  const mgr = new ReaderManager({ backend: backend(card), pollMs: 30, apduTimeoutMs: 1000 });
  await mgr.start();
  return mgr;
}

t.test('two sessions at once on one slot: neither meets the reset of the other', async (t) => {
  const card = new SharedCard();
  const mgr = await manager(card);
  t.teardown(() => mgr.stop());
  const run = () => mgr.withSession((s) => s.readAuthCertificate(), { readerName: 'R1', deadline: Date.now() + 5000 });
  const results = await Promise.allSettled([run(), run(), run()]);
  t.same(
    results.map((r) => r.status),
    ['fulfilled', 'fulfilled', 'fulfilled'],
    'every session read the certificate',
  );
  t.equal(card.overlaps, 0, 'no two sessions ever had a command at the card together');
  t.equal(card.resets, 3, 'each session still reset the card at its end');
});

t.test('concurrent sessions with short deadlines: only BUSY or TIMEOUT, never a reset or a removal', async (t) => {
  const card = new SharedCard();
  card.delayMs = 15;
  const mgr = await manager(card);
  t.teardown(() => mgr.stop());
  const codes: string[] = [];
  const messages: string[] = [];
  const one = async (deadlineMs: number) => {
    try {
      await mgr.withSession((s) => s.readAuthCertificate(), { readerName: 'R1', deadline: Date.now() + deadlineMs });
      codes.push('ok');
    } catch (e) {
      codes.push(isReaderError(e) ? e.code : String(e));
      messages.push((e as Error).message);
    }
  };
  const runs: Promise<void>[] = [];
  for (let i = 0; i < 24; i++) {
    runs.push(one(i % 3 === 0 ? 60 : 400));
    await new Promise((r) => setTimeout(r, 10));
  }
  await Promise.all(runs);
  // A late transmit of a timed-out session is still released (reset) before the next one starts.
  await new Promise((r) => setTimeout(r, 300));
  await one(2000);
  t.ok(codes.includes('ok'), 'some sessions got through');
  t.same(
    codes.filter((c) => !['ok', 'READER_BUSY', 'READER_TIMEOUT'].includes(c)),
    [],
    `no CARD_RESET, CARD_REMOVED or IO (${[...new Set(codes)].join(', ')})`,
  );
  // (A transmit given up on may still be at the card when the next session starts: it is not
  // queued behind one that may never come back; its late release then leaves the card alone.)
  t.same(
    messages.filter((m) => /PC\/SC:/.test(m)),
    [],
    'no raw PC/SC text',
  );
  t.equal(codes.at(-1), 'ok', 'the reader works afterwards');
});

t.test('a PC/SC failure is a typed error with our own words; the driver text stays in the cause', async (t) => {
  const cases: [string, 'card' | 'connect' | 'context', string][] = [
    ['Card was reset.', 'card', 'READER_CARD_RESET'],
    ['Internal error.', 'card', 'READER_IO'],
    ['Card was removed.', 'card', 'READER_CARD_REMOVED'],
    ['Sharing violation.', 'connect', 'READER_BUSY'],
    ['Service not available.', 'context', 'READER_PCSC_UNAVAILABLE'],
  ];
  for (const [raw, op, code] of cases) {
    const e = mapPcscError(new Error(raw), op);
    t.equal(e.code, code, raw);
    t.notMatch(e.message, /PC\/SC:|\.$/, `${raw}: our own message (${e.message})`);
    t.notMatch(JSON.stringify(e.toJSON()), new RegExp(raw.replace('.', '\\.')), `${raw}: not in what the client sees`);
    t.equal((e.cause as Error).message, raw, 'kept as the cause for the log');
  }
});
