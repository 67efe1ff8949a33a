import t from 'tap';
import fc from 'fast-check';
import { createServer, type Socket } from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VpcdDeframer, frame } from '../../src/sim/card/vpcd.js';
import { VirtualCard, DEFAULT_ATR } from '../../src/sim/card/virtual-card.js';
import { startCardControl, cardControlClient } from '../../src/sim/card/control.js';
import { ensureCardProfiles } from '../../src/sim/card/profiles.js';
import { cardTestdir } from '../helpers/card-dir.js';

t.test('deframer re-frames split and merged TCP data', async (t) => {
  const msgs = [
    Buffer.from([0x04]),
    Buffer.from('00A4040C0AD392F000260100000001', 'hex'),
    Buffer.from([0x01]),
    Buffer.alloc(300, 7),
  ];
  const wire = Buffer.concat(msgs.map(frame));
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: wire.length }), { maxLength: 10 }), (cuts) => {
      const d = new VpcdDeframer();
      const points = [...new Set(cuts)].sort((a, b) => a - b);
      let prev = 0;
      const out = [];
      for (const p of [...points, wire.length]) {
        out.push(...d.push(wire.subarray(prev, p)));
        prev = p;
      }
      return (
        out.length === 4 &&
        out[0]!.type === 'control' &&
        (out[0] as { code: number }).code === 4 &&
        out[1]!.type === 'apdu' &&
        out[3]!.type === 'apdu' &&
        (out[3] as { apdu: Buffer }).apdu.equals(msgs[3]!) &&
        d.pending === 0
      );
    }),
  );
  t.pass('all splits');
});

// A fake vpcd server (what pcscd's driver does) to test the card without pcscd.
async function fakeVpcd() {
  const sockets: Socket[] = [];
  const server = createServer((s) => sockets.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const exchange = (s: Socket, payload: Buffer) =>
    new Promise<Buffer>((resolve) => {
      const d = new VpcdDeframer();
      const onData = (c: Buffer) => {
        const m = d.push(c)[0];
        if (m) {
          s.off('data', onData);
          resolve(m.type === 'apdu' ? m.apdu : Buffer.from([m.code]));
        }
      };
      s.on('data', onData);
      // send length and payload as two writes, like vpcd
      s.write(frame(payload).subarray(0, 2));
      s.write(payload);
    });
  return {
    server,
    port,
    sockets,
    exchange,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

t.test('virtual card over a fake vpcd: ATR, APDUs, log, power, removal, persisted counters', async (t) => {
  const dir = await cardTestdir(t);
  const v = await fakeVpcd();
  t.teardown(() => v.close());
  const card = await VirtualCard.create({
    stateDir: dir,
    profile: 'normal',
    host: '127.0.0.1',
    port: v.port,
    resetCounters: true,
  });
  t.teardown(() => card.close());
  const inserted = card.insert();
  while (v.sockets.length === 0) await new Promise((r) => setTimeout(r, 10));
  const s = v.sockets[0]!;
  t.same(await v.exchange(s, Buffer.from([0x04])), DEFAULT_ATR, 'ATR on 04');
  await inserted;
  t.equal(card.state().inserted, true);
  t.equal((await v.exchange(s, Buffer.from('00A4040C0AD392F000260100000001', 'hex'))).toString('hex'), '9000');
  t.equal((await v.exchange(s, Buffer.from('00A4020C020018', 'hex'))).toString('hex'), '9000');
  t.equal((await v.exchange(s, Buffer.from('00200080043030303030', 'hex').subarray(0, 9))).toString('hex'), '63c2');
  t.equal(card.state().authTriesLeft, 2);
  const persisted = JSON.parse(await readFile(join(dir, 'cards', 'normal.state.json'), 'utf8')) as {
    authTriesLeft: number;
  };
  t.equal(persisted.authTriesLeft, 2, 'counter on disk before the answer');
  // power off clears the selection
  s.write(frame(Buffer.from([0x00])));
  t.equal((await v.exchange(s, Buffer.from('00A4020C02000A', 'hex'))).toString('hex'), '6a82', 'no DF after power off');
  // forbidden selection is logged
  t.equal((await v.exchange(s, Buffer.from('00A4040C0AD3921000310001010408', 'hex'))).toString('hex'), '9000');
  t.equal(card.forbiddenSelections().length, 1);
  t.equal(card.apduLog.length, 5);
  t.match(card.apduLog[0], {
    slot: card.slot,
    command: '00A4040C0AD392F000260100000001',
    sw: '9000',
    forbidden: false,
  });
  // restart: the counter survives
  const removed = new Promise((r) => card.once('removed', r));
  await card.remove();
  await removed;
  t.equal(card.state().inserted, false);
  const again = await VirtualCard.create({ stateDir: dir, profile: 'normal', host: '127.0.0.1', port: v.port });
  t.equal(again.state().authTriesLeft, 2, 'retry counter persisted across restarts');
  await again.close();
});

t.test('card pulled mid-APDU (hook) closes the connection without an answer', async (t) => {
  const dir = await cardTestdir(t);
  const v = await fakeVpcd();
  t.teardown(() => v.close());
  const card = await VirtualCard.create({
    stateDir: dir,
    profile: 'normal',
    host: '127.0.0.1',
    port: v.port,
    autoReconnect: false,
  });
  t.teardown(() => card.close());
  const ins = card.insert();
  while (v.sockets.length === 0) await new Promise((r) => setTimeout(r, 10));
  const s = v.sockets[0]!;
  await v.exchange(s, Buffer.from([0x04]));
  await ins;
  card.removeOn((a) => a[1] === 0xb0);
  const closed = new Promise((r) => s.once('close', r));
  s.write(frame(Buffer.from('00B0000004', 'hex')));
  await closed;
  t.equal(card.state().inserted, false);
  t.equal(card.apduLog.at(-1)!.response, '', 'no answer');
});

t.test('control server: list, insert, remove, log over loopback JSON', async (t) => {
  const dir = await cardTestdir(t);
  const profiles = await ensureCardProfiles(dir);
  t.same(
    profiles.map((p) => p.name),
    ['normal', 'expired-recent', 'expired-old', 'revoked', 'blocked', 'misregistered', 'canary'],
  );
  t.same(
    profiles.map((p) => p.personId),
    ['C0000001', 'C0000002', 'C0000003', 'C0000004', 'C0000005', 'C0000006', 'C0000001'],
  );
  const v = await fakeVpcd();
  t.teardown(() => v.close());
  const card = await VirtualCard.create({ stateDir: dir, profile: 'normal', host: '127.0.0.1', port: v.port });
  t.teardown(() => card.close());
  const ctl = await startCardControl({ cards: [card], port: 0 });
  t.teardown(() => ctl.close());
  const c = cardControlClient(ctl.url);
  t.match(await c.list(), [{ profile: 'normal', inserted: false }]);
  const st = await c.insert(card.slot, 'blocked');
  t.match(st, { profile: 'blocked', inserted: true, authTriesLeft: 0 });
  t.same(await c.log(card.slot), []);
  t.match(await c.remove(card.slot), { inserted: false });
  await t.rejects(c.insert(99, 'normal'), /404/);
  await t.rejects(c.insert(card.slot, 'nope'), /500|unknown/);
  await t.rejects(startCardControl({ cards: [card], host: '0.0.0.0' }), /loopback/);
});
