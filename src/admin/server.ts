/**
 * The admin page: HTTPS with the gateway's own certificate, login required for everything but the
 * login page and the static assets, a forced password change while the initial secret is in use,
 * CSRF tokens on every POST, strict security headers (no inline script or style).
 *
 * This module is the server's lifecycle and the error handling around a request; the routes are in
 * routes.ts, the live dashboard in live-dashboard.ts, the HTTP plumbing (cookies, bodies,
 * multipart, security headers) in http/.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayConfig } from '../core/config.js';
import { isOnshiError, OnshiError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { HttpsServer } from '../ops/https-server.js';
import type { TlsIdentity } from '../ops/tls-identity.js';
import { type AdminAccounts, LoginLimiter, SessionStore } from './auth.js';
import type { AdminBackend } from './backend.js';
import { toReq, send } from './http/request.js';
import { SECURITY_HEADERS } from './http/security.js';
import { t } from './i18n.js';
import { LiveDashboard } from './live-dashboard.js';
import { AdminRoutes, pageContext } from './routes.js';
import * as v from './views.js';
import type { KioskDeskView } from './kiosk-pairing.js';

export type { AdminServerErrorCode } from './http/body.js';
export { parseMultipart } from './http/multipart.js';

export interface AdminServerOptions {
  host: string;
  port: number;
  tls: Pick<TlsIdentity, 'keyPem' | 'certPem'>;
  backend: AdminBackend;
  accounts: AdminAccounts;
  logger: Logger;
  sessionIdleMs: number;
  sessionMaxMs: number;
  loginMaxFailures: number;
  loginLockoutMs: number;
  /** the kiosks' staff side (kiosk-pairing.ts); absent when kiosk.enabled is false */
  kiosk?: KioskDeskView;
  /** how often the live dashboard is refreshed (default 1 s) */
  liveIntervalMs?: number;
  now?: () => number;
}

export class AdminServer {
  private readonly server: HttpsServer;
  private readonly live: LiveDashboard;
  private readonly routes: AdminRoutes;

  private constructor(private readonly o: AdminServerOptions) {
    const now = o.now ?? Date.now;
    const sessions = new SessionStore({ idleMs: o.sessionIdleMs, maxMs: o.sessionMaxMs, now });
    const limiter = new LoginLimiter({ maxFailures: o.loginMaxFailures, lockoutMs: o.loginLockoutMs, now });
    this.live = new LiveDashboard(o, sessions);
    this.routes = new AdminRoutes(o, sessions, limiter, this.live);
    this.server = new HttpsServer({
      tls: o.tls,
      handler: (req, res) => void this.handle(req, res),
    });
  }

  static async start(o: AdminServerOptions): Promise<AdminServer> {
    const s = new AdminServer(o);
    await s.server.listen(o.port, o.host);
    s.live.start(o.liveIntervalMs ?? 1000);
    return s;
  }

  get port(): number {
    return this.server.port;
  }

  /** After a certificate renewal: new connections get the new certificate, open ones keep theirs. */
  updateTls(tls: Pick<TlsIdentity, 'keyPem' | 'certPem'>): void {
    this.server.updateTls(tls);
  }

  async close(): Promise<void> {
    this.live.stop();
    await this.server.close();
  }

  /** Every request: the security headers, the routes, and one answer for any failure (no stack, a code). */
  private async handle(raw: IncomingMessage, res: ServerResponse): Promise<void> {
    for (const [k, val] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, val);
    const req = toReq(raw, res);
    try {
      await this.routes.route(req);
    } catch (e) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (isOnshiError(e, 'ADMIN_BODY_TOO_LARGE'))
        return send(req, 413, v.errorPage(pageContext(req), 'Error', e.message));
      this.o.logger.warn('admin request failed', {
        event: 'admin_error',
        path: req.path,
        code: e instanceof OnshiError ? e.code : 'INTERNAL',
        error: (e as Error).message,
      });
      send(
        req,
        500,
        v.errorPage(
          pageContext(req),
          'Error',
          t(req.lang, 'err.generic', { message: e instanceof OnshiError ? e.code : 'INTERNAL' }),
        ),
      );
    }
  }
}

/** What the daemon needs to start the page from its config. */
export interface StartAdminOptions {
  config: GatewayConfig;
  backend: AdminBackend;
  accounts: AdminAccounts;
  tls: TlsIdentity;
  logger: Logger;
  kiosk?: KioskDeskView;
  /** the installer's initial secret (systemd credential admin-initial-secret), if passed */
  initialSecret?: string;
}

/**
 * Creates the admin account on first start (logging where the initial secret is, never the secret)
 * and starts the page. Returns undefined when admin.enabled is false.
 */
export async function startAdmin(o: StartAdminOptions): Promise<AdminServer | undefined> {
  const a = o.config.admin;
  if (!a.enabled) return undefined;
  const init = await o.accounts.ensureInitialized(o.initialSecret);
  if (init)
    o.logger.warn('admin account created: log in with the initial secret and change it', {
      event: 'admin_initialized',
      file: init.file,
    });
  return AdminServer.start({
    host: a.host,
    port: a.port,
    tls: o.tls,
    backend: o.backend,
    accounts: o.accounts,
    logger: o.logger,
    sessionIdleMs: a.sessionIdleMinutes * 60_000,
    sessionMaxMs: a.sessionMaxHours * 3_600_000,
    loginMaxFailures: a.loginMaxFailures,
    loginLockoutMs: a.loginLockoutSeconds * 1000,
    ...(o.kiosk && o.config.kiosk.enabled ? { kiosk: o.kiosk } : {}),
  });
}
