// The kiosk flow over a stand-in of the API's handler table: the screens carry no personal data,
// the consents chosen after the PIN reach the check, a lifted card ends the flow at once, and the
// answer goes to the staff desk only.
import t, { type Test } from 'tap';
import type { HandlerTable } from '../../src/api/handlers.js';
import type { CardResult } from '../../src/checks/card.js';
import type { RequestContext } from '../../src/api/ws-server.js';
import { ClientStore } from '../../src/api/tokens.js';
import type { ConsentFlags } from '../../src/checks/counter-advice.js';
import { OnshiError } from '../../src/core/errors.js';
import { KioskDesk } from '../../src/kiosk/desk.js';
import { KioskFlows, type Screen } from '../../src/kiosk/flow.js';
import { EventHub } from '../../src/protocol/events.js';
import { silentLogger } from '../helpers/logger.js';

const READER = 'Virtual PCD 00 00';

function harness(t: Test, o: { idleMs?: number } = {}) {
  const clients = new ClientStore(t.testdir());
  const desk = new KioskDesk(clients);
  const events = new EventHub();
  const seen: { consents?: ConsentFlags; pins: string[]; readerName?: string } = { pins: [] };
  let pinWaiter: ((p: string) => void) | undefined;
  const handlers: Pick<HandlerTable, 'inquiry.card' | 'pin.submit'> = {
    'inquiry.card': async (req, ctx: RequestContext) => {
      seen.readerName = req.readerName;
      ctx.progress({ type: 'inquiry.progress', stage: 'card_inserted' });
      // 資格確認限定型: staff have compared the face; no PIN
      for (let tries = 3; req.mode === 'pin'; tries--) {
        ctx.progress({ type: 'pin.required', triesLeft: tries, confirmRequired: tries === 1 });
        const pin = await new Promise<string>((resolve, reject) => {
          pinWaiter = resolve;
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
        });
        if (pin === '1234') break;
        ctx.progress({ type: 'pin.wrong', triesLeft: tries - 1 });
      }
      seen.consents = await ctx.askConsents!(ctx.signal);
      return {
        type: 'inquiry.result',
        result: {
          results: [{ name: '山田 太郎', birthdate: '19800101' }],
          validity: '1',
          validityLabel: '有効',
          warnings: [],
          notices: [],
          // like the real check: every field goes to central, "0" or "1"; requested holds the choice
          consent: {
            sentToCentral: ['medication', 'healthCheck', 'treatment', 'surgery', 'limit'],
            requested: { healthCheck: false, treatment: false, surgery: false, ...seen.consents },
          },
        } as unknown as CardResult, // only what the staff view reads
      };
    },
    'pin.submit': async (req) => {
      seen.pins.push(req.pin);
      pinWaiter?.(req.pin);
      return { type: 'pin.accepted', inquiryId: req.inquiryId };
    },
  };
  const flows = new KioskFlows({ handlers, desk, events, logger: silentLogger(), endScreenMs: 60_000, ...o });
  flows.start();
  t.teardown(() => flows.stop());
  const { client } = desk.pairing.redeem(desk.pairing.issue(READER, 'tablet').code);
  const screens: Screen[] = [];
  flows.attach(client, (s) => screens.push(s));
  const until = async (name: Screen['screen']): Promise<Screen> => {
    for (let i = 0; i < 200; i++) {
      const s = screens.at(-1);
      if (s?.screen === name) return s;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`never reached ${name}: ${JSON.stringify(screens.at(-1))}`);
  };
  const card = (present: boolean) =>
    events.publish('reader', 'reader.state', { pcsc: 'up', readers: [{ name: READER, card: present }] });
  return { flows, desk, client, screens, seen, until, card };
}

t.test('card → wrong PIN → right PIN → consents → done; the answer reaches staff only', async (t) => {
  const h = harness(t);
  h.card(true); // putting the card down starts the check
  t.match(await h.until('pin'), { triesLeft: 3, wrong: false });
  t.equal(h.seen.readerName, READER, 'the check runs on the kiosk’s own reader');
  await h.flows.pin(h.client, '9999', false);
  t.match(await h.until('pin'), { triesLeft: 2, wrong: true });
  await h.flows.pin(h.client, '1234', false);
  await h.until('consents');
  h.flows.consents(h.client, { medication: true, limit: true });
  await h.until('done');
  t.same(h.seen.pins, ['9999', '1234']);
  t.same(h.seen.consents, { medication: true, limit: true }, 'the chosen consents reach the check');
  t.notMatch(JSON.stringify(h.screens), /山田|19800101|有効/, 'no screen carries the answer');
  t.match(h.desk.recent()[0], { patient: '山田 太郎', validity: '有効', consentsSent: ['medication', 'limit'] });
});

t.test('a card lifted mid-flow ends it at once', async (t) => {
  const h = harness(t);
  h.card(true);
  await h.until('pin');
  h.card(false);
  t.match(await h.until('error'), { code: 'KIOSK_CARD_REMOVED' });
  await new Promise((r) => setTimeout(r, 20)); // the check's own end is recorded after its abort
  t.match(h.desk.recent()[0], { outcome: 'cancelled', code: 'KIOSK_CARD_REMOVED' });
  await t.rejects(h.flows.pin(h.client, '1234', false), { code: 'KIOSK_NOT_ASKING' });
});

t.test('visual mode: the kiosk waits for staff to confirm the face, then the card, no PIN', async (t) => {
  const h = harness(t);
  h.flows.begin(h.client, 'visual', 'x');
  await h.until('face');
  t.match(h.desk.facesWaiting(), [{ kioskId: h.client.id, kiosk: 'tablet', reader: READER }], 'staff see it waiting');
  t.equal(h.seen.readerName, undefined, 'nothing is read before staff confirm');
  h.card(true); // the card put down while staff look starts no PIN check
  await new Promise((r) => setTimeout(r, 20));
  t.equal(h.screens.at(-1)?.screen, 'face');
  h.desk.confirmFace(h.client.id);
  await h.until('consents');
  const after = h.screens.slice(h.screens.findIndex((s) => s.screen === 'face')).map((s) => JSON.stringify(s));
  t.same(
    after.slice(0, 3),
    ['{"screen":"face"}', '{"screen":"card","visual":true}', '{"screen":"reading"}'],
    'the face confirmed: the card next',
  );
  t.same(h.desk.facesWaiting(), []);
  h.flows.consents(h.client, { healthCheck: true });
  await h.until('done');
  t.same(h.seen.pins, [], 'no PIN asked');
  t.match(h.desk.recent()[0], { mode: 'visual', outcome: 'answered', consentsSent: ['healthCheck'] });
  t.throws(() => h.desk.confirmFace(h.client.id), { code: 'KIOSK_NOT_WAITING' });
});

t.test('visual mode: a face wait cancelled leaves nothing for staff to confirm', async (t) => {
  const h = harness(t);
  h.flows.begin(h.client, 'visual', 'x');
  await h.until('face');
  h.flows.cancel(h.client);
  t.same(h.desk.facesWaiting(), []);
  t.equal(h.screens.at(-1)?.screen, 'card');
});

t.test('no touch for the idle time: the check ends and the kiosk shows the first screen', async (t) => {
  const h = harness(t, { idleMs: 50 });
  h.card(true);
  await h.until('pin');
  t.same(await h.until('card'), { screen: 'card' }, 'back to the first screen, no error shown');
  await new Promise((r) => setTimeout(r, 20));
  t.match(h.desk.recent()[0], { outcome: 'cancelled', code: 'KIOSK_IDLE' });
  await t.rejects(h.flows.pin(h.client, '1234', false), { code: 'KIOSK_NOT_ASKING' });
  t.same(h.seen.pins, []);
});

t.test('only a kiosk token drives a kiosk', async (t) => {
  const h = harness(t);
  const other = new ClientStore(t.testdir()).add('rc', ['full']).client;
  t.throws(() => h.flows.begin(other, 'pin', 'x'), new OnshiError('KIOSK_SCOPE', ''));
});
