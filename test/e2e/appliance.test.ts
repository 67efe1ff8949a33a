/**
 * The appliance's own surfaces, through the daemon as systemd runs it (a child process started by
 * the real CLI): loopback health, readiness, Prometheus metrics and /status; `onshi status` reading
 * them; the audit chain filled by real checks and token changes; brute-force limits on the API;
 * wss:// with the gateway's own certificate and the refusal of a LAN API without TLS; retention.
 */
import t from 'tap';
import Database from 'better-sqlite3';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { WebSocket } from 'ws';
import { GatewayStore } from '../../src/cache/index.js';
import { ClientStore } from '../../src/api/tokens.js';
import { GatewayClient } from '../../src/client/index.js';
import { CentralSim } from '../../src/sim/central/server.js';
import { issueCertificate } from '../../src/sim/pki.js';
import { startDaemon as startDaemonProcess, type ReadyInfo } from '../helpers/daemon-process.js';
import { pkiFiles, sharedPki } from '../helpers/gateway.js';
import { upgradeStatus } from '../helpers/ws-upgrade.js';

const BIN = fileURLToPath(new URL('../../bin/onshi.js', import.meta.url));
const run = promisify(execFile);
const QUERY = { insurerNumber: '06139992', symbol: 'テスト', number: '12345', branch: '00', birthdate: '19800401' };
t.setTimeout(180_000);

let central: CentralSim;
let dir: string;
t.before(async () => {
  central = await CentralSim.start({ pki: await sharedPki() });
  dir = mkdtempSync(join(tmpdir(), 'onshi-appliance-'));
});
t.teardown(async () => {
  await central.close();
  rmSync(dir, { recursive: true, force: true });
});

function writeConfig(
  name: string,
  extra: Record<string, unknown> = {},
): { file: string; stateDir: string; token: string } {
  const f = pkiFiles();
  const stateDir = join(dir, name);
  const file = join(dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      stateDir,
      reader: { enabled: false },
      api: { port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      health: { port: 0 },
      central: { url: central.url, caFile: f.caFile, certFile: f.certFile, keyFile: f.keyFile },
      ...extra,
    }),
  );
  return { file, stateDir, token: new ClientStore(stateDir).add('appliance-test').token };
}

function startDaemon(file: string): { child: ChildProcess; ready: Promise<ReadyInfo>; lines: string[] } {
  const d = startDaemonProcess(file);
  return { child: d.child, ready: d.info, lines: d.lines };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    })
      .on('error', reject)
      .end();
  });
}

/** The audit chain's clear columns, read straight from the database file (read-only, as an auditor would). */
function auditRows(stateDir: string): {
  kind: string;
  actor: string;
  action: string;
  outcome: string | null;
  source: string | null;
  mode: string | null;
  personal: Buffer | null;
}[] {
  const db = new Database(join(stateDir, 'gateway.db'), { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare('SELECT kind, actor, action, outcome, source, mode, personal FROM audit ORDER BY seq')
      .all() as never;
  } finally {
    db.close();
  }
}

async function until<T>(f: () => T | undefined | false, ms = 8000): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) return undefined;
    await new Promise((r) => setTimeout(r, 100));
  }
}

t.test('health, metrics and status on loopback; `onshi status` reads them', async (t) => {
  const { file, stateDir, token } = writeConfig('health');
  const d = startDaemon(file);
  t.teardown(() => stop(d.child));
  const r = await d.ready;
  t.ok(r.healthPort && r.adminPort, 'the daemon serves health and the admin page');
  t.equal((await get(r.healthPort!, '/healthz')).status, 200);
  const readyz = await get(r.healthPort!, '/readyz');
  t.equal(readyz.status, 200, `ready: ${readyz.body}`);

  const client = await GatewayClient.connect(`ws://127.0.0.1:${r.wsPort}/v1`, token);
  t.teardown(() => client.close());
  await client.request({ type: 'inquiry.numbers', query: QUERY });
  await client.request({ type: 'inquiry.numbers', query: { ...QUERY, birthdate: '19800402' } });
  const metrics = (await get(r.healthPort!, '/metrics')).body;
  t.match(
    metrics,
    /onshi_checks_total\{kind="numbers",outcome="ok",source="central"\} 2\n/,
    'checks counted by kind, outcome and source',
  );
  t.match(metrics, /onshi_check_duration_seconds_count\{kind="numbers",source="central"\} 2\n/, 'latency histogram');
  t.match(metrics, /onshi_link_state\{state="up"\} 1\n/);
  t.match(metrics, /onshi_outbox_depth 0\n/);
  // The answer does not wait for its cache write (it shares a commit with the next ones): the gauge
  // follows within moments, so wait for it with a ceiling rather than read it once.
  let cached = metrics;
  for (const end = Date.now() + 10_000; !/onshi_cache_entries [12]\n/.test(cached) && Date.now() < end; ) {
    await new Promise((res) => setTimeout(res, 100));
    cached = (await get(r.healthPort!, '/metrics')).body;
  }
  t.match(cached, /onshi_cache_entries [12]\n/, 'the cache size');
  t.match(metrics, /onshi_event_loop_lag_p99_seconds \d/);
  t.match(metrics, /onshi_api_connections 1\n/);

  const status = JSON.parse((await get(r.healthPort!, '/status')).body) as {
    ready: boolean;
    line: { state: string };
    tls: { fingerprint: string };
    certificates: { name: string }[];
    clock: { skewMs?: number };
    outbox: { depth: number; max: number };
  };
  t.equal(status.line.state, 'up');
  t.equal(status.outbox.max, 10000, 'the outage figures are in the same snapshot');
  t.ok(
    status.clock.skewMs !== undefined && Math.abs(status.clock.skewMs) < 5000,
    "the clock is compared with central's Date header",
  );
  t.same(status.certificates.map((c) => c.name).sort(), ['central-ca', 'central-client']);
  const cert = new X509Certificate(readFileSync(join(stateDir, 'tls', 'gateway.crt')));
  t.equal(status.tls.fingerprint, cert.fingerprint256, 'the fingerprint of the certificate on disk');

  // The admin page presents that same certificate.
  const served = await new Promise<string>((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port: r.adminPort!, rejectUnauthorized: false }, () => {
      resolve(s.getPeerX509Certificate()!.fingerprint256);
      s.end();
    });
    s.on('error', reject);
  });
  t.equal(served, status.tls.fingerprint, 'the admin page serves it');

  const cli = await run(process.execPath, [BIN, 'status', '--config', file]);
  t.match(cli.stdout, new RegExp(`tls\\s+SHA-256 ${status.tls.fingerprint}`), '`onshi status` prints the fingerprint');
  t.match(cli.stdout, /line\s+up/);
});

t.test('audit: checks, token changes from the CLI while running, and refused tokens are chained', async (t) => {
  const { file, stateDir, token } = writeConfig('audit');
  const d = startDaemon(file);
  t.teardown(() => stop(d.child));
  const r = await d.ready;
  const client = await GatewayClient.connect(`ws://127.0.0.1:${r.wsPort}/v1`, token);
  t.teardown(() => client.close());
  await client.request({ type: 'inquiry.numbers', query: QUERY });
  await t.rejects(client.request({ type: 'inquiry.numbers', query: { ...QUERY, insurerNumber: '06139993' } }), {
    code: 'OQS_MESSAGE_INVALID',
  });

  const added = JSON.parse(
    (await run(process.execPath, [BIN, 'clients', 'add', 'reception-9', '--json', '--config', file])).stdout,
  ) as { id: string };
  await run(process.execPath, [BIN, 'clients', 'revoke', added.id, '--config', file]);
  const bad = new WebSocket(`ws://127.0.0.1:${r.wsPort}/v1`, {
    headers: { authorization: 'Bearer onshi_00000000_' + 'A'.repeat(43) },
  });
  await new Promise((res) => {
    bad.once('unexpected-response', res);
    bad.once('error', res);
  });

  const rows = await until(() => {
    const all = auditRows(stateDir);
    return all.some((x) => x.action === 'token.revoke') && all.some((x) => x.action === 'token.refused')
      ? all
      : undefined;
  });
  t.ok(rows, 'the token changes and the refusal reached the chain');
  const checks = rows!.filter((x) => x.kind === 'check');
  t.match(
    checks[0],
    { actor: /^[a-f0-9]{8}$/, action: 'inquiry.numbers', mode: 'numbers', outcome: 'validity:1', source: 'central' },
    'a check: who, card or numbers, outcome, source',
  );
  t.ok(checks[0]!.personal, 'its personal part (the request id) is sealed, not in clear');
  t.ok(
    checks.some((x) => x.outcome === 'OQS_MESSAGE_INVALID'),
    'a refused check is audited with its code',
  );
  t.same(
    rows!
      .filter((x) => x.kind === 'token')
      .map((x) => x.action)
      .sort(),
    ['token.add', 'token.add', 'token.refused', 'token.revoke'],
    'the test token, the CLI add and revoke, the refused token',
  );

  const verify = await run(process.execPath, [BIN, 'audit', 'verify', '--json', '--config', file]);
  t.match(JSON.parse(verify.stdout), { ok: true, entries: rows!.length });
});

t.test('brute force: an address that keeps sending bad tokens is refused for a while', async (t) => {
  const { file, token } = writeConfig('brute');
  const d = startDaemon(file);
  t.teardown(() => stop(d.child));
  const r = await d.ready;
  const statusOf = (tok: string): Promise<number> => upgradeStatus(`ws://127.0.0.1:${r.wsPort}/v1`, tok);
  const seen: number[] = [];
  for (let i = 0; i < 10; i++) seen.push(await statusOf(`onshi_0000000${i}_${'B'.repeat(43)}`));
  t.same(seen, Array(10).fill(401), 'ten wrong tokens: 401 each');
  t.equal(await statusOf(`onshi_00000000_${'C'.repeat(43)}`), 429, 'the eleventh: 429');
  t.equal(await statusOf(token), 429, 'even the right token waits out the lockout');
  t.ok(
    d.lines.some((l) => l.includes('"event":"auth_failed"') && l.includes('lockedForMs')),
    'the lockout is logged',
  );
});

t.test('wss:// with the gateway certificate; a LAN API without TLS does not start', async (t) => {
  const { file, stateDir, token } = writeConfig('wss', { api: { port: 0, tls: 'on' } });
  const d = startDaemon(file);
  t.teardown(() => stop(d.child));
  const r = await d.ready;
  t.equal(r.wsTls, true);
  const ca = readFileSync(join(stateDir, 'tls', 'gateway.crt'));
  const client = await GatewayClient.connect(`wss://localhost:${r.wsPort}/v1`, token, { ca });
  t.equal(
    (await client.request({ type: 'ping' })).type,
    'pong',
    'a client that trusts the gateway certificate connects',
  );
  await client.close();
  await t.rejects(
    GatewayClient.connect(`wss://localhost:${r.wsPort}/v1`, token),
    { code: 'CLIENT_CONNECT_FAILED' },
    'one that does not trust it is refused',
  );
  await t.rejects(
    GatewayClient.connect(`ws://127.0.0.1:${r.wsPort}/v1`, token),
    { code: 'CLIENT_CONNECT_FAILED' },
    'plain ws to the TLS port fails',
  );

  const lan = writeConfig('lan', { api: { host: '0.0.0.0', port: 0, tls: 'off' } });
  const child = spawn(process.execPath, [BIN, 'start', '--config', lan.file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const code = await new Promise((res) => child.once('exit', res));
  t.equal(code, 1);
  t.match(stderr, /STARTUP_INSECURE_LISTEN/, 'refused, with the reason');
});

t.test(
  'retention: personal audit fields older than audit.retentionDays are purged at start; the chain still verifies',
  async (t) => {
    const { file, stateDir } = writeConfig('retention', { audit: { retentionDays: 30 } });
    const store = await GatewayStore.open({ dir: stateDir });
    const old = new Date(Date.now() - 40 * 86_400_000);
    await store.audit.append(
      {
        kind: 'check',
        actor: 'c1',
        action: 'inquiry.numbers',
        mode: 'numbers',
        outcome: 'validity:1',
        source: 'central',
        personal: { requestId: 'old-visit' },
      },
      old,
    );
    await store.audit.append({
      kind: 'check',
      actor: 'c1',
      action: 'inquiry.numbers',
      mode: 'numbers',
      outcome: 'validity:1',
      source: 'central',
      personal: { requestId: 'recent-visit' },
    });
    await store.close();
    const d = startDaemon(file);
    t.teardown(() => stop(d.child));
    await d.ready;
    const rows = await until(() => {
      const a = auditRows(stateDir).filter((x) => x.kind === 'check');
      return a[0]?.personal === null ? a : undefined;
    });
    t.ok(rows, 'the old entry lost its personal fields');
    t.ok(rows![1]!.personal, 'the recent one kept them');
    t.match(rows![0], { actor: 'c1', action: 'inquiry.numbers', outcome: 'validity:1' }, 'the clear fields stay');
    const verify = await run(process.execPath, [BIN, 'audit', 'verify', '--json', '--config', file]);
    t.match(JSON.parse(verify.stdout), { ok: true });
  },
);

t.test(
  'the line to central: a client certificate that expires within 30 days is warned about at start, and still works',
  async (t) => {
    const pki = await sharedPki();
    const soon = await issueCertificate({
      ca: pki.centralCa,
      subject: 'CN=gateway-client-expiring',
      usage: 'client',
      notBefore: new Date(Date.now() - 86_400_000),
      notAfter: new Date(Date.now() + 10 * 86_400_000),
    });
    writeFileSync(join(dir, 'expiring.pem'), soon.certPem);
    writeFileSync(join(dir, 'expiring.key'), soon.keyPem);
    const { file, token } = writeConfig('expiring', {
      central: {
        url: central.url,
        caFile: pkiFiles().caFile,
        certFile: join(dir, 'expiring.pem'),
        keyFile: join(dir, 'expiring.key'),
      },
    });
    const d = startDaemon(file);
    t.teardown(() => stop(d.child));
    const r = await d.ready;
    t.ok(
      d.lines.some((l) => l.includes('"event":"central_cert_expiry"') && l.includes('CENTRAL_CERT_EXPIRING')),
      'logged as a warning at start',
    );
    const status = JSON.parse((await get(r.healthPort!, '/status')).body) as {
      alerts: { code: string; details: { daysLeft: number } }[];
      certificates: { name: string; notAfter: string }[];
    };
    t.match(status.alerts, [{ code: 'CENTRAL_CERT_EXPIRING', details: { daysLeft: 9 } }], 'shown in the status');
    t.match(
      (await run(process.execPath, [BIN, 'status', '--config', file])).stdout,
      /ALERT\s+CENTRAL_CERT_EXPIRING: the client certificate for central expires on/,
      'and by `onshi status`',
    );
    const client = await GatewayClient.connect(`ws://127.0.0.1:${r.wsPort}/v1`, token);
    t.teardown(() => client.close());
    t.match(
      (await client.request({ type: 'inquiry.numbers', query: QUERY })).result,
      { source: 'central', validity: '1' },
      'central still accepts it',
    );
  },
);
