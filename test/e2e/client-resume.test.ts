/**
 * The client library across a gateway restart: the real daemon process (built CLI) is stopped and
 * started again on the same port and state; the client reconnects by itself with backoff, says
 * hello again, restores its subscriptions, and events from the new process reach the same
 * handler. A request in flight at the stop is answered (drain) or rejected CLIENT_CLOSED, never lost.
 */
import t from 'tap';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CentralSim } from '../../src/sim/central/server.js';
import { ClientStore } from '../../src/api/tokens.js';
import { GatewayClient, type GatewayEvent, type ReconnectInfo } from '../../src/client/index.js';
import { pkiFiles, sharedPki, waitFor } from '../helpers/gateway.js';
import { exitOf, startDaemon } from '../helpers/daemon-process.js';

let central: CentralSim;
let dir: string;
t.before(async () => {
  central = await CentralSim.start({ pki: await sharedPki() });
  dir = mkdtempSync(join(tmpdir(), 'onshi-resume-'));
});
t.teardown(async () => {
  await central.close();
  rmSync(dir, { recursive: true, force: true });
});

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

function daemon(configFile: string): { child: ChildProcess; ready: Promise<number>; exited: Promise<number | null> } {
  const d = startDaemon(configFile);
  return { ...d, exited: exitOf(d.child) };
}

t.test('after the gateway restarts, the client reconnects and its subscriptions deliver again', async (t) => {
  const port = await freePort();
  const f = pkiFiles();
  const stateDir = join(dir, 'state');
  const configFile = join(dir, 'config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      stateDir,
      api: { port, shutdownGraceMs: 2000 },
      outage: { probeIntervalMs: 1000, failureThreshold: 1 },
      central: { url: central.url, caFile: f.caFile, certFile: f.certFile, keyFile: f.keyFile },
    }),
  );
  const { token } = new ClientStore(stateDir).add('resume-test', ['inquiry']);

  let d = daemon(configFile);
  await d.ready;
  const client = await GatewayClient.connect(`ws://127.0.0.1:${port}/v1`, token, {
    reconnect: { baseMs: 100, capMs: 400 },
    software: 'resume-test',
  });
  t.teardown(() => client.close());
  const lineEvents: GatewayEvent[] = [];
  client.onEvent('line', (e) => lineEvents.push(e));
  const reconnects: ReconnectInfo[] = [];
  client.on('reconnecting', (i) => reconnects.push(i));
  const closes: number[] = [];
  client.on('close', (code) => closes.push(code));
  let resubscribed: string[] | undefined;
  client.on('resubscribed', (topics) => {
    resubscribed = topics;
  });

  t.same(await client.subscribe(['line', 'reader']), ['line', 'reader']);
  await waitFor(() => lineEvents.length === 1, 'the current line state after subscribe');
  const firstPid = d.child.pid;

  // Stop the daemon (SIGTERM: drain, close 1001) and keep it down for a few reconnect attempts.
  d.child.kill('SIGTERM');
  t.equal(await d.exited, 0, 'the first daemon stopped cleanly');
  await waitFor(() => closes.length === 1, 'the client saw the close');
  t.equal(closes[0], 1001, 'going away');
  t.notOk(client.connected);
  await t.rejects(
    client.request({ type: 'ping' }),
    { code: 'CLIENT_CLOSED', retryable: true },
    'a request while down is refused at once, typed',
  );
  await waitFor(() => reconnects.length >= 3, 'several reconnect attempts while the gateway is down', 10_000);
  t.ok(
    reconnects.every((r) => r.delayMs >= 50 && r.delayMs <= 400),
    `backoff within the cap: ${reconnects.map((r) => r.delayMs).join(', ')} ms`,
  );

  d = daemon(configFile);
  t.teardown(async () => {
    if (d.child.exitCode === null) {
      d.child.kill('SIGTERM');
      await d.exited;
    }
  });
  await d.ready;
  t.not(d.child.pid, firstPid, 'a new gateway process');
  await client.waitConnected();
  await waitFor(() => resubscribed !== undefined, 'resubscribed');
  t.same(resubscribed, ['line', 'reader'], 'the same topics, without the application asking');
  t.same(client.session?.scopes, ['inquiry'], 'hello again on the new connection');
  await waitFor(() => lineEvents.length === 2, 'the new process delivers the line state to the same handler');
  t.equal(lineEvents[1]!.event, 'line.state');
  t.ok(lineEvents[1]!.seq <= lineEvents[0]!.seq + 5, 'seq started again with the new process');
  t.equal((await client.request({ type: 'ping' })).type, 'pong', 'requests work again');

  // A live event from the new process, not just the retained state: the line goes down.
  await central.close();
  await waitFor(
    () => lineEvents.some((e, i) => i >= 2 && (e.data as { state: string }).state !== 'up'),
    'a line change published by the new process arrives',
    30_000,
  );
  t.pass('a live line.state from the new process reached the resumed subscription');
  central = await CentralSim.start({ pki: await sharedPki() });
});
