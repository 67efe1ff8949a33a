/**
 * `onshi doctor`: checks what the gateway depends on and says what to do about each failure —
 * the state directory, disk space and SD-card write latency (fsync), pcscd and the reader, the
 * closed line hop by hop (doctor-line.ts) and TLS to central, the clock against central's Date header, certificate expiries.
 * Exit code 1 when a check failed, 0 otherwise (warnings included).
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  statfsSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { connect, type ConnectionOptions } from 'node:tls';
import { parseCliArgs } from './args.js';
import type { GatewayConfig } from '../core/config.js';
import { certificateExpiries, type CliContext, credentialPath, DEFAULT_CREDENTIALS_DIR } from './status.js';
import { readTlsIdentity } from '../ops/tls-identity.js';
import { type LineDoctorOptions, lineChecks } from './doctor-line.js';

import type { CheckStatus, DoctorCheck } from './doctor-check.js';

export type { CheckStatus, DoctorCheck } from './doctor-check.js';

export interface DoctorOptions {
  config: GatewayConfig;
  credentialsDir?: string;
  /** pcscd's socket (Debian: /run/pcscd/pcscd.comm) */
  pcscSocket?: string;
  /** the reader names pcscd reports; the default asks pcscd through our PC/SC binding */
  listReaders?: () => Promise<string[]>;
  /** number of 4 KiB write+fsync rounds for the latency check */
  writeRounds?: number;
  now?: () => number;
  /** tests: the line checks' probes (charon, path, ping) */
  line?: LineDoctorOptions;
}

const DAY = 86_400_000;

export async function runDoctor(o: DoctorOptions): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const add = (c: DoctorCheck): void => {
    checks.push(c);
  };
  const cfg = o.config;
  const creds = o.credentialsDir ?? DEFAULT_CREDENTIALS_DIR;
  const now = (o.now ?? Date.now)();

  add(checkStateDir(cfg.stateDir));
  add(checkDisk(cfg.stateDir));
  add(checkWriteLatency(cfg.stateDir, o.writeRounds ?? 20));

  if (!cfg.reader.enabled) {
    add({ name: 'pcscd', status: 'skip', detail: 'reader.enabled is false' });
  } else {
    const sock = o.pcscSocket ?? '/run/pcscd/pcscd.comm';
    const socketThere = existsSync(sock);
    add(
      socketThere
        ? { name: 'pcscd', status: 'ok', detail: `socket ${sock} present` }
        : {
            name: 'pcscd',
            status: 'fail',
            detail: `no socket at ${sock}`,
            fix: 'sudo apt-get install pcscd && sudo systemctl enable --now pcscd.socket',
          },
    );
    if (socketThere) add(await checkReader(cfg, o.listReaders ?? defaultListReaders));
  }

  // The line hop by hop (IKE SA, CHILD SA, route, next hop, path MTU), then TLS to central and the clock.
  for (const c of await lineChecks(cfg, o.line)) add(c);
  const tlsOpts = centralTls(cfg, creds);
  if ('error' in tlsOpts) {
    add({
      name: 'central TLS',
      status: 'fail',
      detail: tlsOpts.error,
      fix: `put the clinic's certificate set in ${creds} (central-client.key, central-client.pem, central-ca.pem) or set central.*File in the config`,
    });
  } else {
    for (const c of await checkCentral(cfg, tlsOpts.opts)) add(c);
  }

  for (const c of certificateExpiries(cfg, creds)) {
    const left = Date.parse(c.notAfter) - now;
    add(
      left <= 0
        ? {
            name: `certificate ${c.name}`,
            status: 'fail',
            detail: `expired on ${c.notAfter.slice(0, 10)}`,
            fix: 'get a renewed certificate set from the line provider / 支払基金 and replace the files',
          }
        : left < 30 * DAY
          ? {
              name: `certificate ${c.name}`,
              status: 'warn',
              detail: `expires on ${c.notAfter.slice(0, 10)} (${Math.floor(left / DAY)} days)`,
              fix: 'apply for the renewed certificate now',
            }
          : { name: `certificate ${c.name}`, status: 'ok', detail: `valid until ${c.notAfter.slice(0, 10)}` },
    );
  }
  const tls = readTlsIdentity(cfg.stateDir);
  add(
    tls
      ? {
          name: 'gateway TLS identity',
          status: tls.notAfter.getTime() - now <= 0 ? 'warn' : 'ok',
          detail: `SHA-256 ${tls.fingerprint}, until ${tls.notAfter.toISOString().slice(0, 10)}`,
          ...(tls.notAfter.getTime() - now <= 0
            ? { fix: 'restart the gateway: it renews its certificate at start' }
            : {}),
        }
      : { name: 'gateway TLS identity', status: 'skip', detail: 'not created yet (made at the first start)' },
  );
  return checks;
}

function checkStateDir(dir: string): DoctorCheck {
  try {
    const st = statSync(dir);
    if (!st.isDirectory())
      return {
        name: 'state directory',
        status: 'fail',
        detail: `${dir} is not a directory`,
        fix: `remove it; the gateway creates ${dir} at start`,
      };
    if ((st.mode & 0o077) !== 0)
      return {
        name: 'state directory',
        status: 'warn',
        detail: `${dir} is mode ${(st.mode & 0o777).toString(8)}`,
        fix: `chmod 700 ${dir}`,
      };
    return { name: 'state directory', status: 'ok', detail: `${dir} (0700)` };
  } catch (e) {
    return {
      name: 'state directory',
      status: 'warn',
      detail: `${dir}: ${(e as NodeJS.ErrnoException).code}`,
      fix: 'it is created at the first start; check stateDir in the config',
    };
  }
}

function checkDisk(dir: string): DoctorCheck {
  let target = dir;
  while (!existsSync(target) && target !== '/') target = join(target, '..');
  try {
    const s = statfsSync(target);
    const free = s.bavail * s.bsize;
    const pct = (100 * s.bavail) / Math.max(1, s.blocks);
    const detail = `${(free / 2 ** 20).toFixed(0)} MiB free (${pct.toFixed(0)} %) on the file system of ${target}`;
    if (free < 100 * 2 ** 20)
      return {
        name: 'disk space',
        status: 'fail',
        detail,
        fix: 'free space: the outbox must be able to commit during an outage (journalctl --vacuum-size=100M, remove old files)',
      };
    if (free < 500 * 2 ** 20 || pct < 10)
      return { name: 'disk space', status: 'warn', detail, fix: 'free some space soon, or use a larger card' };
    return { name: 'disk space', status: 'ok', detail };
  } catch (e) {
    return { name: 'disk space', status: 'warn', detail: (e as Error).message };
  }
}

/**
 * The outbox commits with fsync before a client is answered, so fsync latency is answer latency
 * during an outage. Worn or cheap SD cards show spikes of seconds.
 */
export function checkWriteLatency(dir: string, rounds: number): DoctorCheck {
  const name = 'SD write latency';
  let file: string | undefined;
  // Never mkdir here: the doctor must not create the state directory (and a recursive mkdir
  // under /proc never returns on some kernels).
  if (!existsSync(dir)) return { name, status: 'skip', detail: `${dir} does not exist yet` };
  try {
    file = join(dir, `.doctor-${process.pid}.tmp`);
    const fd = openSync(file, 'w', 0o600);
    const block = Buffer.alloc(4096, 0x5a);
    const times: number[] = [];
    try {
      for (let i = 0; i < rounds; i++) {
        const t0 = process.hrtime.bigint();
        writeSync(fd, block, 0, block.length, i * block.length);
        fsyncSync(fd);
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    } finally {
      closeSync(fd);
    }
    times.sort((a, b) => a - b);
    const p50 = times[Math.floor(times.length / 2)]!;
    const max = times[times.length - 1]!;
    const detail = `write + fsync of 4 KiB: median ${p50.toFixed(1)} ms, worst ${max.toFixed(1)} ms over ${rounds}`;
    if (max > 1000)
      return {
        name,
        status: 'fail',
        detail,
        fix: 'the storage stalls for seconds: replace the SD card (A1/A2 class, or an SSD over USB)',
      };
    if (p50 > 20 || max > 200)
      return {
        name,
        status: 'warn',
        detail,
        fix: 'slow storage: answers during an outage will be slow; consider an A2 card or an SSD',
      };
    return { name, status: 'ok', detail };
  } catch (e) {
    return {
      name,
      status: 'fail',
      detail: `cannot write in ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      fix: `check that ${dir} is writable by this user and the file system is not read-only`,
    };
  } finally {
    if (file)
      try {
        unlinkSync(file);
      } catch {
        /* never created */
      }
  }
}

async function defaultListReaders(): Promise<string[]> {
  const { smartcardBackend } = await import('../reader/index.js');
  const ctx = await smartcardBackend().establish();
  try {
    return ctx.listReaders().map((r) => r.name);
  } finally {
    ctx.close();
  }
}

async function checkReader(cfg: GatewayConfig, list: () => Promise<string[]>): Promise<DoctorCheck> {
  try {
    const names = await Promise.race([
      list(),
      new Promise<never>((_, rej) => setTimeout(() => rej(new Error('pcscd did not answer within 5 s')), 5000).unref()),
    ]);
    const wanted = cfg.reader.readerName;
    const match = names.filter((n) => !wanted || n.includes(wanted));
    if (match.length === 0) {
      return {
        name: 'card reader',
        status: 'fail',
        detail: names.length ? `no reader matches "${wanted}" (found: ${names.join(', ')})` : 'pcscd sees no reader',
        fix: names.length
          ? 'fix reader.readerName in the config'
          : 'plug the reader in (another USB port, no unpowered hub); `pcsc_scan` shows what pcscd sees',
      };
    }
    return { name: 'card reader', status: 'ok', detail: match.join(', ') };
  } catch (e) {
    const msg = (e as Error).message;
    return {
      name: 'card reader',
      status: 'fail',
      detail: msg,
      fix: /not authorized|denied/i.test(msg)
        ? 'pcscd refused this user: check /etc/polkit-1/rules.d/50-onshi-gateway-pcscd.rules and that polkitd runs'
        : 'restart pcscd (sudo systemctl restart pcscd) and check `journalctl -u pcscd`',
    };
  }
}

function centralTls(cfg: GatewayConfig, creds: string): { opts: ConnectionOptions } | { error: string } {
  const read = (configured: string, name: string): Buffer | string => {
    const p = credentialPath(configured, name, creds);
    try {
      return readFileSync(p);
    } catch (e) {
      return `${p}: ${(e as NodeJS.ErrnoException).code}`;
    }
  };
  const ca = read(cfg.central.caFile, 'central-ca.pem');
  const cert = read(cfg.central.certFile, 'central-client.pem');
  const key = read(cfg.central.keyFile, 'central-client.key');
  const missing = [ca, cert, key].filter((x): x is string => typeof x === 'string');
  if (missing.length) return { error: `cannot read ${missing.join('; ')}` };
  const url = new URL(cfg.central.url);
  return {
    opts: {
      host: url.hostname,
      port: Number(url.port || 443),
      ca: ca as Buffer,
      cert: cert as Buffer,
      key: key as Buffer,
      servername: cfg.central.servername || (/^[\d.:]+$/.test(url.hostname) ? undefined : url.hostname),
    } as ConnectionOptions,
  };
}

/**
 * Connects with the clinic's certificate set and sends one HEAD request. A full HTTP answer is the
 * proof: under TLS 1.3 the client's handshake completes before central has checked our client
 * certificate, so a refused certificate only shows up as an alert or a reset afterwards.
 * Central's Date header in that answer gives the clock check.
 */
function checkCentral(cfg: GatewayConfig, opts: ConnectionOptions): Promise<DoctorCheck[]> {
  const name = 'line and TLS to central';
  const url = new URL(cfg.central.url);
  const t0 = Date.now();
  return new Promise((resolve) => {
    let handshakeMs: number | undefined;
    let head = '';
    let done = false;
    const finish = (c: DoctorCheck[]): void => {
      if (!done) {
        done = true;
        sock.destroy();
        resolve(c);
      }
    };
    const sock = connect({ ...opts, timeout: cfg.central.timeoutMs }, () => {
      handshakeMs = Date.now() - t0;
      sock.write(`HEAD ${url.pathname || '/'} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`);
    });
    sock.setEncoding('latin1');
    sock.on('data', (chunk: string) => {
      head += chunk;
      if (!head.includes('\r\n\r\n')) return;
      const ms = Date.now() - t0;
      const peer = sock.getPeerX509Certificate();
      const statusLine = head.slice(0, head.indexOf('\r\n'));
      const line: DoctorCheck = {
        name,
        status: ms > 3000 ? 'warn' : 'ok',
        detail: `${opts.host}:${opts.port} ${sock.getProtocol()}, handshake ${handshakeMs} ms, answer "${statusLine}" in ${ms} ms${peer ? `, central certificate until ${new Date(peer.validTo).toISOString().slice(0, 10)}` : ''}`,
        ...(ms > 3000 ? { fix: 'the line is slow: check the VPN router and the line provider' } : {}),
      };
      finish([line, clockCheck(/^date:\s*(.+)$/im.exec(head)?.[1]?.trim(), (t0 + Date.now()) / 2)]);
    });
    sock.on('timeout', () =>
      sock.destroy(Object.assign(new Error(`no answer within ${cfg.central.timeoutMs} ms`), { code: 'ETIMEDOUT' })),
    );
    sock.on('error', (e: NodeJS.ErrnoException) =>
      finish([
        failure(e, handshakeMs !== undefined),
        { name: 'clock', status: 'skip', detail: 'needs an answer from central' },
      ]),
    );
    sock.on('end', () =>
      finish([
        failure(
          Object.assign(new Error('central closed the connection without answering'), { code: 'ECONNRESET' }),
          handshakeMs !== undefined,
        ),
        { name: 'clock', status: 'skip', detail: 'needs an answer from central' },
      ]),
    );
  });

  function failure(e: NodeJS.ErrnoException, afterHandshake: boolean): DoctorCheck {
    const code = e.code ?? '';
    const text = `${code} ${e.message}`;
    let fix: string;
    if (/CERT|SELF_SIGNED|UNABLE_TO|altname|HOSTNAME|Hostname/.test(text) && !afterHandshake) {
      fix =
        "central's certificate does not verify against central-ca.pem: install the current CA bundle (or check central.servername)";
    } else if (afterHandshake || /alert|certificate/i.test(e.message)) {
      fix =
        "central refused our client certificate: check that central-client.pem/.key are this clinic's current, unexpired set";
    } else if (
      ['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET'].includes(
        code,
      )
    ) {
      fix =
        'the closed line is down or central.url is wrong: check the VPN router / IPsec tunnel, then `ping` the central address';
    } else {
      fix = 'see the error; run again with the line provider on the phone';
    }
    return {
      name,
      status: 'fail',
      detail: `${opts.host}:${opts.port}: ${code && !e.message.includes(code) ? `${code} ` : ''}${e.message}`,
      fix,
    };
  }
}

/** The clock against central's Date header (1 s resolution): TLS and card signatures need the right time. */
function clockCheck(date: string | undefined, localAtAnswer: number): DoctorCheck {
  const name = 'clock';
  const central = date ? Date.parse(date) : NaN;
  if (Number.isNaN(central))
    return {
      name,
      status: 'warn',
      detail: 'central sent no Date header',
      fix: 'compare the clock by hand: `timedatectl`',
    };
  const skew = localAtAnswer - central;
  const detail = `this machine − central = ${(skew / 1000).toFixed(1)} s (Date header, ±1 s)`;
  const fix =
    "turn on time sync: `sudo timedatectl set-ntp true`; on a closed line, point systemd-timesyncd at the line provider's NTP server (NTP= in /etc/systemd/timesyncd.conf)";
  if (Math.abs(skew) > 300_000) return { name, status: 'fail', detail, fix };
  if (Math.abs(skew) > 30_000) return { name, status: 'warn', detail, fix };
  return { name, status: 'ok', detail };
}

export function formatDoctor(checks: DoctorCheck[]): string {
  const tag: Record<CheckStatus, string> = { ok: '[ OK ]', warn: '[WARN]', fail: '[FAIL]', skip: '[SKIP]' };
  return (
    checks
      .map(
        (c) =>
          `${tag[c.status]} ${c.name}: ${c.detail}${c.fix && (c.status === 'warn' || c.status === 'fail') ? `\n       → ${c.fix}` : ''}`,
      )
      .join('\n') + '\n'
  );
}

export async function cmdDoctor(argv: string[], ctx: CliContext): Promise<number> {
  const out = ctx.out ?? ((s: string) => void process.stdout.write(s));
  const { values } = parseCliArgs(
    argv,
    { config: { type: 'string' }, json: { type: 'boolean' }, credentials: { type: 'string' } },
    (m) => ctx.usage(m),
  );
  let config: GatewayConfig;
  try {
    config = ctx.config(values.config);
  } catch (e) {
    const c: DoctorCheck = {
      name: 'config',
      status: 'fail',
      detail: (e as Error).message,
      fix: 'fix the named keys in the config file (see docs/configuration.md)',
    };
    out(values.json ? JSON.stringify([c]) + '\n' : formatDoctor([c]));
    return 1;
  }
  const checks = [
    { name: 'config', status: 'ok' as const, detail: 'valid' },
    ...(await runDoctor({ config, ...(values.credentials ? { credentialsDir: values.credentials } : {}) })),
  ];
  out(values.json ? JSON.stringify(checks) + '\n' : formatDoctor(checks));
  return checks.some((c) => c.status === 'fail') ? 1 : 0;
}
