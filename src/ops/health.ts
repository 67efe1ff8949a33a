/**
 * Health and metrics over plain HTTP on loopback only: /healthz (the process answers), /readyz
 * (ready to serve, from the StatusSource), /metrics (Prometheus) and /status (the JSON snapshot
 * `onshi status` prints). Nothing here needs a login, so nothing here may listen beyond loopback,
 * and a request whose Host is not a loopback name is refused (a web page in a local browser could
 * otherwise reach it through DNS rebinding).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OnshiError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { CONTENT_TYPE, type GatewayMetrics } from './metrics.js';
import type { GatewayStatus, StatusSource } from './status.js';

export type HealthErrorCode = 'HEALTH_NOT_LOOPBACK' | 'HEALTH_STATUS_TIMEOUT';

export interface HealthServerOptions {
  /** 0 = any free port */
  port: number;
  /** 127.0.0.1 (default) or ::1; anything else is refused */
  host?: '127.0.0.1' | '::1';
  status: StatusSource;
  metrics?: GatewayMetrics;
  logger?: Logger;
  /** how long /readyz and /status wait for the StatusSource (default 2 s) */
  statusTimeoutMs?: number;
}

const LOOPBACK_HOST = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/i;

export class HealthServer {
  private readonly server: Server;

  private constructor(private readonly opts: HealthServerOptions) {
    this.server = createServer((req, res) => void this.route(req, res));
    this.server.on('clientError', (_e, socket) => socket.destroy());
  }

  static async start(opts: HealthServerOptions): Promise<HealthServer> {
    const host = opts.host ?? '127.0.0.1';
    if (host !== '127.0.0.1' && host !== '::1') {
      throw new OnshiError<HealthErrorCode>(
        'HEALTH_NOT_LOOPBACK',
        `the health endpoints listen on loopback only, not ${String(host)}`,
      );
    }
    const s = new HealthServer(opts);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(opts.port, host, () => {
        s.server.off('error', reject);
        resolve();
      });
    });
    return s;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const json = (status: number, body: unknown): void =>
      send(status, 'application/json; charset=utf-8', JSON.stringify(body) + '\n');
    if (!LOOPBACK_HOST.test(req.headers.host ?? '')) return send(421, 'text/plain', 'misdirected request\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    try {
      switch (path) {
        case '/healthz':
          // Answering at all proves the event loop runs; nothing else is asked, so a slow store
          // or a dead line never gets the process restarted.
          return send(200, 'text/plain; charset=utf-8', 'ok\n');
        case '/readyz': {
          const s = await this.snapshot();
          return json(s.ready ? 200 : 503, { ready: s.ready, checks: s.checks });
        }
        case '/status':
          return json(200, await this.snapshot());
        case '/metrics':
          if (!this.opts.metrics) return send(404, 'text/plain', 'metrics are off\n');
          return send(200, CONTENT_TYPE, await this.opts.metrics.render());
        default:
          return send(404, 'text/plain', 'not found\n');
      }
    } catch (e) {
      this.opts.logger?.warn('health endpoint failed', {
        event: 'health_error',
        path,
        error: e instanceof OnshiError ? e.code : (e as Error).message,
      });
      if (path === '/readyz')
        return json(503, { ready: false, error: e instanceof OnshiError ? e.code : 'STATUS_FAILED' });
      return json(500, {
        error: e instanceof OnshiError ? e.toJSON() : { code: 'INTERNAL', message: 'status unavailable' },
      });
    }
  }

  private snapshot(): Promise<GatewayStatus> {
    const ms = this.opts.statusTimeoutMs ?? 2000;
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      Promise.resolve(this.opts.status.status()),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new OnshiError<HealthErrorCode>('HEALTH_STATUS_TIMEOUT', `status did not answer within ${ms} ms`, {
                retryable: true,
              }),
            ),
          ms,
        );
      }),
    ]).finally(() => clearTimeout(timer));
  }
}
