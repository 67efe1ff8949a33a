/**
 * Test harness: the central simulator and a real gateway (in-process) on ephemeral loopback ports,
 * with a real state directory, the sandbox PKI and a client token.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CentralSim } from '../../src/sim/central/server.js';
import { ensureSandboxPki, REVOKED_CARD_SERIAL, type SandboxPki } from '../../src/sim/pki.js';
import { ClientStore } from '../../src/api/tokens.js';
import { validateConfig, type GatewayConfig } from '../../src/core/config.js';
import { startGateway, type Gateway } from '../../src/daemon/index.js';
import { GatewayClient } from '../../src/client/index.js';
import { captureLogger } from './logger.js';

/**
 * One PKI for the whole run (RSA key generation is slow); ensureSandboxPki is idempotent and locked.
 * Outside a file's own reader TMPDIR (own-reader.ts), so every file shares it.
 */
export const SHARED_PKI_DIR = join(process.env['ONSHI_TEST_SHARED_TMP'] ?? tmpdir(), 'onshi-test-pki');
export function sharedPki(): Promise<SandboxPki> {
  return ensureSandboxPki(SHARED_PKI_DIR);
}

export function pkiFiles(dir = SHARED_PKI_DIR): {
  caFile: string;
  certFile: string;
  keyFile: string;
  jpkiCaFile: string;
} {
  return {
    caFile: join(dir, 'pki', 'central-ca.pem'),
    certFile: join(dir, 'pki', 'gateway-client.pem'),
    keyFile: join(dir, 'pki', 'gateway-client.key'),
    jpkiCaFile: join(dir, 'pki', 'jpki-ca.pem'),
  };
}

export interface Harness {
  central: CentralSim;
  gateway: Gateway;
  config: GatewayConfig;
  stateDir: string;
  wsUrl: string;
  token: string;
  clients: ClientStore;
  /** every log line the gateway wrote */
  logs: string[];
  connect(token?: string): Promise<GatewayClient>;
  close(): Promise<void>;
}

export function gatewayConfig(
  stateDir: string,
  centralUrl: string,
  overrides: {
    api?: Partial<GatewayConfig['api']>;
    central?: Partial<GatewayConfig['central']>;
    reader?: Partial<GatewayConfig['reader']>;
    batch?: Partial<GatewayConfig['batch']>;
    fileExchange?: Partial<GatewayConfig['fileExchange']>;
  } = {},
): GatewayConfig {
  const f = pkiFiles();
  return validateConfig({
    stateDir,
    log: { level: 'debug' },
    api: { host: '127.0.0.1', port: 0, ...overrides.api },
    admin: { host: '127.0.0.1', port: 0 },
    health: { port: 0 },
    central: {
      url: centralUrl,
      caFile: f.caFile,
      certFile: f.certFile,
      keyFile: f.keyFile,
      timeoutMs: 5000,
      ...overrides.central,
    },
    reader: { enabled: false, jpkiCaFile: f.jpkiCaFile, ...overrides.reader },
    ...(overrides.batch ? { batch: overrides.batch } : {}),
    ...(overrides.fileExchange ? { fileExchange: overrides.fileExchange } : {}),
  });
}

export async function startHarness(overrides: Parameters<typeof gatewayConfig>[2] = {}): Promise<Harness> {
  const pki = await sharedPki();
  const central = await CentralSim.start({ pki, revokedSerials: [REVOKED_CARD_SERIAL] });
  const stateDir = mkdtempSync(join(tmpdir(), 'onshi-gw-'));
  const config = gatewayConfig(stateDir, central.url, overrides);
  const clients = new ClientStore(stateDir);
  const { token } = clients.add('test-client');
  const { logger, lines: logs } = captureLogger('debug');
  const gateway = await startGateway(config, { logger });
  const wsUrl = `ws://127.0.0.1:${gateway.wsPort}/v1`;
  const opened: GatewayClient[] = [];
  return {
    central,
    gateway,
    config,
    stateDir,
    wsUrl,
    token,
    clients,
    logs,
    async connect(t = token) {
      const c = await GatewayClient.connect(wsUrl, t);
      opened.push(c);
      return c;
    },
    async close() {
      await Promise.all(opened.map((c) => c.close().catch(() => {})));
      await gateway.close();
      await central.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/**
 * Polls `cond` every 20 ms; throws naming `what` if it is still false after `timeoutMs`. The
 * ceiling only decides how soon a failure shows, so its default is generous for a loaded machine.
 */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
