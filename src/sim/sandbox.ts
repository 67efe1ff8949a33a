/**
 * The sandbox: the real gateway daemon (a child process, exactly as systemd would run it) in front
 * of the central simulator, with the sandbox PKI. Prints one `READY key=value …` line and runs
 * until interrupted.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, type WriteStream } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../core/atomic-file.js';
import { CentralSim } from './central/server.js';
import { ensureSandboxPki, REVOKED_CARD_SERIAL } from './pki.js';
import { ensureCardProfiles, startCardControl, VirtualCard, VPCD_BASE_PORT, type CardControl } from './card/index.js';
import { FaultProxy, startLineControl, type LineControl } from './line/index.js';

export const BIN = fileURLToPath(new URL('../../bin/onshi.js', import.meta.url));

export interface SandboxOptions {
  stateDir: string;
  /**
   * 0 = ephemeral ports everywhere (tests); otherwise central = base, control = base+1, ws = base+2,
   * cards = base+3, the line (fault proxy in front of central) = base+4, its control = base+5,
   * the admin page = base+6, health/metrics = base+7
   */
  portBase: number;
  /** insert a virtual card (profile `normal`, PIN 1234) in slot 0 of pcscd's virtual reader (default true) */
  card?: boolean;
  log?: (line: string) => void;
  warn?: (line: string) => void;
}

export interface Sandbox {
  ready: Record<string, string>;
  central: CentralSim;
  /** the closed line between gateway and central: cut it, slow it, make it flap */
  line: FaultProxy;
  /** the daemon running now (a new process after each restart) */
  readonly gateway: ChildProcess;
  /** starts the daemon again with the same config and ports; resolves once it is READY */
  restartGateway(): Promise<ChildProcess>;
  cards: VirtualCard[];
  close(): Promise<void>;
}

/** A fresh API token each start, through the real CLI (the token is shown once and stored hashed). */
export function addSandboxClient(configFile: string): Promise<string> {
  return new Promise<string>((res, rej) => {
    execFile(
      process.execPath,
      [BIN, 'clients', 'add', `sandbox-${Date.now()}`, '--json', '--config', configFile],
      (err, stdout, stderr) => {
        if (err) return rej(new Error(`creating the sandbox client failed: ${stderr || err.message}`));
        res((JSON.parse(stdout) as { token: string }).token);
      },
    );
  });
}

export interface RunningGateway {
  gateway: ChildProcess;
  logStream: WriteStream;
  wsPort: number;
  adminPort?: number;
  healthPort?: number;
}

/**
 * Logs a started gateway process to `logFile` and waits for its `ready` event: 20 s, or
 * ONSHI_SANDBOX_READY_MS (scripts/test-arm64.sh: under qemu-user the start takes minutes).
 */
export async function runGateway(gateway: ChildProcess, logFile: string): Promise<RunningGateway> {
  const logStream = createWriteStream(logFile, { flags: 'a', mode: 0o600 });
  gateway.stderr!.pipe(logStream, { end: false });
  const readyMs = Number(process.env.ONSHI_SANDBOX_READY_MS) > 0 ? Number(process.env.ONSHI_SANDBOX_READY_MS) : 20_000;
  const ports = await new Promise<Omit<RunningGateway, 'gateway' | 'logStream'>>((res, rej) => {
    const lines = createInterface({ input: gateway.stdout! });
    const timer = setTimeout(
      () => rej(new Error(`the gateway did not become ready within ${readyMs / 1000} s (see ${logFile})`)),
      readyMs,
    );
    gateway.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`the gateway exited with ${code} before it was ready (see ${logFile})`));
    });
    lines.on('line', (line) => {
      logStream.write(line + '\n');
      try {
        const entry = JSON.parse(line) as { event?: string; wsPort?: number; adminPort?: number; healthPort?: number };
        if (entry.event === 'ready' && typeof entry.wsPort === 'number') {
          clearTimeout(timer);
          res({
            wsPort: entry.wsPort,
            ...(entry.adminPort ? { adminPort: entry.adminPort } : {}),
            ...(entry.healthPort ? { healthPort: entry.healthPort } : {}),
          });
        }
      } catch {
        /* not JSON: keep it in the log only */
      }
    });
  }).catch(async (e: unknown) => {
    // Gone before the caller hears of the failure: a sandbox that gives up leaves nothing running.
    await stopGateway(gateway).catch(() => undefined);
    logStream.end();
    throw e;
  });
  return { gateway, logStream, ...ports };
}

export async function stopGateway(gateway: ChildProcess): Promise<void> {
  if (gateway.exitCode !== null || gateway.signalCode !== null) return;
  const exited = new Promise((r) => gateway.once('exit', r));
  gateway.kill('SIGTERM');
  const timer = setTimeout(() => gateway.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

export const readyLine = (ready: Record<string, string>): string =>
  `READY ${Object.entries(ready)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}`;

/** The admin page's initial secret, until the first login changes it (the page forces that). */
export function adminSecretOf(gatewayState: string): Record<string, string> {
  const file = join(gatewayState, 'admin-initial-secret');
  return existsSync(file) ? { 'admin-secret': readFileSync(file, 'utf8').trim() } : {};
}

/** Both virtual slots get a card object; slot 0 holds the `normal` card, slot 1 starts empty. */
export async function startCards(
  stateDir: string,
  port: number,
): Promise<{ cards: VirtualCard[]; control: CardControl }> {
  await ensureCardProfiles(stateDir);
  const cards = await Promise.all(
    [0, 1].map((slot) =>
      VirtualCard.create({ stateDir, profile: 'normal', port: VPCD_BASE_PORT + slot, resetCounters: slot === 0 }),
    ),
  );
  try {
    await cards[0]!.insert();
    return { cards, control: await startCardControl({ cards, port }) };
  } catch (e) {
    await Promise.all(cards.map((c) => c.close()));
    throw e;
  }
}

/** Stops what startCards started: its control port, then the cards. */
export async function stopCards(sim: { cards: VirtualCard[]; control: CardControl }): Promise<void> {
  await sim.control.close();
  await Promise.all(sim.cards.map((c) => c.close()));
}

export async function startSandbox(opts: SandboxOptions): Promise<Sandbox> {
  // What has started, stopped in reverse by close() — or at once when a later part fails to start
  // (the gateway missing READY above all), so that `onshi sandbox` exits rather than hangs.
  const stops: Array<() => Promise<unknown>> = [];
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      for (const stop of stops.splice(0).reverse()) await stop();
    })());
  try {
    return await bringUp(opts, stops, close);
  } catch (e) {
    await close().catch(() => undefined);
    throw e;
  }
}

async function bringUp(
  opts: SandboxOptions,
  stops: Array<() => Promise<unknown>>,
  close: () => Promise<void>,
): Promise<Sandbox> {
  const stateDir = resolve(opts.stateDir);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const pki = await ensureSandboxPki(stateDir);
  const port = (n: number): number => (opts.portBase === 0 ? 0 : opts.portBase + n);
  const central = await CentralSim.start({
    pki,
    port: port(0),
    controlPort: port(1),
    revokedSerials: [REVOKED_CARD_SERIAL],
  });
  stops.push(() => central.close());
  // The gateway reaches central through the fault proxy, so the sandbox can cut the line.
  const line = await FaultProxy.start({
    targetHost: '127.0.0.1',
    targetPort: Number(new URL(central.url).port),
    listenPort: port(4),
  });
  stops.push(() => line.close());
  const lineControl: LineControl = await startLineControl(line, { port: port(5) });
  stops.push(() => lineControl.close());
  let cardSim: { cards: VirtualCard[]; control: CardControl } | undefined;
  if (opts.card !== false) {
    try {
      const cards = await startCards(stateDir, port(3));
      cardSim = cards;
      stops.push(() => stopCards(cards));
    } catch (e) {
      opts.warn?.(
        `no virtual card: ${(e as Error).message} (is pcscd with vsmartcard-vpcd running? ./scripts/sandbox.sh starts it)`,
      );
    }
  }

  const gatewayState = join(stateDir, 'gateway');
  const configFile = join(stateDir, 'gateway.json');
  writeFileAtomic(
    configFile,
    JSON.stringify(
      {
        stateDir: gatewayState,
        log: { level: 'info' },
        api: { host: '127.0.0.1', port: port(2) },
        // The admin page on loopback only here: the sandbox's initial secret is printed on the READY line.
        admin: { host: '127.0.0.1', port: port(6) },
        health: { port: port(7) },
        central: {
          url: `https://127.0.0.1:${line.port}`,
          caFile: join(stateDir, 'pki', 'central-ca.pem'),
          certFile: join(stateDir, 'pki', 'gateway-client.pem'),
          keyFile: join(stateDir, 'pki', 'gateway-client.key'),
        },
        reader: { jpkiCaFile: join(stateDir, 'pki', 'jpki-ca.pem') },
        // An idle line is probed every 2 s (a clinic's default is 30 s), so cutting it with
        // `onshi sim line down` shows on the admin page and in `onshi status` within seconds.
        outage: { probeIntervalMs: 2000, failureThreshold: 2 },
      },
      null,
      2,
    ) + '\n',
  );

  const token = await addSandboxClient(configFile);
  const logFile = join(stateDir, 'gateway.log');
  const launch = (): Promise<RunningGateway> =>
    runGateway(
      spawn(process.execPath, [BIN, 'start', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] }),
      logFile,
    );
  let running = await launch();
  stops.push(async () => {
    await stopGateway(running.gateway);
    running.logStream.end();
  });
  const { wsPort, adminPort, healthPort } = running;

  const ready: Record<string, string> = {
    ws: `ws://127.0.0.1:${wsPort}/v1`,
    token,
    central: central.url,
    control: central.controlUrl,
    line: lineControl.url,
    ...(cardSim ? { cards: cardSim.control.url } : {}),
    ...(adminPort ? { admin: `https://localhost:${adminPort}/` } : {}),
    // Until the first login changes it (the page forces that), the initial secret sits in this file.
    ...(adminPort ? adminSecretOf(gatewayState) : {}),
    ...(healthPort ? { health: `http://127.0.0.1:${healthPort}/status` } : {}),
    state: stateDir,
    config: configFile,
    log: logFile,
  };
  opts.log?.(readyLine(ready));

  return {
    ready,
    central,
    line,
    get gateway() {
      return running.gateway;
    },
    async restartGateway() {
      running.logStream.end();
      running = await launch();
      return running.gateway;
    },
    cards: cardSim?.cards ?? [],
    close,
  };
}
