import t, { type Test } from 'tap';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { FaultProxy, type LineMode } from '../../src/sim/line/index.js';

const now = (): number => performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Target {
  port: number;
  sockets: net.Socket[];
  accepted: number;
  close(): Promise<void>;
}

/** A plain TCP target; `onConn` scripts its side. Half-open allowed so tests control FIN. */
async function startTarget(t: Test, onConn: (s: net.Socket) => void): Promise<Target> {
  const sockets: net.Socket[] = [];
  const target: Target = { port: 0, sockets, accepted: 0, close: async () => {} };
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    target.accepted++;
    sockets.push(s);
    s.on('error', () => {});
    onConn(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  target.port = (server.address() as net.AddressInfo).port;
  target.close = () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  t.teardown(() => target.close());
  return target;
}

/** Echo; answers FIN with FIN. */
const echo = (s: net.Socket): void => {
  s.on('data', (d) => s.write(d));
  s.on('end', () => s.end());
};

async function startProxy(t: Test, target: Target, mode?: LineMode): Promise<FaultProxy> {
  const proxy = await FaultProxy.start({ targetHost: '127.0.0.1', targetPort: target.port, ...(mode ? { mode } : {}) });
  t.teardown(() => proxy.close());
  return proxy;
}

/** A client socket with everything it observed recorded. */
interface Probe {
  sock: net.Socket;
  chunks: Buffer[];
  data(): Buffer;
  ended: number | null; // time of 'end'
  closed: number | null;
  error: NodeJS.ErrnoException | null;
  lastDataAt: number | null;
}

function probe(port: number): Probe {
  const sock = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  const p: Probe = {
    sock,
    chunks: [],
    ended: null,
    closed: null,
    error: null,
    lastDataAt: null,
    data: () => Buffer.concat(p.chunks),
  };
  sock.on('data', (b: Buffer) => {
    p.chunks.push(b);
    p.lastDataAt = now();
  });
  sock.on('end', () => {
    p.ended = now();
  });
  sock.on('close', () => {
    p.closed = now();
  });
  sock.on('error', (e: NodeJS.ErrnoException) => {
    p.error = e;
  });
  return p;
}

async function connected(p: Probe): Promise<void> {
  if (!p.sock.connecting) return;
  await new Promise<void>((resolve, reject) => {
    p.sock.once('connect', resolve);
    p.sock.once('close', () => reject(p.error ?? new Error('closed before connect')));
  });
}

/** An event-based wait: the ceiling only decides how long a failure takes to show, so it is generous (load). */
async function waitFor(cond: () => boolean, what = 'condition'): Promise<void> {
  const end = now() + 20_000;
  while (!cond()) {
    if (now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Writes `msg` and waits until `expectLen` bytes more than before have arrived; returns the round trip. */
async function roundTrip(p: Probe, msg: string): Promise<number> {
  const before = p.data().length;
  const t0 = now();
  p.sock.write(msg);
  await waitFor(() => p.data().length >= before + msg.length, 'echo');
  return now() - t0;
}

t.test('up: transparent echo, half-close passed through, stats', async (t) => {
  const target = await startTarget(t, (s) => {
    s.on('data', (d) => s.write(d));
    s.on('end', () => s.end('bye')); // answers after the client half-closed
  });
  const proxy = await startProxy(t, target);
  t.match(proxy.url, /^127\.0\.0\.1:\d+$/);
  const opened: number[] = [];
  proxy.on('connection-open', ({ id }) => opened.push(id));
  const p = probe(proxy.port);
  await connected(p);
  await roundTrip(p, 'hello');
  t.equal(p.data().toString(), 'hello');
  t.same(proxy.stats(), {
    connectionsAccepted: 1,
    connectionsRefused: 0,
    bytesUp: 5,
    bytesDown: 5,
    activeConnections: 1,
    mode: 'up',
  });
  p.sock.end();
  await waitFor(() => p.ended !== null && p.closed !== null, 'end');
  t.equal(p.data().toString(), 'hellobye', 'data after half-close still delivered');
  t.equal(p.error, null);
  await waitFor(() => proxy.stats().activeConnections === 0, 'connection gone');
  t.same(opened, [1]);
  proxy.resetStats();
  t.same(proxy.stats(), {
    connectionsAccepted: 0,
    connectionsRefused: 0,
    bytesUp: 0,
    bytesDown: 0,
    activeConnections: 0,
    mode: 'up',
  });
});

t.test('up: unreachable target resets the client and reports upstream-error', async (t) => {
  const target = await startTarget(t, echo);
  await target.close(); // the port is now closed
  const proxy = await startProxy(t, target);
  const errs: string[] = [];
  proxy.on('upstream-error', (e) => errs.push(String(e.code)));
  const p = probe(proxy.port);
  await waitFor(() => p.closed !== null, 'client closed');
  t.same(errs, ['ECONNREFUSED']);
  t.equal(p.data().length, 0);
});

t.test('down: new connections fail fast, existing ones are destroyed, refusals counted', async (t) => {
  const target = await startTarget(t, echo);
  const proxy = await startProxy(t, target);

  const live = probe(proxy.port);
  await connected(live);
  await roundTrip(live, 'x');

  const t0 = now();
  proxy.setMode({ kind: 'down' });
  await waitFor(() => live.closed !== null, 'existing connection destroyed');
  t.ok(live.error, 'existing connection saw an error');
  t.match(live.error?.code, /^(ECONNRESET|EPIPE)$/);

  const p = probe(proxy.port);
  await waitFor(() => p.closed !== null, 'new connection refused');
  t.ok(now() - t0 < 1000, 'refusal is quick');
  t.match(p.error?.code, /^(ECONNRESET|ECONNREFUSED|EPIPE)$/);
  t.equal(p.data().length, 0);
  const s = proxy.stats();
  t.equal(s.connectionsRefused, 1);
  t.equal(s.connectionsAccepted, 1);
  t.equal(s.mode, 'down');
  t.equal(target.accepted, 1, 'the refused connection never reached the target');

  proxy.setMode({ kind: 'up' });
  const again = probe(proxy.port);
  await connected(again);
  await roundTrip(again, 'back');
  t.equal(again.data().toString(), 'back', 'line comes back');
  again.sock.destroy();
});

t.test('blackhole: accepted, never answered, socket kept open; also cuts an existing connection', async (t) => {
  const target = await startTarget(t, echo);
  const proxy = await startProxy(t, target);

  const live = probe(proxy.port);
  await connected(live);
  await roundTrip(live, 'before');

  proxy.setMode({ kind: 'blackhole' });
  live.sock.write('after');
  const fresh = probe(proxy.port);
  await connected(fresh);
  fresh.sock.write('ping');
  await sleep(300);

  t.equal(live.data().toString(), 'before', 'existing connection: nothing forwarded any more');
  t.equal(fresh.data().length, 0, 'new connection: no answer');
  for (const p of [live, fresh]) {
    t.equal(p.closed, null, 'socket still open');
    t.equal(p.ended, null, 'no FIN');
    t.equal(p.error, null, 'no error');
  }
  t.equal(target.accepted, 1, 'a blackholed connection never reaches the target');
  t.equal(proxy.stats().activeConnections, 2);
  t.equal(proxy.stats().bytesUp, 6, 'swallowed bytes are not counted as delivered');
  live.sock.destroy();
  fresh.sock.destroy();
  await waitFor(() => proxy.stats().activeConnections === 0, 'proxy notices the clients leaving');
});

t.test('latency: round trip at least twice the delay, order preserved with jitter', async (t) => {
  const target = await startTarget(t, echo);
  const proxy = await startProxy(t, target, { kind: 'latency', ms: 80 });
  const p = probe(proxy.port);
  await connected(p);
  const rtt = await roundTrip(p, 'ping');
  t.ok(rtt >= 160, `rtt ${rtt.toFixed(1)} ms >= 160 ms`);

  proxy.setMode({ kind: 'latency', ms: 2, jitterMs: 30 });
  const sent: Buffer[] = [];
  for (let i = 0; i < 40; i++) {
    const b = Buffer.from(`<${i}>`);
    sent.push(b);
    p.sock.write(b);
    await new Promise((r) => setImmediate(r)); // separate chunks on the wire
  }
  const all = Buffer.concat(sent);
  await waitFor(() => p.data().length >= 4 + all.length, 'jittered echo');
  t.equal(p.data().subarray(4).toString(), all.toString(), 'bytes intact and in order');
  p.sock.destroy();
});

t.test('bandwidth: 64 KiB takes at least about size/rate, bytes intact', async (t) => {
  const size = 64 * 1024;
  const rate = 128 * 1024; // → ≥ 0.5 s
  let received: Buffer[] = [];
  let doneAt = 0;
  const target = await startTarget(t, (s) => {
    s.on('data', (b: Buffer) => {
      received.push(b);
      if (Buffer.concat(received).length >= size) doneAt = now();
    });
  });
  const proxy = await startProxy(t, target, { kind: 'bandwidth', bytesPerSecond: rate });
  const p = probe(proxy.port);
  await connected(p);
  const payload = randomBytes(size);
  const t0 = now();
  p.sock.write(payload);
  await waitFor(() => doneAt > 0, 'transfer');
  const elapsed = doneAt - t0;
  const expected = (size / rate) * 1000;
  t.ok(elapsed >= expected * 0.9, `elapsed ${elapsed.toFixed(0)} ms >= ~${expected} ms`);
  t.ok(Buffer.concat(received).equals(payload), 'bytes intact');
  received = [];
  p.sock.destroy();
});

t.test('bandwidth: backpressure pauses the client instead of buffering in the proxy', async (t) => {
  const target = await startTarget(t, () => {});
  const proxy = await startProxy(t, target, { kind: 'bandwidth', bytesPerSecond: 64 * 1024 });
  const p = probe(proxy.port);
  await connected(p);
  const big = Buffer.alloc(32 * 1024 * 1024);
  p.sock.write(big);
  await sleep(300);
  // Loopback kernel buffers hold a few MiB; everything else must still be waiting in the client.
  t.ok(p.sock.writableLength > 16 * 1024 * 1024, `client still holds ${p.sock.writableLength} bytes`);
  p.sock.destroy();
});

t.test('reset-after: exactly N bytes, then a reset on both sides', async (t) => {
  const payload = randomBytes(10_000);
  let targetClosed = false;
  const target = await startTarget(t, (s) => {
    s.on('close', () => {
      targetClosed = true;
    });
    s.write(payload);
  });
  const proxy = await startProxy(t, target, { kind: 'reset-after', bytes: 1000 });
  const p = probe(proxy.port);
  await waitFor(() => p.closed !== null, 'client closed');
  t.equal(p.data().length, 1000, 'exactly N bytes');
  t.ok(p.data().equals(payload.subarray(0, 1000)), 'the first N bytes');
  t.equal(p.error?.code, 'ECONNRESET');
  t.equal(p.ended, null, 'no clean FIN');
  await waitFor(() => targetClosed, 'target side closed too');
  t.equal(proxy.stats().bytesDown, 1000);
});

t.test('truncate-after: exactly N bytes, then a clean end', async (t) => {
  const payload = randomBytes(10_000);
  let targetEnded = false;
  const target = await startTarget(t, (s) => {
    s.on('end', () => {
      targetEnded = true;
      s.end();
    });
    s.write(payload);
  });
  const proxy = await startProxy(t, target, { kind: 'truncate-after', bytes: 1234 });
  const p = probe(proxy.port);
  await waitFor(() => p.ended !== null, 'client end');
  t.equal(p.data().length, 1234, 'exactly N bytes');
  t.ok(p.data().equals(payload.subarray(0, 1234)));
  t.equal(p.error, null, 'no error');
  await waitFor(() => targetEnded, 'target got FIN');
  p.sock.end();
  await waitFor(() => proxy.stats().activeConnections === 0, 'connection gone');
});

t.test('fragment: many chunks each <= maxChunk, bytes intact, both directions', async (t) => {
  const down = randomBytes(2000);
  const upChunks: Buffer[] = [];
  const target = await startTarget(t, (s) => {
    s.on('data', (b: Buffer) => upChunks.push(b));
    s.write(down);
  });
  const proxy = await startProxy(t, target, { kind: 'fragment', maxChunk: 100, delayMs: 3 });
  // The pieces as the proxy wrote them: a reader starved of CPU takes several at once, so the
  // reads below show the cut only on an idle machine.
  const pieces = { up: [] as number[], down: [] as number[] };
  proxy.on('piece', (dir, n) => pieces[dir].push(n));
  const p = probe(proxy.port);
  // Sent at once, so it reaches the proxy while the proxy is still connecting to the target.
  const up = randomBytes(500);
  p.sock.write(up);
  await connected(p);
  await waitFor(() => p.data().length >= down.length, 'download');
  t.ok(p.data().equals(down), 'bytes intact');
  t.ok(
    pieces.down.length >= 20 && pieces.down.every((n) => n <= 100),
    `download written in ${pieces.down.length} pieces of at most ${Math.max(...pieces.down)} bytes`,
  );

  await waitFor(() => Buffer.concat(upChunks).length >= up.length, 'upload');
  t.ok(Buffer.concat(upChunks).equals(up));
  t.same(pieces.up, [100, 100, 100, 100, 100], 'upload fragmented from the first byte');

  // Without a delay the pieces leave as separate writes; a stream reader may still coalesce them,
  // so only integrity is asserted here.
  proxy.setMode({ kind: 'fragment', maxChunk: 7 });
  const b = randomBytes(700);
  t.ok((await roundTripViaTarget(target, p, b)).equals(b), 'intact with maxChunk 7 and no delay');
  p.sock.destroy();
});

/** The target writes `b` to the client; resolves with what the client received. */
async function roundTripViaTarget(target: Target, p: Probe, b: Buffer): Promise<Buffer> {
  const before = p.data().length;
  target.sockets.at(-1)?.write(b);
  await waitFor(() => p.data().length >= before + b.length, 'delivery');
  return p.data().subarray(before);
}

t.test('slow-close: the close is passed on no earlier than delayMs', async (t) => {
  let targetEndCalled = 0;
  let targetSawEnd = 0;
  const target = await startTarget(t, (s) => {
    s.on('data', () => {
      s.write('bye');
      targetEndCalled = now();
      s.end();
    });
    s.on('end', () => {
      targetSawEnd = now();
    });
  });
  const proxy = await startProxy(t, target, { kind: 'slow-close', delayMs: 250 });
  const p = probe(proxy.port);
  await connected(p);
  p.sock.write('hi');
  await waitFor(() => p.ended !== null, 'client end');
  t.equal(p.data().toString(), 'bye', 'data is not delayed');
  const held = (p.ended ?? 0) - targetEndCalled;
  t.ok(held >= 250, `server→client close held ${held.toFixed(0)} ms`);

  const clientEndCalled = now();
  p.sock.end();
  await waitFor(() => targetSawEnd > 0, 'target end');
  t.ok(
    targetSawEnd - clientEndCalled >= 250,
    `client→server close held ${(targetSawEnd - clientEndCalled).toFixed(0)} ms`,
  );
});

t.test('flap: connections alternate between working and refused', async (t) => {
  const target = await startTarget(t, echo);
  const proxy = await startProxy(t, target, { kind: 'flap', upMs: 120, downMs: 120 });
  const phases: string[] = [];
  proxy.on('flap', (ph) => phases.push(ph));
  const longLived = probe(proxy.port);
  await connected(longLived);

  const outcomes: Array<'ok' | 'fail'> = [];
  const t0 = now();
  while (now() - t0 < 720) {
    const p = probe(proxy.port);
    const ok = await Promise.race([
      (async () => {
        await connected(p);
        await roundTrip(p, 'f');
        return true;
      })().catch(() => false),
      sleep(100).then(() => false),
    ]);
    outcomes.push(ok ? 'ok' : 'fail');
    p.sock.destroy();
    await sleep(25);
  }
  const seq = outcomes.join(' ');
  t.match(seq, /ok.*fail.*ok/, `alternates: ${seq}`);
  t.ok(proxy.stats().connectionsRefused > 0, 'refusals counted');
  t.equal(proxy.stats().mode, 'flap');
  t.ok(longLived.closed !== null, 'a connection open when the line went down was destroyed');
  t.ok(phases.slice(0, 3).join() === 'down,up,down', `phases ${phases.join()}`);
});

t.test('mode switch mid-connection: latency applies to an existing connection, then up again', async (t) => {
  const target = await startTarget(t, echo);
  const proxy = await startProxy(t, target);
  const modes: string[] = [];
  proxy.on('mode', (m) => modes.push(m.kind));
  const p = probe(proxy.port);
  await connected(p);
  await roundTrip(p, 'a');
  proxy.setMode({ kind: 'latency', ms: 100 });
  const slow = await roundTrip(p, 'b');
  t.ok(slow >= 200, `rtt under latency ${slow.toFixed(0)} ms`);
  proxy.setMode({ kind: 'up' });
  await roundTrip(p, 'c');
  // reset-after counts from the switch: the next 2 bytes down pass, then the line resets.
  proxy.setMode({ kind: 'reset-after', bytes: 2 });
  p.sock.write('defg');
  await waitFor(() => p.closed !== null, 'reset');
  t.equal(p.data().toString(), 'abcde');
  t.equal(p.error?.code, 'ECONNRESET');
  t.same(modes, ['latency', 'up', 'reset-after']);
  t.throws(() => proxy.setMode({ kind: 'latency', ms: -5 }), { code: 'LINE_MODE_INVALID' });
  t.equal(proxy.mode().kind, 'reset-after', 'a rejected mode changes nothing');
});

t.test('close(): stops accepting, destroys live connections, leaves no handles', async (t) => {
  const baseline = process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP')).length;
  const target = await startTarget(t, echo);
  const proxy = await FaultProxy.start({
    targetHost: '127.0.0.1',
    targetPort: target.port,
    mode: { kind: 'latency', ms: 500 },
  });
  const p = probe(proxy.port);
  await connected(p);
  p.sock.write('queued behind the delay');
  await sleep(20);
  t.equal(proxy.stats().activeConnections, 1);
  await proxy.close();
  await proxy.close(); // idempotent
  await waitFor(() => p.ended !== null || p.closed !== null, 'client sees the close');
  t.equal(p.data().length, 0, 'queued data is dropped, not flushed');
  t.equal(proxy.stats().activeConnections, 0);
  p.sock.destroy();
  const after = probe(proxy.port);
  await waitFor(() => after.closed !== null, 'connect attempt settles');
  t.equal(after.error?.code, 'ECONNREFUSED', 'nothing listens any more');
  await target.close();
  await sleep(20);
  const left = process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP')).length;
  t.ok(left <= baseline, `TCP handles ${left} <= baseline ${baseline}`);
});
