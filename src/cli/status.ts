/**
 * `onshi status`: the running daemon's snapshot from its loopback /status endpoint; when the daemon
 * is not running, what the files say (certificates, the TLS fingerprint, clients).
 * Exit codes: 0 running and ready, 1 running but not ready, 3 not running.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { parseCliArgs } from './args.js';
import { ClientStore } from '../api/tokens.js';
import type { GatewayConfig } from '../core/config.js';
import type { CertificateExpiry, GatewayStatus, JobStatus } from '../ops/status.js';
import { readRuntimeFile } from '../ops/runtime-file.js';
import { readTlsIdentity } from '../ops/tls-identity.js';

/** What the dispatcher (cli/index.ts, through cli/context.ts) hands to the command modules (so they need not import it back). */
export interface CliContext {
  config(file: string | undefined): GatewayConfig;
  usage(message: string): Error;
  out?: (s: string) => void;
}

export const DEFAULT_CREDENTIALS_DIR = '/etc/onshi-gateway/credentials';

/** GET a loopback health path of the running daemon; undefined when nothing answers. */
export function fetchLocal(
  port: number,
  path: string,
  timeoutMs = 2000,
): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path, timeout: timeoutMs, headers: { host: `127.0.0.1:${port}` } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/** The configured health port, or — when it is 0 (chosen at start) — the one the daemon wrote down. */
export function healthPortOf(config: GatewayConfig): number | undefined {
  if (config.health.port !== 0) return config.health.port;
  return readRuntimeFile(config.stateDir)?.healthPort;
}

export async function daemonStatus(config: GatewayConfig): Promise<GatewayStatus | undefined> {
  const port = config.health.enabled ? healthPortOf(config) : undefined;
  if (port === undefined) return undefined;
  const r = await fetchLocal(port, '/status');
  if (r?.status !== 200) return undefined;
  try {
    return JSON.parse(r.body) as GatewayStatus;
  } catch {
    return undefined;
  }
}

/** A configured file, or the credential of that name (the CLI runs as root next to the unit's files). */
export function credentialPath(configured: string, name: string, credentialsDir: string): string {
  return configured || join(process.env.CREDENTIALS_DIRECTORY ?? credentialsDir, name);
}

export function certificateExpiries(
  config: GatewayConfig,
  credentialsDir = DEFAULT_CREDENTIALS_DIR,
): CertificateExpiry[] {
  const out: CertificateExpiry[] = [];
  const add = (name: string, path: string): void => {
    try {
      const c = new X509Certificate(readFileSync(path));
      out.push({ name, notAfter: new Date(c.validTo).toISOString(), fingerprint: c.fingerprint256 });
    } catch {
      /* absent or not readable by this user */
    }
  };
  add('central-client', credentialPath(config.central.certFile, 'central-client.pem', credentialsDir));
  add('central-ca', credentialPath(config.central.caFile, 'central-ca.pem', credentialsDir));
  return out;
}

const DAY = 86_400_000;
const ago = (ms: number): string =>
  ms < 120_000
    ? `${Math.round(ms / 1000)} s`
    : ms < 7_200_000
      ? `${Math.round(ms / 60_000)} min`
      : ms < 2 * DAY
        ? `${Math.round(ms / 3_600_000)} h`
        : `${Math.round(ms / DAY)} days`;

export function formatStatus(s: GatewayStatus): string {
  const now = Date.parse(s.now);
  const rows: [string, string][] = [
    [
      'ready',
      s.ready
        ? 'yes'
        : `no (${Object.entries(s.checks)
            .filter(([, ok]) => !ok)
            .map(([k]) => k)
            .join(', ')})`,
    ],
    [
      'reader',
      s.reader.state + (s.reader.readers.length ? ` (${s.reader.readers.map((r) => r.name).join(', ')})` : ''),
    ],
    ['card', s.card.present ? `present${s.card.stage ? `, ${s.card.stage}` : ''}` : 'none'],
    [
      'line',
      s.line.state +
        (s.line.since ? ` since ${s.line.since}` : '') +
        (s.line.lastError ? ` (last error ${s.line.lastError})` : '') +
        (s.line.mode ? `, ${s.line.mode}` : '') +
        (s.line.failingHop ? `, failing at ${s.line.failingHop}` : ''),
    ],
    ...(s.line.tunnel ? [['tunnel', tunnelLine(s.line.tunnel, now)] as [string, string]] : []),
    [
      'outbox',
      s.outbox
        ? s.outbox.depth === 0
          ? 'empty'
          : `${s.outbox.depth} waiting${s.outbox.oldestAt ? `, oldest ${ago(now - Date.parse(s.outbox.oldestAt))}` : ''}`
        : 'n/a',
    ],
    ['cache', s.cache ? `${s.cache.entries} entries` : 'n/a'],
    [
      'clock',
      `${s.now}${s.clock.skewMs !== undefined ? ` (gateway − central = ${(s.clock.skewMs / 1000).toFixed(1)} s)` : ' (not yet compared with central)'}`,
    ],
    [
      'api',
      s.api.listening
        ? `listening${s.api.port ? ` on port ${s.api.port}` : ''}, ${s.api.connections} connected`
        : 'not listening',
    ],
    ...s.certificates.map((c): [string, string] => [
      'cert',
      `${c.name} until ${c.notAfter.slice(0, 10)} (${expiryNote(Date.parse(c.notAfter) - now)})`,
    ]),
    ...(s.tls
      ? [['tls', `SHA-256 ${s.tls.fingerprint} until ${s.tls.notAfter.slice(0, 10)}`] as [string, string]]
      : []),
    ...(s.jobs ?? []).map((j): [string, string] => ['job', jobLine(j)]),
    ...(s.alerts ?? []).map((a): [string, string] => ['ALERT', `${a.code}: ${a.message}`]),
  ];
  return (
    `onshi-gateway ${s.version}, running since ${s.startedAt}\n` +
    rows.map(([k, v]) => `  ${k.padEnd(7)} ${v}`).join('\n') +
    '\n'
  );
}

/** e.g. "up: IKE established, CHILD_SA installed since …, 2 rekeys, 12.3 kB in / 8.1 kB out, peer heard 4 s ago" */
function tunnelLine(t: NonNullable<GatewayStatus['line']['tunnel']>, now: number): string {
  const kb = (n: number): string => (n < 10_000 ? `${n} B` : `${(n / 1000).toFixed(1)} kB`);
  return (
    `${t.up ? 'up' : 'DOWN'}: IKE ${t.ike}, CHILD_SA ${t.child} since ${t.since}, ${t.rekeys} rekeys, ` +
    `${kb(t.bytesIn)} in / ${kb(t.bytesOut)} out` +
    (t.lastDpd ? `, peer heard ${ago(now - Date.parse(t.lastDpd))} ago` : '') +
    (t.reason ? ` (${t.reason})` : '')
  );
}

/** e.g. "audit-retention next 2026-12-04T18:00:00.000Z, last ok (12 ms)" */
function jobLine(j: JobStatus): string {
  const r = j.lastResult;
  const last = r
    ? `last ${r.ok ? 'ok' : `FAILED ${r.code ?? ''}`.trim()} at ${r.at} (${r.durationMs} ms)`
    : 'not run yet';
  return `${j.name} ${j.running ? 'running' : `next ${j.nextRunAt ?? '-'}`}, ${last}`;
}

const expiryNote = (left: number): string =>
  left <= 0
    ? 'EXPIRED'
    : left < 30 * DAY
      ? `${Math.floor(left / DAY)} days left: RENEW SOON`
      : `${Math.floor(left / DAY)} days left`;

export async function cmdStatus(argv: string[], ctx: CliContext): Promise<number> {
  const out = ctx.out ?? ((s: string) => void process.stdout.write(s));
  const { values } = parseCliArgs(
    argv,
    { config: { type: 'string' }, json: { type: 'boolean' }, credentials: { type: 'string' } },
    (m) => ctx.usage(m),
  );
  const config = ctx.config(values.config);
  const live = await daemonStatus(config);
  if (live) {
    out(values.json ? JSON.stringify({ running: true, status: live }) + '\n' : formatStatus(live));
    return live.ready ? 0 : 1;
  }
  // Not running (or its health endpoint is off): what the files say.
  const tls = readTlsIdentity(config.stateDir);
  const certs = certificateExpiries(config, values.credentials);
  let clients: number | string;
  try {
    clients = new ClientStore(config.stateDir).list().filter((c) => !c.revokedAt).length;
  } catch (e) {
    clients = (e as Error).message;
  }
  const offline = {
    running: false,
    now: new Date().toISOString(),
    stateDir: config.stateDir,
    clients,
    certificates: certs,
    ...(tls
      ? { tls: { fingerprint: tls.fingerprint, spkiSha256: tls.spkiSha256, notAfter: tls.notAfter.toISOString() } }
      : {}),
  };
  if (values.json) {
    out(JSON.stringify(offline) + '\n');
  } else {
    const now = Date.now();
    out(
      [
        `onshi-gateway is not running (nothing answers on 127.0.0.1:${config.health.port}); from the files:`,
        `  clock   ${offline.now} (this machine)`,
        `  clients ${clients} active`,
        ...certs.map(
          (c) => `  cert    ${c.name} until ${c.notAfter.slice(0, 10)} (${expiryNote(Date.parse(c.notAfter) - now)})`,
        ),
        tls
          ? `  tls     SHA-256 ${tls.fingerprint} until ${tls.notAfter.toISOString().slice(0, 10)}`
          : '  tls     no certificate yet (made at the first start)',
        '',
      ].join('\n'),
    );
  }
  return 3;
}
