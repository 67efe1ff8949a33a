/**
 * The `line` start step: the line service (ipsec: strongSwan through VICI; both modes: the path
 * check), made before anything starts so that bad ipsec settings refuse the start, and what its
 * tunnel edges log, publish and audit. Its wiring to the LinkMonitor is in check-parts.ts.
 */
import type { GatewayStore } from '../cache/index.js';
import type { GatewayConfig } from '../core/config.js';
import { codeOf } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { LineService } from '../sync/line/service.js';
import type { EventHub } from '../protocol/events.js';
import type { Secrets } from './prepare.js';

export function createLine(config: GatewayConfig, secrets: Secrets): LineService {
  const c = config.central;
  return new LineService({
    settings: config.line,
    centralUrl: c.url,
    tls: {
      ca: secrets.centralCa,
      cert: secrets.centralCert,
      key: secrets.centralKey,
      minVersion: 'TLSv1.2',
      ...(c.servername ? { servername: c.servername } : {}),
    },
  });
}

/** Tunnel ups and downs in the log, the `line` topic (`line.tunnel`) and the audit log, with strongSwan's reason. */
export function reportLine(line: LineService, o: { logger: Logger; events: EventHub; store: GatewayStore }): void {
  const { logger, events, store } = o;
  line.on('tunnel', (c, s) => {
    const word = c.up ? 'up' : 'down';
    const fields = { event: 'line_tunnel', up: c.up, reason: c.reason, ike: s.ike, child: s.child };
    if (c.up) logger.info(`tunnel up: ${c.reason}`, fields);
    else logger.warn(`tunnel down: ${c.reason}`, fields);
    events.publish('line', 'line.tunnel', { ...c, ike: s.ike, child: s.child, since: s.since }, { retain: true });
    store.audit
      .append({
        kind: 'admin',
        actor: 'system',
        action: `line.tunnel.${word}`,
        target: c.reason.slice(0, 128),
        outcome: word,
      })
      .catch((e: unknown) =>
        logger.error('could not audit a tunnel change', { event: 'line_audit_failed', code: codeOf(e) }),
      );
  });
  line.on('path', (p) => {
    if (p.ok) return;
    const hop = p.hops.find((h) => h.hop === p.failing);
    logger.warn(`the path to central fails at ${p.failing}: ${hop?.detail ?? ''}`, {
      event: 'line_path',
      failing: p.failing,
      detail: hop?.detail,
    });
  });
  if (line.tunnel) {
    line.tunnel.on('error', (e) =>
      logger.warn(`the IPsec line: ${e.message}`, { event: 'line_ipsec_error', code: codeOf(e) }),
    );
  }
}
