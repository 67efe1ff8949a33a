/**
 * The admin page: HTTPS with the gateway's own certificate, login required for everything but the
 * login page and the static assets, a forced password change while the initial secret is in use,
 * CSRF tokens on every POST, strict security headers (no inline script or style).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { isOnshiError, OnshiError } from '../core/errors.js';
import type { GatewayConfig } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { TlsIdentity } from '../ops/tls-identity.js';
import { ADMIN_JS, ADMIN_CSS } from './assets.js';
import { ADMIN_USER, type AdminAccounts, type AdminSession, csrfMatches, LoginLimiter, SessionStore } from './auth.js';
import type { AdminBackend } from './backend.js';
import { isLang, type Lang, type MessageKey, t } from './i18n.js';
import * as v from './views.js';

export type AdminServerErrorCode = 'ADMIN_BODY_TOO_LARGE' | 'ADMIN_BAD_REQUEST';

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
  /** how often the live dashboard is refreshed (default 1 s) */
  liveIntervalMs?: number;
  now?: () => number;
}

const SESSION_COOKIE = '__Host-onshi_session';
const LOGIN_COOKIE = '__Host-onshi_login';
const LANG_COOKIE = '__Host-onshi_lang';
const FORM_LIMIT = 64 * 1024;
const UPLOAD_LIMIT = 16 * 1024 * 1024;

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'strict-transport-security': 'max-age=31536000',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on form posts,
  // which the origin check below would (rightly) refuse.
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), usb=(), payment=()',
  'cache-control': 'no-store',
};

interface Req {
  raw: IncomingMessage;
  res: ServerResponse;
  method: string;
  path: string;
  query: URLSearchParams;
  cookies: Map<string, string>;
  lang: Lang;
  remote: string;
  session?: AdminSession;
  sessionId?: string;
}

function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), decodeURIComponent(part.slice(i + 1).trim()));
  }
  return out;
}

const cookie = (name: string, value: string, maxAge?: number): string =>
  `${name}=${encodeURIComponent(value)}; Path=/; Secure; HttpOnly; SameSite=Strict${maxAge !== undefined ? `; Max-Age=${maxAge}` : ''}`;

/** A path on this site to return to (never another origin). */
const safeNext = (next: string | null): string => (next && /^\/(?!\/)[\w\-/.?=&%]*$/.test(next) ? next : '/');

export class AdminServer {
  private readonly server: Server;
  private readonly sessions: SessionStore;
  private readonly limiter: LoginLimiter;
  private readonly streams = new Set<{ res: ServerResponse; req: Req; last: string }>();
  private liveTimer: NodeJS.Timeout | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly o: AdminServerOptions) {
    const now = o.now ?? Date.now;
    this.sessions = new SessionStore({ idleMs: o.sessionIdleMs, maxMs: o.sessionMaxMs, now });
    this.limiter = new LoginLimiter({ maxFailures: o.loginMaxFailures, lockoutMs: o.loginLockoutMs, now });
    this.server = createServer(
      { key: o.tls.keyPem, cert: o.tls.certPem, minVersion: 'TLSv1.2' },
      (req, res) => void this.handle(req, res),
    );
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('tlsClientError', () => {
      /* browsers probing a self-signed certificate: not worth a log line */
    });
    this.server.headersTimeout = 20_000;
    this.server.requestTimeout = 120_000;
  }

  static async start(o: AdminServerOptions): Promise<AdminServer> {
    const s = new AdminServer(o);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(o.port, o.host, () => {
        s.server.off('error', reject);
        resolve();
      });
    });
    s.liveTimer = setInterval(() => void s.pushLive(), o.liveIntervalMs ?? 1000);
    s.liveTimer.unref();
    return s;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** After a certificate renewal: new connections get the new certificate, open ones keep theirs. */
  updateTls(tls: Pick<TlsIdentity, 'keyPem' | 'certPem'>): void {
    this.server.setSecureContext({ key: tls.keyPem, cert: tls.certPem, minVersion: 'TLSv1.2' });
  }

  async close(): Promise<void> {
    clearInterval(this.liveTimer);
    for (const s of this.streams) s.res.end();
    this.streams.clear();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
  }

  // --- plumbing -----------------------------------------------------------------------------------

  private async handle(raw: IncomingMessage, res: ServerResponse): Promise<void> {
    for (const [k, val] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, val);
    const url = new URL(raw.url ?? '/', 'https://admin.invalid');
    const cookies = parseCookies(raw.headers.cookie);
    const langCookie = cookies.get(LANG_COOKIE);
    const req: Req = {
      raw,
      res,
      method: raw.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      cookies,
      lang: isLang(langCookie) ? langCookie : 'ja',
      remote: (raw.socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, ''),
    };
    try {
      await this.route(req);
    } catch (e) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (isOnshiError(e, 'ADMIN_BODY_TOO_LARGE'))
        return this.send(req, 413, v.errorPage(this.ctx(req), 'Error', e.message));
      this.o.logger.warn('admin request failed', {
        event: 'admin_error',
        path: req.path,
        code: e instanceof OnshiError ? e.code : 'INTERNAL',
        error: (e as Error).message,
      });
      this.send(
        req,
        500,
        v.errorPage(
          this.ctx(req),
          'Error',
          t(req.lang, 'err.generic', { message: e instanceof OnshiError ? e.code : 'INTERNAL' }),
        ),
      );
    }
  }

  private send(
    req: Req,
    status: number,
    body: string,
    type = 'text/html; charset=utf-8',
    headers: Record<string, string | string[]> = {},
  ): void {
    req.res.writeHead(status, { 'content-type': type, ...headers });
    req.res.end(req.method === 'HEAD' ? undefined : body);
  }

  private redirect(req: Req, to: string, headers: Record<string, string | string[]> = {}): void {
    req.res.writeHead(303, { location: to, ...headers });
    req.res.end();
  }

  private ctx(req: Req): v.PageContext {
    return {
      lang: req.lang,
      path: req.path,
      ...(req.session ? { csrf: req.session.csrf, mustChange: req.session.mustChange } : {}),
    };
  }

  private readBody(req: Req, limit: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const declared = Number(req.raw.headers['content-length'] ?? 0);
      if (declared > limit) {
        reject(new OnshiError<AdminServerErrorCode>('ADMIN_BODY_TOO_LARGE', 'request body too large'));
        req.raw.resume();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      req.raw.on('data', (c: Buffer) => {
        size += c.length;
        if (size > limit) {
          reject(new OnshiError<AdminServerErrorCode>('ADMIN_BODY_TOO_LARGE', 'request body too large'));
          req.raw.destroy();
          return;
        }
        chunks.push(c);
      });
      req.raw.on('end', () => resolve(Buffer.concat(chunks)));
      req.raw.on('error', reject);
    });
  }

  private async form(req: Req): Promise<URLSearchParams> {
    return new URLSearchParams((await this.readBody(req, FORM_LIMIT)).toString('utf8'));
  }

  /**
   * Every POST: the Origin (when the browser sends one) must be this site, and the form's token must
   * be the session's. SameSite=Strict already keeps other sites' requests cookie-less; this is the
   * second lock, and the one that holds for a browser that ignores SameSite.
   */
  private sameOrigin(req: Req): boolean {
    const origin = req.raw.headers.origin;
    return origin === undefined || origin === `https://${req.raw.headers.host ?? ''}`;
  }

  private async audit(req: Req, action: string, outcome: 'ok' | 'refused' | 'failed', target?: string): Promise<void> {
    try {
      await this.o.backend.recordAudit({
        actor: req.session?.user ?? ADMIN_USER,
        action,
        outcome,
        remote: req.remote,
        ...(target ? { target } : {}),
      });
    } catch (e) {
      this.o.logger.warn('admin audit write failed', { event: 'admin_audit_failed', error: (e as Error).message });
    }
  }

  // --- routes -------------------------------------------------------------------------------------

  private async route(req: Req): Promise<void> {
    const { method, path } = req;
    if (method === 'GET' && path === '/assets/admin.css')
      return this.send(req, 200, ADMIN_CSS, 'text/css; charset=utf-8');
    if (method === 'GET' && path === '/assets/admin.js')
      return this.send(req, 200, ADMIN_JS, 'text/javascript; charset=utf-8');
    if (method === 'GET' && path === '/favicon.ico') return this.send(req, 204, '', 'image/x-icon');
    const lang = /^\/lang\/(ja|en)$/.exec(path);
    if (method === 'GET' && lang) {
      return this.redirect(req, safeNext(req.query.get('next')), {
        'set-cookie': cookie(LANG_COOKIE, lang[1]!, 365 * 86400),
      });
    }
    if (path === '/login') return method === 'POST' ? this.postLogin(req) : this.getLogin(req);

    req.sessionId = req.cookies.get(SESSION_COOKIE);
    const session = this.sessions.get(req.sessionId, this.o.accounts.generation);
    if (!session) {
      if (path.startsWith('/api/'))
        return this.send(req, 401, JSON.stringify({ error: 'ADMIN_SESSION_EXPIRED' }), 'application/json');
      return this.redirect(
        req,
        req.sessionId ? '/login?expired=1' : '/login',
        req.sessionId ? { 'set-cookie': cookie(SESSION_COOKIE, '', 0) } : {},
      );
    }
    req.session = session;

    if (method === 'POST') {
      // multipart bodies carry their token inside; that route checks it itself.
      if (path !== '/restore') {
        const form = await this.form(req);
        if (!this.sameOrigin(req) || !csrfMatches(session.csrf, form.get('_csrf'))) return this.csrfRefused(req, path);
        return this.post(req, form);
      }
      if (!this.sameOrigin(req)) return this.csrfRefused(req, path);
      return this.postRestore(req);
    }
    if (method !== 'GET' && method !== 'HEAD') return this.send(req, 405, 'method not allowed', 'text/plain');
    if (session.mustChange && path !== '/password') return this.redirect(req, '/password');
    return this.get(req);
  }

  private async csrfRefused(req: Req, path: string): Promise<void> {
    await this.audit(req, `POST ${path}`, 'refused', 'csrf');
    this.o.logger.warn('admin form without a valid CSRF token', {
      event: 'admin_csrf_refused',
      path,
      remote: req.remote,
    });
    return this.send(req, 403, v.errorPage(this.ctx(req), 'Forbidden', t(req.lang, 'csrf.refused')));
  }

  private getLogin(req: Req, opts: { error?: string; status?: number } = {}): void {
    const token = randomBytes(24).toString('base64url');
    const info = req.query.get('expired') ? t(req.lang, 'login.expired') : undefined;
    this.send(
      req,
      opts.status ?? 200,
      v.loginPage(this.ctx(req), token, { ...(opts.error ? { error: opts.error } : {}), ...(info ? { info } : {}) }),
      'text/html; charset=utf-8',
      { 'set-cookie': cookie(LOGIN_COOKIE, token, 1800) },
    );
  }

  private async postLogin(req: Req): Promise<void> {
    const form = await this.form(req);
    // Login CSRF: the form's token must match the cookie set with the form (double submit).
    const expected = req.cookies.get(LOGIN_COOKIE);
    if (!this.sameOrigin(req) || !expected || !csrfMatches(expected, form.get('_csrf')))
      return this.csrfRefused(req, '/login');
    const wait = this.limiter.retryAfterMs(req.remote);
    if (wait > 0) {
      await this.audit(req, 'login', 'refused', 'rate-limited');
      const seconds = Math.ceil(wait / 1000);
      req.res.setHeader('retry-after', String(seconds));
      return this.getLogin(req, { status: 429, error: t(req.lang, 'login.limited', { seconds }) });
    }
    const user = form.get('user') ?? ADMIN_USER;
    const account = await this.o.accounts.verify(user, form.get('password') ?? '');
    if (!account) {
      this.limiter.failure(req.remote);
      await this.audit(req, 'login', 'refused');
      this.o.logger.warn('admin login failed', { event: 'admin_login_failed', remote: req.remote });
      return this.getLogin(req, { status: 401, error: t(req.lang, 'login.failed') });
    }
    this.limiter.success(req.remote);
    this.sessions.destroy(req.cookies.get(SESSION_COOKIE));
    const { id, session } = this.sessions.create(account.name, account.mustChange, this.o.accounts.generation);
    req.session = session;
    await this.audit(req, 'login', 'ok');
    this.o.logger.info('admin login', { event: 'admin_login', remote: req.remote, mustChange: account.mustChange });
    return this.redirect(req, account.mustChange ? '/password' : '/', {
      'set-cookie': [cookie(SESSION_COOKIE, id), cookie(LOGIN_COOKIE, '', 0)],
    });
  }

  private async get(req: Req): Promise<void> {
    const ctx = this.ctx(req);
    const b = this.o.backend;
    switch (req.path) {
      case '/':
        return this.send(req, 200, v.dashboardPage(ctx, v.dashboardFields(await b.status(), req.lang)));
      case '/api/status':
        return this.send(
          req,
          200,
          JSON.stringify({ fields: v.dashboardFields(await b.status(), req.lang) }),
          'application/json; charset=utf-8',
        );
      case '/api/events':
        return this.openStream(req);
      case '/password':
        return this.send(req, 200, v.passwordPage(ctx, {}));
      case '/reconciliation': {
        const all = req.query.get('all') === '1';
        const r = await this.attempt(req, () => b.listReconciliation({ includeHandled: all }));
        return this.send(req, 200, v.reconciliationPage(ctx, r.value, all, r.note ?? this.doneNote(req)));
      }
      case '/rechecks': {
        const r = await this.attempt(req, () => b.listRechecks());
        return this.send(req, 200, v.rechecksPage(ctx, r.value, r.note));
      }
      case '/batches': {
        const r = await this.attempt(req, () => b.listBatches());
        return this.send(req, 200, v.batchesPage(ctx, r.value, r.note));
      }
      case '/clients':
        return this.send(req, 200, v.clientsPage(ctx, await b.listClients(), { note: this.doneNote(req) }));
      case '/audit': {
        const before = req.query.get('before') ?? undefined;
        const r = await this.attempt(req, () => b.listAudit({ limit: 100, ...(before ? { before } : {}) }));
        return this.send(req, 200, v.auditPage(ctx, r.value, 100, r.note));
      }
      case '/settings': {
        const s = await b.getSettings();
        return this.send(
          req,
          200,
          v.settingsPage(ctx, s.config, {
            file: s.file,
            writable: s.writable,
            saved: req.query.get('done') === 'saved',
          }),
        );
      }
      case '/backup':
        return this.send(req, 200, v.backupPage(ctx, {}));
      case '/support':
        return this.send(req, 200, v.supportPage(ctx));
      default:
        return this.send(req, 404, v.errorPage(ctx, '404', t(req.lang, 'err.not_found')));
    }
  }

  /** Runs a backend read; ADMIN_NOT_AVAILABLE becomes a note on the page instead of an error. */
  private async attempt<T>(req: Req, fn: () => Promise<T>): Promise<{ value?: T; note?: v.Html }> {
    try {
      return { value: await fn() };
    } catch (e) {
      if (isOnshiError(e, 'ADMIN_NOT_AVAILABLE')) return { note: v.message(t(req.lang, 'err.not_available')) };
      throw e;
    }
  }

  private doneNote(req: Req): v.Html | undefined {
    const done = req.query.get('done');
    if (done === 'revoked') return v.message(t(req.lang, 'cl.revokedDone', { name: req.query.get('name') ?? '' }));
    if (done === 'password') return v.message(t(req.lang, 'password.changed'));
    return undefined;
  }

  private async post(req: Req, form: URLSearchParams): Promise<void> {
    const ctx = this.ctx(req);
    const b = this.o.backend;
    const session = req.session!;
    if (req.path === '/logout') {
      this.sessions.destroy(req.sessionId);
      await this.audit(req, 'logout', 'ok');
      return this.redirect(req, '/login', { 'set-cookie': cookie(SESSION_COOKIE, '', 0) });
    }
    if (req.path === '/password') return this.postPassword(req, form);
    if (session.mustChange) return this.redirect(req, '/password');

    const handled = /^\/reconciliation\/([^/]+)\/handled$/.exec(req.path);
    if (handled) {
      const id = decodeURIComponent(handled[1]!);
      const r = await this.attempt(req, () => b.markHandled(id, session.user));
      await this.audit(req, 'reconciliation.handled', r.note ? 'failed' : 'ok', id);
      if (r.note) return this.send(req, 200, v.reconciliationPage(ctx, undefined, false, r.note));
      return this.redirect(req, '/reconciliation');
    }
    const revoke = /^\/clients\/([a-f0-9]{8})\/revoke$/.exec(req.path);
    if (revoke) {
      const c = await b.revokeClient(revoke[1]!);
      await this.audit(req, 'client.revoke', 'ok', `${c.name} (${c.id})`);
      return this.redirect(req, `/clients?done=revoked&name=${encodeURIComponent(c.name)}`);
    }
    switch (req.path) {
      case '/clients': {
        try {
          const created = await b.addClient(form.get('name') ?? '');
          await this.audit(req, 'client.add', 'ok', `${created.client.name} (${created.client.id})`);
          // Shown in this response only (no redirect): the token must never sit in a URL or a later page.
          return this.send(req, 200, v.clientsPage(ctx, await b.listClients(), { created }));
        } catch (e) {
          if (!isOnshiError(e, 'CLIENT_NAME_INVALID')) throw e;
          return this.send(
            req,
            400,
            v.clientsPage(ctx, await b.listClients(), { note: v.message(e.message, 'error') }),
          );
        }
      }
      case '/settings': {
        const input = v.settingsFromForm(form);
        try {
          await b.putSettings(input);
          await this.audit(req, 'settings.save', 'ok');
          return this.redirect(req, '/settings?done=saved');
        } catch (e) {
          if (!isOnshiError(e, 'CONFIG_INVALID') && !isOnshiError(e, 'ADMIN_SETTINGS_READONLY')) throw e;
          await this.audit(req, 'settings.save', 'refused');
          const problems = (e.details.problems as string[] | undefined) ?? [e.message];
          const s = await b.getSettings();
          return this.send(
            req,
            400,
            v.settingsPage(ctx, input as unknown as GatewayConfig, {
              file: s.file,
              writable: s.writable,
              errors: problems,
            }),
          );
        }
      }
      case '/backup': {
        const passphrase = form.get('passphrase') || undefined;
        try {
          const { filename, data } = await b.createBackup(passphrase);
          await this.audit(req, 'backup.create', 'ok', passphrase ? 'encrypted' : 'plain');
          return this.download(req, filename, data, 'application/octet-stream');
        } catch (e) {
          if (!isOnshiError(e)) throw e;
          return this.send(req, 400, v.backupPage(ctx, { error: e.message }));
        }
      }
      case '/support': {
        const { filename, data } = await b.supportBundle();
        await this.audit(req, 'support.bundle', 'ok');
        return this.download(req, filename, data, 'application/gzip');
      }
      default:
        return this.send(req, 404, v.errorPage(ctx, '404', t(req.lang, 'err.not_found')));
    }
  }

  private download(req: Req, filename: string, data: Buffer, type: string): void {
    req.res.writeHead(200, {
      'content-type': type,
      'content-length': String(data.length),
      'content-disposition': `attachment; filename="${filename.replace(/[^\w.-]/g, '_')}"`,
    });
    req.res.end(data);
  }

  private async postPassword(req: Req, form: URLSearchParams): Promise<void> {
    const session = req.session!;
    const next = form.get('next') ?? '';
    const fail = async (key: MessageKey, status = 400): Promise<void> => {
      await this.audit(req, 'password.change', 'refused', key);
      this.send(req, status, v.passwordPage(this.ctx(req), { error: t(req.lang, key) }));
    };
    if (next !== (form.get('confirm') ?? '')) return fail('password.mismatch');
    try {
      await this.o.accounts.changePassword(session.user, form.get('current') ?? '', next);
    } catch (e) {
      if (isOnshiError(e, 'ADMIN_LOGIN_FAILED')) {
        // A wrong current password counts as a failed login: this form must not be a guessing oracle.
        this.limiter.failure(req.remote);
        return fail('password.wrong', 401);
      }
      if (isOnshiError(e, 'ADMIN_PASSWORD_WEAK')) return fail(`password.${String(e.details.reason)}` as MessageKey);
      throw e;
    }
    // New credentials, new session: every other session of the user ends, this one is replaced.
    this.sessions.destroyAllOf(session.user);
    const { id } = this.sessions.create(session.user, false, this.o.accounts.generation);
    await this.audit(req, 'password.change', 'ok');
    this.o.logger.info('admin password changed', { event: 'admin_password_changed', remote: req.remote });
    return this.redirect(req, '/?done=password', { 'set-cookie': cookie(SESSION_COOKIE, id) });
  }

  private async postRestore(req: Req): Promise<void> {
    const ctx = this.ctx(req);
    const type = req.raw.headers['content-type'] ?? '';
    const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(type);
    if (!type.startsWith('multipart/form-data') || !boundary)
      return this.send(req, 400, v.backupPage(ctx, { error: 'multipart/form-data expected' }));
    const parts = parseMultipart(await this.readBody(req, UPLOAD_LIMIT), boundary[1] ?? boundary[2]!);
    if (!csrfMatches(req.session!.csrf, parts.get('_csrf')?.toString('utf8'))) return this.csrfRefused(req, '/restore');
    if (req.session!.mustChange) return this.redirect(req, '/password');
    const file = parts.get('file');
    if (!file || file.length === 0) return this.send(req, 400, v.backupPage(ctx, { error: 'no file' }));
    try {
      const r = await this.o.backend.restoreBackup(file, parts.get('passphrase')?.toString('utf8') || undefined);
      await this.audit(req, 'backup.restore', 'ok', `${r.restored.length} files`);
      return this.send(req, 200, v.backupPage(ctx, { info: t(req.lang, 'bk.restored', { n: r.restored.length }) }));
    } catch (e) {
      if (!isOnshiError(e)) throw e;
      await this.audit(req, 'backup.restore', 'refused', e.code);
      return this.send(req, 400, v.backupPage(ctx, { error: e.message }));
    }
  }

  // --- live dashboard -----------------------------------------------------------------------------

  private openStream(req: Req): void {
    req.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    req.res.write('retry: 2000\n\n');
    const entry = { res: req.res, req, last: '' };
    this.streams.add(entry);
    req.raw.on('close', () => this.streams.delete(entry));
    void this.pushOne(entry);
  }

  private async pushLive(): Promise<void> {
    await Promise.all([...this.streams].map((s) => this.pushOne(s)));
  }

  private async pushOne(s: { res: ServerResponse; req: Req; last: string }): Promise<void> {
    // The session is re-checked on every push: a logout, an expiry or `onshi admin reset` ends the stream.
    const live = this.sessions.get(s.req.sessionId, this.o.accounts.generation);
    if (!live) {
      s.res.end('event: logout\ndata: {}\n\n');
      this.streams.delete(s);
      return;
    }
    try {
      const data = JSON.stringify({ fields: v.dashboardFields(await this.o.backend.status(), s.req.lang) });
      if (data !== s.last) {
        s.last = data;
        s.res.write(`event: status\ndata: ${data}\n\n`);
      } else {
        s.res.write(': keep-alive\n\n');
      }
    } catch (e) {
      this.o.logger.warn('admin live status failed', { event: 'admin_live_error', error: (e as Error).message });
    }
  }
}

/** Minimal multipart/form-data: field name → raw bytes (one file upload and a few text fields). */
export function parseMultipart(body: Buffer, boundary: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const delim = Buffer.from(`--${boundary}`);
  let pos = body.indexOf(delim);
  while (pos >= 0) {
    const start = pos + delim.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const headerEnd = body.indexOf('\r\n\r\n', start);
    const next = body.indexOf(delim, start);
    if (headerEnd < 0 || next < 0) break;
    const headers = body.subarray(start, headerEnd).toString('utf8');
    const name = /content-disposition:[^\r\n]*\bname="([^"]*)"/i.exec(headers)?.[1];
    if (name !== undefined) out.set(name, body.subarray(headerEnd + 4, next - 2)); // minus the CRLF before the delimiter
    pos = next;
  }
  return out;
}

/** What the daemon needs to start the page from its config. */
export interface StartAdminOptions {
  config: GatewayConfig;
  backend: AdminBackend;
  accounts: AdminAccounts;
  tls: TlsIdentity;
  logger: Logger;
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
  });
}
