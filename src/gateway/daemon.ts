/**
 * The daemon: starts its parts in order (state → central client → API), tells systemd when it is
 * ready, and on SIGTERM answers what is in flight before it stops.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OnshiError } from '../errors.js';
import { institutionCodeWarning } from '../oqs/index.js';
import { CentralClient } from '../sync/central-client.js';
import type { ApiRequest } from './api-schema.js';
import { ClientStore } from './clients.js';
import type { GatewayConfig } from './config.js';
import { inquireByNumbers } from './inquiry.js';
import { inquireByCard } from './card-inquiry.js';
import { loadCaBundle } from './card-cert.js';
import { PinBroker } from './pin-broker.js';
import { ReaderManager } from '../reader/index.js';
import { createLogger, type Logger } from './logger.js';
import { createNotifier, type Notifier } from './sd-notify.js';
import { type RequestContext, WsApiServer } from './ws-server.js';

export interface Gateway {
  readonly wsPort: number;
  readonly config: GatewayConfig;
  close(): Promise<void>;
}

export type StartupErrorCode = 'STARTUP_FILE_MISSING' | 'STARTUP_INSECURE_LISTEN';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/**
 * A secret file named in the config, or — under systemd — a credential passed with LoadCredential=
 * (preferred: the key never sits in a world-readable path and is not in the unit's environment).
 */
function readSecret(configured: string, credentialName: string, what: string): Buffer {
  const credDir = process.env.CREDENTIALS_DIRECTORY;
  if (!configured && credDir && existsSync(join(credDir, credentialName))) return readFileSync(join(credDir, credentialName));
  if (!configured) throw new OnshiError<StartupErrorCode>('STARTUP_FILE_MISSING', `${what} is not configured (set it in the config file or pass the ${credentialName} credential)`);
  try {
    return readFileSync(configured);
  } catch (e) {
    throw new OnshiError<StartupErrorCode>('STARTUP_FILE_MISSING', `cannot read ${what} at ${configured}: ${(e as NodeJS.ErrnoException).code}`);
  }
}

export async function startGateway(config: GatewayConfig, opts: { logger?: Logger; notifier?: Notifier } = {}): Promise<Gateway> {
  const logger = opts.logger ?? createLogger({ level: config.log.level });
  // Tokens (and, with the card flow, PINs) must not cross the clinic LAN in clear: until the API
  // serves TLS, it listens on loopback only.
  if (!LOOPBACK.test(config.api.host)) {
    throw new OnshiError<StartupErrorCode>('STARTUP_INSECURE_LISTEN', `api.host ${config.api.host} is not a loopback address; the WebSocket API has no TLS yet, so it only listens on loopback`);
  }
  const notifier = opts.notifier ?? createNotifier();
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  // spec §9: the institution code's check-digit rule is unconfirmed, so a mismatch warns, never stops.
  const codeWarning = institutionCodeWarning(config.institutionCode);
  if (codeWarning) logger.warn(codeWarning, { event: 'institution_code_warning' });

  const clients = new ClientStore(config.stateDir);
  clients.list(); // fail now, not at the first connection, if the file is corrupt

  const passwordFile = config.central.passwordFile;
  const central = new CentralClient({
    url: config.central.url,
    ca: readSecret(config.central.caFile, 'central-ca.pem', 'the central CA bundle (central.caFile)'),
    cert: readSecret(config.central.certFile, 'central-client.pem', 'the client certificate (central.certFile)'),
    key: readSecret(config.central.keyFile, 'central-client.key', 'the client key (central.keyFile)'),
    ...(config.central.servername ? { servername: config.central.servername } : {}),
    userId: config.central.userId,
    ...(passwordFile ? { password: readFileSync(passwordFile, 'utf8').trim() } : {}),
    timeoutMs: config.central.timeoutMs,
  });

  // The reader manager recovers by itself when pcscd comes and goes, so the daemon starts without it.
  let reader: ReaderManager | undefined;
  if (config.reader.enabled) {
    const wanted = config.reader.readerName;
    reader = new ReaderManager(wanted ? { readerFilter: (name) => name.includes(wanted) } : {});
    reader.on('state', (st) => logger.info('reader state', { event: 'reader_state', pcsc: st.pcsc, readers: st.readers.map((r) => ({ name: r.name, card: r.cardPresent })) }));
    await reader.start();
  }
  const jpkiCas = loadCaBundle(config.reader.jpkiCaFile);
  if (config.reader.enabled && jpkiCas.length === 0) {
    logger.warn('no JPKI CA bundle configured: card certificates are checked by central only', { event: 'jpki_ca_missing' });
  }
  const pins = new PinBroker();

  const handle = async (req: ApiRequest, ctx: RequestContext): Promise<Record<string, unknown> & { type: string }> => {
    switch (req.type) {
      case 'ping':
        return { type: 'pong' };
      case 'inquiry.numbers': {
        const input = { query: req.query, requestId: req.id, deadline: ctx.deadline, ...(req.confirmationDate ? { confirmationDate: req.confirmationDate } : {}) };
        return { type: 'inquiry.result', result: await inquireByNumbers({ central, institutionCode: config.institutionCode }, input) };
      }
      case 'inquiry.card': {
        if (!reader) throw new OnshiError('READER_DISABLED', 'this gateway has no card reader enabled (reader.enabled is false)');
        const result = await inquireByCard({ reader, central, institutionCode: config.institutionCode, jpkiCas, pins }, {
          mode: req.mode, limitConsent: req.limitConsent, inquiryId: req.id, connectionId: ctx.connectionId,
          deadline: ctx.deadline, signal: ctx.signal, progress: ctx.progress,
          ...(req.confirmationDate ? { confirmationDate: req.confirmationDate } : {}),
          ...(req.readerName ? { readerName: req.readerName } : {}),
        });
        return { type: 'inquiry.result', result };
      }
      case 'pin.submit':
        pins.submit(ctx.connectionId, req.inquiryId, req.pin, req.confirmLastTry);
        return { type: 'pin.accepted', inquiryId: req.inquiryId };
      case 'inquiry.cancel':
        throw new OnshiError('INTERNAL', 'inquiry.cancel is handled by the WebSocket server');
    }
  };

  let ws: WsApiServer;
  try {
    ws = await WsApiServer.start({ ...config.api, clients, logger, handle });
  } catch (e) {
    central.close();
    await reader?.stop();
    throw e;
  }
  logger.info('ready', { event: 'ready', wsPort: ws.port, wsHost: config.api.host });
  await notifier.ready(`serving on ${config.api.host}:${ws.port}`);
  notifier.startWatchdog();

  let closing: Promise<void> | undefined;
  return {
    wsPort: ws.port,
    config,
    close() {
      closing ??= (async () => {
        logger.info('stopping', { event: 'stopping' });
        await notifier.stopping('answering in-flight requests');
        notifier.stopWatchdog();
        await ws.close(config.api.shutdownGraceMs);
        await reader?.stop();
        central.close();
        logger.info('stopped', { event: 'stopped' });
      })();
      return closing;
    },
  };
}
