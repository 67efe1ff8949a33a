/**
 * The daemon as systemd runs it: a child process started by the real CLI (built JavaScript), with a
 * notification socket. It must say READY, feed the watchdog, and on SIGTERM answer what is in
 * flight before it exits 0.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CentralSim } from '../../src/sim/central/server.js';
import { ClientStore } from '../../src/api/tokens.js';
import { GatewayClient } from '../../src/client/index.js';
import { pkiFiles, sharedPki } from '../helpers/gateway.js';
import { BIN, exitOf, startDaemon } from '../helpers/daemon-process.js';

const LISTENER = fileURLToPath(new URL('../helpers/notify-listener.py', import.meta.url));

let central: CentralSim;
let dir: string;
t.before(async () => {
  central = await CentralSim.start({ pki: await sharedPki() });
  dir = mkdtempSync(join(tmpdir(), 'onshi-daemon-'));
});
t.teardown(async () => {
  await central.close();
  rmSync(dir, { recursive: true, force: true });
});

function writeConfig(name: string): { file: string; token: string } {
  const f = pkiFiles();
  const stateDir = join(dir, name);
  const file = join(dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      stateDir,
      api: { port: 0, shutdownGraceMs: 5000 },
      admin: { host: '127.0.0.1', port: 0 },
      health: { port: 0 },
      central: { url: central.url, caFile: f.caFile, certFile: f.certFile, keyFile: f.keyFile },
    }),
  );
  return { file, token: new ClientStore(stateDir).add('daemon-test').token };
}

t.test('SIGTERM: the in-flight request is answered, then the daemon exits 0', async (t) => {
  const { file, token } = writeConfig('drain');
  const d = startDaemon(file);
  const port = await d.ready;
  central.updateSettings({ latencyMs: 1000 });
  t.teardown(() => central.updateSettings({ latencyMs: 0 }));
  const client = await GatewayClient.connect(`ws://127.0.0.1:${port}/v1`, token);
  const pending = client.request({
    type: 'inquiry.numbers',
    query: { insurerNumber: '06139992', symbol: 'テスト', number: '12345', branch: '00', birthdate: '19800401' },
  });
  await new Promise((r) => setTimeout(r, 200));
  const exited = exitOf(d.child);
  d.child.kill('SIGTERM');
  const answer = await pending;
  t.equal(answer.type, 'inquiry.result', 'answered while stopping');
  t.equal((answer.result as { validity: string }).validity, '1');
  t.equal(await exited, 0, 'clean exit');
  t.ok(
    d.lines.some((l) => l.includes('"event":"stopped"')),
    'logged the stop',
  );
  await t.rejects(
    GatewayClient.connect(`ws://127.0.0.1:${port}/v1`, token),
    { code: 'CLIENT_CONNECT_FAILED' },
    'no longer listening',
  );
});

t.test('sd_notify: READY, WATCHDOG and STOPPING reach NOTIFY_SOCKET', async (t) => {
  const sock = join(dir, 'notify.sock');
  const listener = spawn('python3', [LISTENER, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    listener.kill();
  });
  const messages: string[] = [];
  const lines = createInterface({ input: listener.stdout! });
  await new Promise<void>((resolve) =>
    lines.on('line', (l) => {
      if (l === 'listening') resolve();
      else messages.push(l);
    }),
  );
  const { file } = writeConfig('notify');
  const d = startDaemon(file, { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '1000000' });
  await d.ready;
  const until = async (pred: () => boolean, ms: number): Promise<boolean> => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (pred()) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return pred();
  };
  t.ok(await until(() => messages.some((m) => m.includes('READY=1')), 3000), 'READY=1');
  t.ok(
    messages.find((m) => m.includes('READY=1'))?.includes(`MAINPID=${d.child.pid}`),
    'names the daemon as the main PID',
  );
  t.ok(
    await until(() => messages.filter((m) => m.includes('WATCHDOG=1')).length >= 2, 4000),
    'the watchdog is fed (at half of WATCHDOG_USEC)',
  );
  const exited = exitOf(d.child);
  d.child.kill('SIGTERM');
  t.equal(await exited, 0);
  t.ok(
    messages.some((m) => m.includes('STOPPING=1')),
    'STOPPING=1 on the way down',
  );
});

t.test('a bad config: the daemon names the key and why, and exits 1', async (t) => {
  const file = join(dir, 'bad.json');
  writeFileSync(file, JSON.stringify({ api: { port: 70000, colour: 'blue' } }));
  const child = spawn(process.execPath, [BIN, 'start', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  t.equal(await exitOf(child), 1);
  const err = (JSON.parse(stderr.trim()) as { error: { code: string; message: string } }).error;
  t.equal(err.code, 'CONFIG_INVALID');
  t.match(err.message, /api\.port must be <= 65535/);
  t.match(err.message, /api\.colour is not a known setting/);
  t.match(err.message, new RegExp(`from file ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
});
