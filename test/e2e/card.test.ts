/**
 * The card check end to end: WebSocket client → gateway → real pcscd → the virtual My Number card,
 * and gateway → central simulator over mutual TLS. Fails (never skips) in CI without pcscd.
 */
import t from 'tap';
import { startHarness, SHARED_PKI_DIR, waitFor, type Harness } from '../helpers/gateway.js';
import { ensurePcscd } from '../helpers/pcscd.js';
import { VirtualCard, ensureCardProfiles, VPCD_BASE_PORT } from '../../src/sim/card/index.js';
import type { GatewayClient } from '../../src/client/index.js';

const SLOT = 0;
const READER = 'Virtual PCD 00 00';
let h: Harness;
let card: VirtualCard;

t.before(async () => {
  if (!(await ensurePcscd(t))) return;
  await ensureCardProfiles(SHARED_PKI_DIR);
  card = await VirtualCard.create({
    stateDir: SHARED_PKI_DIR,
    profile: 'normal',
    port: VPCD_BASE_PORT + SLOT,
    resetCounters: true,
  });
  h = await startHarness({ reader: { enabled: true, readerName: READER } });
});
t.teardown(async () => {
  await h?.close();
  await card?.close();
});

type Msg = Record<string, unknown>;
/** VERIFY (INS 20) commands that carry data, i.e. a PIN: hex longer than the 4-byte header. */
const verifiesWithPin = () => card.apduLog.filter((e) => e.command.slice(2, 4) === '20' && e.command.length > 8).length;

/** Runs one inquiry.card; `onPin` decides what to do at each pin.required. Collects every event. */
async function cardCheck(
  client: GatewayClient,
  mode: 'pin' | 'visual',
  onPin: (m: Msg, id: string) => void,
  extra: Msg = {},
) {
  const id = `card-${Math.random().toString(36).slice(2)}`;
  const events: Msg[] = [];
  const outcome = await client
    .request(
      { type: 'inquiry.card', id, mode, deadlineMs: 20000, ...extra },
      {
        onProgress: (m) => {
          events.push(m);
          if (m.type === 'pin.required') onPin(m, id);
        },
      },
    )
    .then(
      (r) => ({ ok: true as const, result: r.result as Msg }),
      (e: unknown) => ({ ok: false as const, error: e as { code: string; details: Msg; message: string } }),
    );
  return { events, outcome, id };
}

/** Swaps the card, as a patient would: out, then in; pcscd notices within its ~0.5 s poll. */
async function useProfile(profile: string): Promise<void> {
  await card.remove();
  await new Promise((r) => setTimeout(r, 1200));
  await card.setProfile(profile, true);
  await card.insert();
  await new Promise((r) => setTimeout(r, 1200));
  card.clearLog();
}

t.test('PIN mode: progress events in order, then a valid result', async (t) => {
  if (!h) return;
  await useProfile('normal');
  const client = await h.connect();
  const { events, outcome } = await cardCheck(
    client,
    'pin',
    (_m, id) => void client.request({ type: 'pin.submit', inquiryId: id, pin: '1234' }),
  );
  t.ok(outcome.ok, 'answered');
  if (!outcome.ok) return;
  t.match(outcome.result, { referenceClassification: '1', source: 'central', validity: '1', warnings: [] });
  t.equal((outcome.result.results as Msg[])[0]!.name, 'カード　一郎');
  const stages = events.map((e) => (e.type === 'inquiry.progress' ? e.stage : e.type));
  t.same(stages, ['waiting_for_card', 'card_inserted', 'certificate_read', 'pin.required', 'checking']);
  t.match(
    events.find((e) => e.type === 'pin.required'),
    { triesLeft: 3, confirmRequired: false },
  );
  t.equal(verifiesWithPin(), 1, 'exactly one VERIFY carrying a PIN');
  t.equal(card.forbiddenSelections().length, 0, 'the 券面事項 APs were never selected');
});

t.test('a wrong PIN: reported with the tries left, the client asked again, no VERIFY of its own', async (t) => {
  if (!h) return;
  await useProfile('normal');
  const client = await h.connect();
  let prompts = 0;
  const { events, outcome } = await cardCheck(client, 'pin', (_m, id) => {
    prompts++;
    if (prompts === 1) void client.request({ type: 'pin.submit', inquiryId: id, pin: '9999' });
    else void client.request({ type: 'inquiry.cancel', inquiryId: id });
  });
  t.notOk(outcome.ok);
  if (outcome.ok) return;
  t.equal(outcome.error.code, 'CANCELLED', 'the client stopped at the second prompt');
  t.match(
    events.filter((e) => e.type === 'pin.wrong' || e.type === 'pin.required'),
    [
      { type: 'pin.required', triesLeft: 3 },
      { type: 'pin.wrong', triesLeft: 2 },
      { type: 'pin.required', triesLeft: 2 },
    ],
  );
  t.equal(verifiesWithPin(), 1, 'one PIN typed, one VERIFY sent');
  t.equal(card.state().authTriesLeft, 2);
});

t.test('three wrong PINs block the card; the last try needs a confirmation first', async (t) => {
  if (!h) return;
  await useProfile('normal');
  const client = await h.connect();
  const log: string[] = [];
  const { events, outcome } = await cardCheck(client, 'pin', (m, id) => {
    const confirm = m.confirmRequired === true && log.includes('refused-once');
    if (m.confirmRequired === true && !confirm) log.push('refused-once');
    void client.request({ type: 'pin.submit', inquiryId: id, pin: '0000', confirmLastTry: confirm });
  });
  t.notOk(outcome.ok);
  if (outcome.ok) return;
  t.equal(outcome.error.code, 'CARD_PIN_BLOCKED');
  t.match(outcome.error.message, /municipal office/);
  t.match(
    events.filter((e) => e.type === 'pin.refused'),
    [{ reason: 'CARD_PIN_CONFIRM_REQUIRED' }],
    'the unconfirmed last try was refused without a VERIFY',
  );
  t.equal(
    events.filter((e) => e.type === 'pin.required' && e.confirmRequired === true).length,
    2,
    'asked twice at the last try',
  );
  t.equal(verifiesWithPin(), 3, 'three VERIFYs for three submitted PINs (the unconfirmed one sent nothing)');
  t.equal(card.state().authTriesLeft, 0);
});

t.test('a blocked card: refused before any VERIFY carrying a PIN', async (t) => {
  if (!h) return;
  await useProfile('blocked');
  const client = await h.connect();
  const { outcome, events } = await cardCheck(client, 'pin', () => t.fail('no PIN prompt for a blocked card'));
  t.notOk(outcome.ok);
  if (!outcome.ok) t.equal(outcome.error.code, 'CARD_PIN_BLOCKED');
  t.equal(events.filter((e) => e.type === 'pin.required').length, 0);
  t.equal(verifiesWithPin(), 0);
});

t.test('visual mode (資格確認限定型): certificate only, no PIN', async (t) => {
  if (!h) return;
  await useProfile('normal');
  const client = await h.connect();
  const { outcome } = await cardCheck(client, 'visual', () => t.fail('no PIN prompt in visual mode'));
  t.ok(outcome.ok);
  if (outcome.ok) t.equal(outcome.result.validity, '1');
  t.equal(card.apduLog.filter((e) => e.command.slice(2, 4) === '20').length, 0, 'no VERIFY at all');
});

t.test(
  'certificates: expired < 3 months works with a warning; older and revoked are refused with guidance',
  async (t) => {
    if (!h) return;
    const client = await h.connect();
    const submit = (_m: Msg, id: string) => void client.request({ type: 'pin.submit', inquiryId: id, pin: '1234' });

    await useProfile('expired-recent');
    const recent = await cardCheck(client, 'pin', submit);
    t.ok(recent.outcome.ok, 'still answered');
    if (recent.outcome.ok) {
      t.match(recent.outcome.result.warnings, [{ code: 'CARD_CERT_EXPIRED_GRACE', message: /renew/ }]);
      t.equal(recent.outcome.result.validity, '1');
      t.match(recent.outcome.result.notices, [/SIM-W-CERT-EXPIRED/], "central's notice is passed on as a notice");
    }

    await useProfile('expired-old');
    const old = await cardCheck(client, 'pin', () => t.fail('no PIN for a card that cannot be used'));
    t.notOk(old.outcome.ok);
    if (!old.outcome.ok) {
      t.equal(old.outcome.error.code, 'CARD_CERT_EXPIRED');
      t.match(old.outcome.error.message, /資格確認書/);
    }

    await useProfile('revoked');
    const revoked = await cardCheck(client, 'pin', submit);
    t.notOk(revoked.outcome.ok);
    if (!revoked.outcome.ok) {
      t.equal(revoked.outcome.error.code, 'CARD_CERT_REVOKED');
      t.match(revoked.outcome.error.message, /資格確認書/);
    }
  },
);

t.test('the card pulled while the patient types the PIN: a typed error, quickly', async (t) => {
  if (!h) return;
  await useProfile('normal');
  const client = await h.connect();
  const { outcome } = await cardCheck(client, 'pin', (_m, id) => {
    void card
      .remove()
      .then(() => new Promise((r) => setTimeout(r, 1500)))
      .then(() => client.request({ type: 'pin.submit', inquiryId: id, pin: '1234' }).catch(() => {}));
  });
  t.notOk(outcome.ok);
  if (!outcome.ok)
    t.ok(['READER_CARD_REMOVED', 'READER_NO_CARD'].includes(outcome.error.code), `code ${outcome.error.code}`);
  t.equal(card.state().authTriesLeft, 3, 'no try was spent');
  await card.insert();
});

t.test('no card before the deadline: DEADLINE_EXCEEDED on time', async (t) => {
  if (!h) return;
  await card.remove();
  const client = await h.connect();
  const started = Date.now();
  const err = await client
    .request({ type: 'inquiry.card', mode: 'pin', deadlineMs: 1500 })
    .catch((e: unknown) => e as { code: string });
  t.ok(
    ['DEADLINE_EXCEEDED', 'READER_TIMEOUT', 'READER_NO_CARD'].includes((err as { code: string }).code),
    `code ${(err as { code: string }).code}`,
  );
  t.ok(Date.now() - started < 1500 + 100, 'within the deadline + 100 ms');
  await card.insert();
});

t.test('a PIN for an inquiry that is not waiting, or from another connection, is refused', async (t) => {
  if (!h) return;
  const a = await h.connect();
  await t.rejects(a.request({ type: 'pin.submit', inquiryId: 'nobody', pin: '1234' }), { code: 'PIN_NOT_EXPECTED' });
  await t.rejects(
    a.request({ type: 'pin.submit', inquiryId: 'x', pin: '12345' }),
    { code: 'INVALID_MESSAGE' },
    'only 4 digits',
  );
});

t.test(
  'reader topic: a waiting-room display (events:read) sees the card go out and in, never its contents',
  async (t) => {
    if (!h) return;
    const display = await h.connect(h.clients.add('display', ['events:read']).token);
    const states: { pcsc: string; readers: { name: string; card: boolean }[] }[] = [];
    display.onEvent('reader', (e) => {
      if (e.event === 'reader.state') states.push(e.data as (typeof states)[number]);
    });
    await display.subscribe(['reader']);
    const cardIn = (): boolean | undefined => states.at(-1)?.readers.find((r) => r.name === READER)?.card;
    await waitFor(() => cardIn() === true, 'the current state: the card is in');
    await card.remove();
    await waitFor(() => cardIn() === false, 'card removed', 10_000);
    await card.insert();
    await waitFor(() => cardIn() === true, 'card inserted', 10_000);
    t.ok(
      states.every((s) => s.readers.every((r) => Object.keys(r).sort().join() === 'card,name')),
      'only the reader name and whether a card is in',
    );
    t.ok(states.every((s) => s.pcsc === 'up'));
  },
);

t.test('the PIN appears in no log line', async (t) => {
  if (!h) return;
  const text = h.logs.join('\n');
  t.ok(h.logs.length > 10);
  for (const pin of ['1234', '9999', '0000'])
    t.notOk(text.includes(`"${pin}"`) || text.includes(`:${pin}`), `${pin} not logged`);
});
