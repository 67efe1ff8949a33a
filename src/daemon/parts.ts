/**
 * The first start steps: the support bundle's log ring, the store, the central client, the card
 * reader and the token audit. Each `…Part` is a start step (lifecycle.ts: part) that makes and
 * starts its part when it starts, and gives it back when it stops.
 */
import winston from 'winston';
import { GatewayStore } from '../cache/index.js';
import type { GatewayConfig } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { CentralClient } from '../sync/central-client.js';
import { ReaderManager } from '../reader/index.js';
import type { EventHub } from '../protocol/events.js';
import type { StatusAlert } from '../ops/status.js';
import { LogRing } from '../ops/support-bundle.js';
import { watchTokenChanges } from '../api/token-audit.js';
import type { ClientStore } from '../api/tokens.js';
import { codeOf } from '../core/errors.js';
import { type Part, part } from './lifecycle.js';
import type { Secrets } from './prepare.js';

/** The support bundle's recent log lines (the service user may not read the journal). */
export function logRingPart(logger: Logger): Part<LogRing> {
  const ring = new LogRing();
  const transport = new winston.transports.Stream({ stream: ring, level: 'info' });
  return part(
    'log-ring',
    () => {
      logger.add(transport);
      return ring;
    },
    () => void logger.remove(transport),
  );
}

export const storePart = (config: GatewayConfig, o: Parameters<typeof openStore>[1]): Part<GatewayStore> =>
  part(
    'store',
    () => openStore(config, o),
    (s) => s.close(),
  );

export const centralPart = (config: GatewayConfig, secrets: Secrets): Part<CentralClient> =>
  part(
    'central',
    () => createCentral(config, secrets),
    (c) => c.close(),
  );

export const readerPart = (
  config: GatewayConfig,
  o: Parameters<typeof startReader>[1],
): Part<ReaderManager | undefined> =>
  part(
    'reader',
    () => startReader(config, o),
    (r) => r?.stop(),
  );

/** The audit trail's token entries: what changed in clients.json since the last run, then on every change. */
export const tokenAuditPart = (clients: ClientStore, store: GatewayStore, logger: Logger): Part<() => void> =>
  part(
    'token-audit',
    () =>
      watchTokenChanges({
        clients,
        getMeta: (k) => store.meta.get(k),
        setMeta: (k, v) => store.meta.set(k, v),
        append: (e) => store.audit.append(e),
        onError: (e) => logger.error('could not audit token changes', { event: 'token_audit_failed', code: codeOf(e) }),
      }),
    (stop) => stop(),
  );

/**
 * The store first: the outage path cannot promise anything without it. A corrupt file is moved
 * aside and a fresh one created (startupAlerts says so); only an unusable state dir stops us.
 */
async function openStore(
  config: GatewayConfig,
  o: { logger: Logger; events: EventHub; alerts: StatusAlert[] },
): Promise<GatewayStore> {
  const store = await GatewayStore.open({ dir: config.stateDir, outboxMax: config.outage.outboxMax });
  o.alerts.push(...store.startupAlerts);
  for (const a of store.startupAlerts) {
    o.logger.error(a.message, { event: 'store_alert', code: a.code, ...(a.details ?? {}) });
    o.events.publish('outbox', 'store.alert', { ...a }, { retain: true });
  }
  return store;
}

function createCentral(config: GatewayConfig, secrets: Secrets): CentralClient {
  const c = config.central;
  return new CentralClient({
    url: c.url,
    ca: secrets.centralCa,
    cert: secrets.centralCert,
    key: secrets.centralKey,
    ...(c.servername ? { servername: c.servername } : {}),
    userId: c.userId,
    ...(secrets.password !== undefined ? { password: secrets.password } : {}),
    timeoutMs: c.timeoutMs,
  });
}

/**
 * The card reader (undefined when reader.enabled is false). It recovers by itself when pcscd comes
 * and goes, so the daemon starts without it.
 */
async function startReader(
  config: GatewayConfig,
  o: { logger: Logger; events: EventHub },
): Promise<ReaderManager | undefined> {
  if (!config.reader.enabled) return undefined;
  const wanted = config.reader.readerName;
  const reader = new ReaderManager(wanted ? { readerFilter: (name) => name.includes(wanted) } : {});
  reader.on('state', (st) => {
    const readers = st.readers.map((r) => ({ name: r.name, card: r.cardPresent }));
    o.logger.info('reader state', { event: 'reader_state', pcsc: st.pcsc, readers });
    o.events.publish('reader', 'reader.state', { pcsc: st.pcsc, readers }, { retain: true });
  });
  try {
    await reader.start();
  } catch (e) {
    await reader.stop(); // a half-made start gives back what it had opened
    throw e;
  }
  return reader;
}

/**
 * The gateway's starts and stops in the audit chain, with what the start found (the store's alerts,
 * certificates within 30 days of expiry): the admin page's event log reads them back.
 */
export function lifeAuditPart(
  store: GatewayStore,
  o: { version: string; logger: Logger; certificates: readonly { name: string; notAfter: string }[] },
): Part<void> {
  const append = (action: string, target?: string): Promise<unknown> =>
    store.audit
      .append({ kind: 'admin', actor: 'system', action, ...(target ? { target } : {}) })
      .catch((e: unknown) =>
        o.logger.error('could not audit a start or stop', { event: 'life_audit_failed', action, code: codeOf(e) }),
      );
  return part(
    'life-audit',
    async () => {
      await append('gateway.start', o.version.slice(0, 128));
      for (const a of store.startupAlerts) await append('store.alert', a.code);
      const now = Date.now();
      for (const c of o.certificates) {
        const days = Math.floor((Date.parse(c.notAfter) - now) / 86_400_000);
        if (days < 30) await append('cert.warning', `${c.name}:${days}`);
      }
    },
    () => append('gateway.stop').then(() => undefined),
  );
}
