/**
 * A card check through a line outage, end to end: real pcscd and the virtual card, the real
 * gateway, the central simulator behind the fault proxy. With the line down the card still proves
 * its PIN (it signs the gateway's own nonce), the certificate is checked against the JPKI CA and
 * the synced revocation list, the answer comes from the cache, and the check is replayed with the
 * offline proof once the line is back; a changed outcome becomes a reconciliation item.
 */
import t from 'tap';
import { ensurePcscd } from '../helpers/pcscd.js';
import { SHARED_PKI_DIR, waitFor } from '../helpers/gateway.js';
import { OutageHarness } from '../helpers/outage.js';
import { VirtualCard, ensureCardProfiles, VPCD_BASE_PORT } from '../../src/sim/card/index.js';
import { todayJst } from '../../src/oqs/dates.js';

const READER = 'Virtual PCD 00 00';
type Msg = Record<string, unknown>;
let h: OutageHarness | undefined;
let card: VirtualCard | undefined;
const events: Msg[] = [];

t.before(async () => {
  if (!(await ensurePcscd(t))) return;
  await ensureCardProfiles(SHARED_PKI_DIR);
  card = await VirtualCard.create({
    stateDir: SHARED_PKI_DIR,
    profile: 'normal',
    port: VPCD_BASE_PORT,
    resetCounters: true,
  });
  await card.insert();
  h = await OutageHarness.start({ failureThreshold: 1 }, { reader: { enabled: true, readerName: READER } });
  h.client.on('message', (m: Msg) => {
    if (m.type === 'event') events.push(m);
  });
  await h.client.request({ type: 'subscribe', topics: ['line', 'outbox', 'reconciliation'] });
  await waitFor(() => h!.gateway.store.revocation.age() !== undefined, 'the revocation list fetched at start', 10_000);
});
t.teardown(async () => {
  await h?.close();
  await card?.close();
});

async function useProfile(profile: string): Promise<void> {
  await card!.remove();
  await new Promise((r) => setTimeout(r, 1200));
  await card!.setProfile(profile, true);
  await card!.insert();
  await new Promise((r) => setTimeout(r, 1200));
  card!.clearLog();
}

async function pinCheck(pin = '1234') {
  const id = `card-${Math.random().toString(36).slice(2)}`;
  const progress: Msg[] = [];
  const outcome = await h!.client
    .request(
      { type: 'inquiry.card', id, mode: 'pin', deadlineMs: 20_000 },
      {
        onProgress: (m) => {
          progress.push(m);
          if (m.type === 'pin.required') void h!.client.request({ type: 'pin.submit', inquiryId: id, pin });
        },
      },
    )
    .then(
      (r) => ({ ok: true as const, result: r.result as Msg }),
      (e: unknown) => ({ ok: false as const, error: e as { code: string; message: string } }),
    );
  return { id, progress, outcome };
}

const verifiesWithPin = (): number =>
  card!.apduLog.filter((e) => e.command.slice(2, 4) === '20' && e.command.length > 8).length;

t.test('line up: a card check is answered by central and cached', async (t) => {
  if (!h) return;
  await useProfile('normal');
  const { outcome } = await pinCheck();
  t.ok(outcome.ok, 'answered');
  if (!outcome.ok) return;
  t.match(outcome.result, { source: 'central', validity: '1' });
});

t.test(
  'line down: the PIN is proved locally and the answer comes from the cache, queued for re-verification',
  async (t) => {
    if (!h) return;
    await useProfile('normal');
    h.setLine({ kind: 'down' });
    const { progress, outcome } = await pinCheck();
    t.ok(outcome.ok, outcome.ok ? 'answered' : `error ${outcome.error.code}`);
    if (!outcome.ok) return;
    t.match(outcome.result, {
      referenceClassification: '1',
      source: 'cache',
      validity: '1',
      recheck: { queued: true },
    });
    t.ok(
      typeof outcome.result.verifiedAt === 'string' &&
        outcome.result.verifiedAt < (outcome.result.answeredAt as string),
      'with when central confirmed it',
    );
    t.equal(((outcome.result.results as Msg[])[0] as Msg).name, 'カード　一郎');
    t.ok(
      progress.some((p) => p.stage === 'checking_offline'),
      'the client was told the check is offline',
    );
    t.equal(verifiesWithPin(), 1, 'exactly one VERIFY with the PIN');
    t.ok(
      card!.apduLog.some((e) => e.command.toLowerCase().startsWith('802a0080')),
      'the card signed (our nonce: central was not asked for a challenge)',
    );
    t.equal(card!.forbiddenSelections().length, 0, 'the 券面事項 APs were never selected');
  },
);

t.test('line down, wrong PIN: reported with the tries left, exactly as online', async (t) => {
  if (!h) return;
  await useProfile('normal');
  let prompts = 0;
  const id = `card-${Math.random().toString(36).slice(2)}`;
  const progress: Msg[] = [];
  const err = await h.client
    .request(
      { type: 'inquiry.card', id, mode: 'pin', deadlineMs: 20_000 },
      {
        onProgress: (m) => {
          progress.push(m);
          if (m.type !== 'pin.required') return;
          if (++prompts === 1) void h!.client.request({ type: 'pin.submit', inquiryId: id, pin: '9999' });
          else void h!.client.request({ type: 'inquiry.cancel', inquiryId: id });
        },
      },
    )
    .catch((e: unknown) => e as { code: string });
  t.equal((err as { code: string }).code, 'CANCELLED');
  t.match(
    progress.find((p) => p.type === 'pin.wrong'),
    { triesLeft: 2 },
  );
  t.equal(verifiesWithPin(), 1, 'one VERIFY for one pin.submit; no retry of its own');
});

t.test('line down, revoked card: refused from the synced revocation list before any PIN', async (t) => {
  if (!h) return;
  await useProfile('revoked');
  const { progress, outcome } = await pinCheck();
  t.notOk(outcome.ok);
  if (outcome.ok) return;
  t.equal(outcome.error.code, 'CARD_CERT_REVOKED');
  t.notOk(
    progress.some((p) => p.type === 'pin.required'),
    'the patient was not asked for a PIN',
  );
  t.equal(verifiesWithPin(), 0);
});

t.test('line back: the card check is replayed with the offline proof; a changed outcome is reconciled', async (t) => {
  if (!h) return;
  // While the line was down, central learned that C0000001 left the insurer.
  const person = h.central.people.find((p) => p.id === 'C0000001')!;
  person.qualifications[0]!.disqualificationDate = todayJst();
  t.teardown(() => {
    delete person.qualifications[0]!.disqualificationDate;
  });
  const cardSearchesBefore = h.central.stats.cardSearches;
  h.setLine({ kind: 'up' });
  await h.waitDrained(30_000);
  t.ok(h.central.stats.cardSearches > cardSearchesBefore, 'central re-verified the card');
  t.equal(Object.values(h.central.stats.effectsByKey).filter((n) => n > 1).length, 0, 'once');
  // Events travel on the socket after the store changed: wait for them rather than race them.
  await waitFor(
    () => events.some((e) => e.event === 'reconciliation.added') && events.some((e) => e.event === 'outbox.replayed'),
    'the replay events',
    5000,
  ).catch(() => {});
  const replayed = events.find((e) => e.event === 'outbox.replayed' && (e.data as Msg).kind === 'card');
  t.ok(replayed, 'subscribers were told of the replay');
  const added = events.find((e) => e.event === 'reconciliation.added');
  t.ok(added, 'and of the changed outcome');
  t.match((added?.data as Msg)?.item, { changedFields: ['validity'] });
  const list = await h.client.request({ type: 'reconciliation.list' });
  t.equal(list.items.length, 1, 'one item to handle');
  const item = list.items[0]!;
  t.match(item.before, { told: { source: 'cache', validity: '1' } });
  t.match(item.after, { source: 'central' });
  t.not((item.after as Msg).validity, '1', 'central now says not valid');
  await h.client.request({ type: 'reconciliation.handle', itemId: item.id });
  const open = (await h.client.request({ type: 'reconciliation.list' })) as { items: Msg[] };
  t.equal(open.items.length, 0, 'handled items leave the open list');
  const all = (await h.client.request({ type: 'reconciliation.list', includeHandled: true })) as { items: Msg[] };
  t.ok(all.items[0]!.handledAt, 'and are kept as handled');
});

t.test('line events: down then up were pushed to the subscriber', async (t) => {
  if (!h) return;
  const states = events.filter((e) => e.event === 'line.state').map((e) => (e.data as Msg).state);
  t.ok(states.includes('down'), `saw down (${states.join(' → ')})`);
  t.equal(states.at(-1), 'up');
});
