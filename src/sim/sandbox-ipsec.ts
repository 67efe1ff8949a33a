/**
 * The sandbox on a real tunnel (`onshi sandbox --line ipsec`): the IPsec lab's two namespaces, the
 * central simulator in the central one (listening only on its inner address, so reachable only
 * through the tunnel; its control port on the management link), the gateway daemon in the clinic
 * one (its API and admin page on the clinic LAN, which the host reaches), the virtual card under
 * the host's pcscd (whose socket is a file, so the gateway in its namespace still reaches it).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { writeFileAtomic } from '../core/atomic-file.js';
import { validateConfig } from '../core/config.js';
import type { CardControl, VirtualCard } from './card/index.js';
import { IpsecLab, ipsecLabPrerequisites } from './line/ipsec/lab.js';
import { type IpsecLabControl, startIpsecLabControl } from './line/ipsec/control.js';
import { ensureSandboxPki } from './pki.js';
import {
  adminSecretOf,
  addSandboxClient,
  BIN,
  readyLine,
  type RunningGateway,
  runGateway,
  type SandboxOptions,
  startCards,
  stopCards,
  stopGateway,
} from './sandbox.js';

/** Ports inside the namespaces: each lab has its own, so they are fixed. */
const CENTRAL_PORT = 18443;
const CENTRAL_CONTROL_PORT = 18444;
const WS_PORT = 8765;
const ADMIN_PORT = 8443;

export interface IpsecSandbox {
  ready: Record<string, string>;
  lab: IpsecLab;
  /** `ip netns exec … onshi sim central` */
  central: ChildProcess;
  /** the daemon running now (a new process after each restart) */
  readonly gateway: ChildProcess;
  /** starts the daemon again in the clinic namespace; resolves once it is READY */
  restartGateway(): Promise<ChildProcess>;
  cards: VirtualCard[];
  /** whether the gateway drives the tunnel (its config has `line`) or the lab brought it up */
  tunnelBy: 'gateway' | 'lab';
  close(): Promise<void>;
}

/**
 * Whether this build's daemon takes a `line` section. Until it does, the lab brings the tunnel up
 * with swanctl (IpsecLab.loadClinicWithSwanctl); from then on the gateway's own config carries the
 * line and the daemon drives it. The seam is here, and only here.
 */
export function daemonTakesLine(): boolean {
  try {
    validateConfig({ stateDir: '/nonexistent', line: { mode: 'ip-vpn' } });
    return true;
  } catch {
    return false;
  }
}

/** The clinic side of the lab as the gateway's `line` section (see src/sync/line/config.ts). */
export function labLineSection(lab: IpsecLab): Record<string, unknown> {
  return {
    mode: 'ipsec',
    vici: lab.clinic.viciUri,
    name: 'oqs',
    peer: lab.central.outer,
    localId: lab.clinic.id,
    remoteId: lab.central.id,
    proposals: ['aes256-sha256-modp2048'],
    espProposals: ['aes256-sha256'],
    dpdDelaySeconds: lab.dpdDelaySeconds,
    localTs: [`${lab.clinic.inner}/32`],
    remoteTs: [`${lab.central.inner}/32`],
    auth: { kind: 'pubkey', certFile: lab.clinic.certFile, keyFile: lab.clinic.keyFile, caFile: lab.caFile },
  };
}

/** Resolves with the fields of the first `READY k=v …` line a child prints on stdout. */
function readyOf(child: ChildProcess, what: string, timeoutMs: number): Promise<Record<string, string>> {
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`${what} did not print READY within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`${what} exited with ${code} before it was ready`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('READY ')) return;
      clearTimeout(timer);
      res(
        Object.fromEntries(
          line
            .slice(6)
            .split(' ')
            .map((kv) => kv.split('=', 2) as [string, string]),
        ),
      );
    });
  });
}

export interface IpsecSandboxOptions extends SandboxOptions {
  /** gateway config sections merged over the sandbox's (tests: fast outage settings) */
  gateway?: Record<string, Record<string, unknown>>;
}

export async function startIpsecSandbox(opts: IpsecSandboxOptions): Promise<IpsecSandbox> {
  const missing = await ipsecLabPrerequisites();
  if (missing) throw new Error(`--line ipsec cannot run here: ${missing}`);
  const stateDir = resolve(opts.stateDir);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  await ensureSandboxPki(stateDir);
  const port = (n: number): number => (opts.portBase === 0 ? 0 : opts.portBase + n);
  const lab = await IpsecLab.create({ baseDir: stateDir, ...(opts.log ? { log: opts.log } : {}) });
  const parts: { cards?: { cards: VirtualCard[]; control: CardControl }; control?: IpsecLabControl } = {};
  let gateway: ChildProcess | undefined;
  const close = async (): Promise<void> => {
    if (gateway) await stopGateway(gateway);
    await parts.control?.close();
    if (parts.cards) await stopCards(parts.cards);
    await lab.close(); // ends the central simulator too (it runs in the lab's namespace)
  };
  try {
    const central = lab.spawnIn(
      'central',
      process.execPath,
      [
        ...[BIN, 'sim', 'central', '--state', stateDir, '--host', lab.central.inner, '--port', String(CENTRAL_PORT)],
        ...['--control-host', lab.mgmt.central, '--control-port', String(CENTRAL_CONTROL_PORT)],
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const sim = await readyOf(central, 'the central simulator', 20_000);

    const tunnelBy = daemonTakesLine() ? 'gateway' : 'lab';
    if (tunnelBy === 'lab') await lab.loadClinicWithSwanctl();

    if (opts.card !== false) {
      try {
        parts.cards = await startCards(stateDir, port(3));
      } catch (e) {
        opts.warn?.(`no virtual card: ${(e as Error).message} (./scripts/sandbox.sh starts pcscd)`);
      }
    }

    const gatewayState = join(stateDir, 'gateway');
    const configFile = join(stateDir, 'gateway.json');
    const lanAddr = lab.lan.clinic;
    const pki = (f: string): string => join(stateDir, 'pki', f);
    const config: Record<string, Record<string, unknown> | string> = {
      stateDir: gatewayState,
      log: { level: 'info' },
      // On the clinic LAN, as in a clinic: wss:// with the gateway's own certificate, which names this address.
      api: { host: lanAddr, port: WS_PORT },
      admin: { host: lanAddr, port: ADMIN_PORT },
      tls: { ips: [lanAddr] },
      central: {
        url: sim.central,
        // The simulator's certificate names localhost: check that name over the tunnel.
        servername: 'localhost',
        caFile: pki('central-ca.pem'),
        certFile: pki('gateway-client.pem'),
        keyFile: pki('gateway-client.key'),
      },
      reader: { jpkiCaFile: pki('jpki-ca.pem') },
      outage: { probeIntervalMs: 2000, failureThreshold: 2 },
      ...(tunnelBy === 'gateway' ? { line: labLineSection(lab) } : {}),
    };
    for (const [section, values] of Object.entries(opts.gateway ?? {}))
      config[section] = { ...(config[section] as Record<string, unknown> | undefined), ...values };
    writeFileAtomic(configFile, `${JSON.stringify(config, null, 2)}\n`);
    const token = await addSandboxClient(configFile);
    const launch = (): Promise<RunningGateway> =>
      runGateway(
        lab.spawnIn('clinic', process.execPath, [BIN, 'start', '--config', configFile], {
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
        join(stateDir, 'gateway.log'),
      );
    let running = await launch();
    gateway = running.gateway;
    if (tunnelBy === 'gateway') {
      const until = Date.now() + 30_000;
      while (!(await lab.installed('clinic'))) {
        if (Date.now() > until) throw new Error('the gateway did not bring the tunnel up within 30 s');
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    parts.control = await startIpsecLabControl(lab, { port: port(5) });

    const ready: Record<string, string> = {
      ws: `wss://${lanAddr}:${running.wsPort}/v1`,
      token,
      // The gateway's self-signed certificate, for NODE_EXTRA_CA_CERTS (the CLI) or a client's `ca`.
      ca: join(gatewayState, 'tls', 'gateway.crt'),
      central: sim.central!,
      control: sim.control!,
      lab: parts.control.url,
      ...(parts.cards ? { cards: parts.cards.control.url } : {}),
      ...(running.adminPort
        ? { admin: `https://${lanAddr}:${running.adminPort}/`, ...adminSecretOf(gatewayState) }
        : {}),
      line: 'ipsec',
      vici: lab.clinic.viciUri,
      netns: lab.clinic.ns,
      state: stateDir,
      config: configFile,
      log: join(stateDir, 'gateway.log'),
    };
    opts.log?.(readyLine(ready));
    let closed: Promise<void> | undefined;
    return {
      ready,
      lab,
      central,
      get gateway() {
        return running.gateway;
      },
      async restartGateway() {
        running.logStream.end();
        running = await launch();
        gateway = running.gateway;
        return running.gateway;
      },
      cards: parts.cards?.cards ?? [],
      tunnelBy,
      close() {
        closed ??= close().finally(() => running.logStream.end());
        return closed;
      },
    };
  } catch (e) {
    await close();
    throw e;
  }
}
