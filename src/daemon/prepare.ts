/**
 * What the daemon checks and reads before it starts anything: a listen address that would send
 * tokens in clear is refused; central's CA bundle, the client certificate and key, the optional
 * password and the JPKI CA bundle are read once, synchronously; the token file is read. A refusal
 * here stops the start before any service runs, so it leaves nothing behind.
 */
import type { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BlockList, isIP, isIPv6 } from 'node:net';
import { OnshiError } from '../core/errors.js';
import type { GatewayConfig } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { institutionCodeWarning } from '../oqs/index.js';
import { loadCaBundle } from '../checks/card-cert.js';
import { ClientStore } from '../api/tokens.js';

export type StartupErrorCode = 'STARTUP_FILE_MISSING' | 'STARTUP_INSECURE_LISTEN' | 'STARTUP_LISTEN_ON_LINE';

export interface Secrets {
  centralCa: Buffer;
  centralCert: Buffer;
  centralKey: Buffer;
  password?: string;
  jpkiCas: X509Certificate[];
}

/**
 * A secret file named in the config, or — under systemd — a credential passed with LoadCredential=
 * (preferred: the key never sits in a world-readable path and is not in the unit's environment).
 */
export function readSecret(configured: string, credentialName: string, what: string): Buffer {
  const credDir = process.env.CREDENTIALS_DIRECTORY;
  if (!configured && credDir && existsSync(join(credDir, credentialName)))
    return readFileSync(join(credDir, credentialName));
  if (!configured)
    throw new OnshiError<StartupErrorCode>(
      'STARTUP_FILE_MISSING',
      `${what} is not configured (set it in the config file or pass the ${credentialName} credential)`,
    );
  try {
    return readFileSync(configured);
  } catch (e) {
    throw new OnshiError<StartupErrorCode>(
      'STARTUP_FILE_MISSING',
      `cannot read ${what} at ${configured}: ${(e as NodeJS.ErrnoException).code}`,
    );
  }
}

export function loadSecrets(config: GatewayConfig): Secrets {
  const c = config.central;
  return {
    centralCa: readSecret(c.caFile, 'central-ca.pem', 'the central CA bundle (central.caFile)'),
    centralCert: readSecret(c.certFile, 'central-client.pem', 'the client certificate (central.certFile)'),
    centralKey: readSecret(c.keyFile, 'central-client.key', 'the client key (central.keyFile)'),
    ...(c.passwordFile ? { password: readFileSync(c.passwordFile, 'utf8').trim() } : {}),
    jpkiCas: loadCaBundle(config.reader.jpkiCaFile),
  };
}

/** The admin page's first-start secret, when systemd passes it as a credential. */
export function adminInitialSecret(): string | undefined {
  const credDir = process.env.CREDENTIALS_DIRECTORY;
  const file = credDir ? join(credDir, 'admin-initial-secret') : undefined;
  return file && existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** Tokens and PINs must not cross the clinic LAN in clear: plain ws only on loopback. */
export function apiUsesTls(config: GatewayConfig): boolean {
  return config.api.tls === 'on' || (config.api.tls === 'auto' && !LOOPBACK.test(config.api.host));
}

export interface Prepared {
  secrets: Secrets;
  clients: ClientStore;
}

const ANY_ADDRESS = /^(0\.0\.0\.0|::|\[::\]|::0|)$/;

/**
 * ipsec mode: nothing of the box may listen where the tunnel arrives. The listeners (the API and the
 * admin page; health is loopback only, the file exchange is folders) must not bind to every address
 * nor to an address of our side of the tunnel (line.localTs). The names of those that do.
 */
export function listenersOnLine(config: GatewayConfig): string[] {
  if (config.line.mode !== 'ipsec') return [];
  const inner = new BlockList();
  for (const cidr of config.line.localTs) {
    const [addr = '', bits] = cidr.split('/');
    const type = isIPv6(addr) ? 'ipv6' : 'ipv4';
    if (isIP(addr)) inner.addSubnet(addr, bits === undefined ? (type === 'ipv6' ? 128 : 32) : Number(bits), type);
  }
  const hosts: [string, string, boolean][] = [
    ['api.host', config.api.host, true],
    ['admin.host', config.admin.host, config.admin.enabled],
  ];
  return hosts
    .filter(
      ([, host, on]) =>
        on && (ANY_ADDRESS.test(host) || (isIP(host) > 0 && inner.check(host, isIPv6(host) ? 'ipv6' : 'ipv4'))),
    )
    .map(([name, host]) => `${name} ${host || '(every address)'}`);
}

/** The refusals and reads that come before any start step. */
export function prepare(config: GatewayConfig, logger: Logger): Prepared {
  const onLine = listenersOnLine(config);
  if (onLine.length > 0)
    throw new OnshiError<StartupErrorCode>(
      'STARTUP_LISTEN_ON_LINE',
      `${onLine.join(' and ')} would accept connections arriving through the IPsec tunnel; bind to the clinic LAN address (or loopback) instead`,
      { details: { listeners: onLine } },
    );
  if (!apiUsesTls(config) && !LOOPBACK.test(config.api.host))
    throw new OnshiError<StartupErrorCode>(
      'STARTUP_INSECURE_LISTEN',
      `api.host ${config.api.host} is not a loopback address and api.tls is off; tokens and PINs would cross the LAN in clear (set api.tls to auto or on)`,
    );
  const secrets = loadSecrets(config);
  // spec §9: the institution code's check-digit rule is unconfirmed, so a mismatch warns, never stops.
  const codeWarning = institutionCodeWarning(config.institutionCode);
  if (codeWarning) logger.warn(codeWarning, { event: 'institution_code_warning' });
  if (config.reader.enabled && secrets.jpkiCas.length === 0)
    logger.warn('no JPKI CA bundle configured: card certificates are checked by central only', {
      event: 'jpki_ca_missing',
    });
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  const clients = new ClientStore(config.stateDir);
  clients.list(); // fail now, not at the first connection, if the file is corrupt
  return { secrets, clients };
}
