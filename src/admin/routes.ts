/**
 * The admin page's routes: login and password, the pages (GET), the actions (POST, each behind the
 * CSRF checks), the backup restore upload. The HTTP plumbing they use is in http/.
 */
import { randomBytes } from 'node:crypto';
import { type GatewayConfig, validateConfig } from '../core/config.js';
import { isOnshiError, type OnshiError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { DaemonStatus } from '../ops/status.js';
import { ADMIN_CSS, ADMIN_JS } from './assets.js';
import { ADMIN_USER, type AdminAccounts, csrfMatches, type LoginLimiter, type SessionStore } from './auth.js';
import type { AdminBackend, AuditEntry } from './backend.js';
import { readBody, readForm, UPLOAD_LIMIT } from './http/body.js';
import { cookie, LANG_COOKIE, LOGIN_COOKIE, SESSION_COOKIE } from './http/cookies.js';
import { multipartBoundary, parseMultipart } from './http/multipart.js';
import { download, type Req, redirect, send } from './http/request.js';
import { safeNext, sameOrigin } from './http/security.js';
import { type MessageKey, t } from './i18n.js';
import type { LiveDashboard } from './live-dashboard.js';
import { auditActionsMatching, configProblemJa, errorText } from './messages-ja.js';
import { AUDIT_CSV_MAX, AUDIT_PAGE_SIZE, auditCsv, auditPage, auditQuery } from './pages/audit-page.js';
import { EVENTS_PAGE_SIZE, eventsPage, isEventKind } from './pages/events-page.js';
import { dateRange, filterQuery } from './pages/filters.js';
import { changedSettings, settingChanges } from './settings-diff.js';
import { type HistoryRange, historyCharts, historyPage, RANGE_HOURS } from './history-chart.js';
import { dashboardLineBlock, readLinePicture } from './line-timeline.js';
import * as v from './views.js';
import { type KioskDeskView, kioskRoute } from './kiosk-pairing.js';
import { usageRoute } from './usage-page.js';

/** Why a client was not added: shown on the page, in Japanese on a Japanese page. */
const CLIENT_REFUSALS = ['CLIENT_NAME_INVALID', 'CLIENT_NAME_TAKEN', 'CLIENT_SCOPE_INVALID'] as const;

/** Query parameters that carry a one-time note (done=…, expired=1…), not what the page shows. */
const TRANSIENT_QUERY = new Set(['done', 'expired', 'changed', 'name']);

/** What a page's layout needs of the request. */
export function pageContext(req: Req): v.PageContext {
  // what the page shows (range=7d, all=1, before=…) survives the language switch; one-time notes do not
  const kept = new URLSearchParams([...req.query].filter(([k]) => !TRANSIENT_QUERY.has(k)));
  const query = kept.toString();
  return {
    lang: req.lang,
    path: req.path,
    ...(query ? { search: `?${query}` } : {}),
    ...(req.session ? { csrf: req.session.csrf, mustChange: req.session.mustChange } : {}),
  };
}

export class AdminRoutes {
  constructor(
    private readonly o: { backend: AdminBackend; accounts: AdminAccounts; logger: Logger; kiosk?: KioskDeskView },
    private readonly sessions: SessionStore,
    private readonly limiter: LoginLimiter,
    private readonly live: LiveDashboard,
  ) {}

  async route(req: Req): Promise<void> {
    const { method, path } = req;
    if (method === 'GET' && path === '/assets/admin.css') return send(req, 200, ADMIN_CSS, 'text/css; charset=utf-8');
    if (method === 'GET' && path === '/assets/admin.js')
      return send(req, 200, ADMIN_JS, 'text/javascript; charset=utf-8');
    if (method === 'GET' && path === '/favicon.ico') return send(req, 204, '', 'image/x-icon');
    const lang = /^\/lang\/(ja|en)$/.exec(path);
    if (method === 'GET' && lang) {
      return redirect(req, safeNext(req.query.get('next')), {
        'set-cookie': cookie(LANG_COOKIE, lang[1]!, 365 * 86400),
      });
    }
    if (path === '/login') return method === 'POST' ? this.postLogin(req) : this.getLogin(req);

    req.sessionId = req.cookies.get(SESSION_COOKIE);
    // What the page fetches by itself (the live stream, its fallback poll) does not count as use:
    // an open dashboard alone must not keep a login alive.
    const session = path.startsWith('/api/')
      ? this.sessions.peek(req.sessionId, this.o.accounts.generation)
      : this.sessions.get(req.sessionId, this.o.accounts.generation);
    if (!session) {
      if (path.startsWith('/api/'))
        return send(req, 401, JSON.stringify({ error: 'ADMIN_SESSION_EXPIRED' }), 'application/json');
      return redirect(
        req,
        req.sessionId ? '/login?expired=1' : '/login',
        req.sessionId ? { 'set-cookie': cookie(SESSION_COOKIE, '', 0) } : {},
      );
    }
    req.session = session;

    if (method === 'POST') {
      // multipart bodies carry their token inside; that route checks it itself.
      if (path !== '/restore') {
        const form = await readForm(req.raw);
        if (!sameOrigin(req.raw) || !csrfMatches(session.csrf, form.get('_csrf'))) return this.csrfRefused(req, path);
        return this.post(req, form);
      }
      if (!sameOrigin(req.raw)) return this.csrfRefused(req, path);
      return this.postRestore(req);
    }
    if (method !== 'GET' && method !== 'HEAD') return send(req, 405, 'method not allowed', 'text/plain');
    if (session.mustChange && path !== '/password') return redirect(req, '/password');
    return this.get(req);
  }

  private async csrfRefused(req: Req, path: string): Promise<void> {
    await this.audit(req, `POST ${path}`, 'refused', 'csrf');
    this.o.logger.warn('admin form without a valid CSRF token', {
      event: 'admin_csrf_refused',
      path,
      remote: req.remote,
    });
    return send(req, 403, v.errorPage(pageContext(req), t(req.lang, 'err.forbidden'), t(req.lang, 'csrf.refused')));
  }

  private async getLogin(req: Req, opts: { error?: string; status?: number } = {}): Promise<void> {
    const token = randomBytes(24).toString('base64url');
    // What the browser's certificate warning should show: compared before the first password is typed.
    const fingerprint = (await this.o.backend.status().catch(() => undefined))?.tls?.fingerprint;
    const done = req.query.get('done');
    const info = req.query.get('expired')
      ? t(req.lang, 'login.expired')
      : done === 'logout'
        ? t(req.lang, 'login.loggedOut')
        : done === 'restarted'
          ? t(req.lang, 'login.restarted')
          : undefined;
    send(
      req,
      opts.status ?? 200,
      v.loginPage(pageContext(req), token, {
        ...(opts.error ? { error: opts.error } : {}),
        ...(info ? { info } : {}),
        ...(fingerprint ? { fingerprint } : {}),
      }),
      'text/html; charset=utf-8',
      { 'set-cookie': cookie(LOGIN_COOKIE, token, 1800) },
    );
  }

  private async postLogin(req: Req): Promise<void> {
    const form = await readForm(req.raw);
    // Login CSRF: the form's token must match the cookie set with the form (double submit).
    const expected = req.cookies.get(LOGIN_COOKIE);
    if (!sameOrigin(req.raw) || !expected || !csrfMatches(expected, form.get('_csrf')))
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
    return redirect(req, account.mustChange ? '/password' : '/', {
      'set-cookie': [cookie(SESSION_COOKIE, id), cookie(LOGIN_COOKIE, '', 0)],
    });
  }

  /** The menu's badge: open reconciliation items (the daemon's status counts them). */
  private async openReconciliation(): Promise<number | undefined> {
    const status = await this.o.backend.status().catch(() => undefined);
    return (status as Partial<DaemonStatus> | undefined)?.reconciliation?.open;
  }

  /** Receipt computers by name wherever the store names them by id. */
  private async withClientNames(ctx: v.PageContext): Promise<v.PageContext> {
    const names = new Map((await this.o.backend.listClients()).map((c) => [c.id, c.name]));
    return { ...ctx, clientName: (id) => names.get(id) ?? id };
  }

  private async get(req: Req): Promise<void> {
    const b = this.o.backend;
    const named = ['/reconciliation', '/rechecks', '/batches', '/audit', '/audit.csv'].includes(req.path);
    const base = named ? await this.withClientNames(pageContext(req)) : pageContext(req);
    const open = await this.openReconciliation();
    const ctx = open ? { ...base, openReconciliation: open } : base;
    if (req.path === '/kiosks') return kioskRoute(req, ctx, this.o.kiosk);
    if (req.path === '/usage' || req.path === '/usage.csv') return usageRoute(req, ctx, b);
    switch (req.path) {
      case '/': {
        const status = await b.status();
        const line = await dashboardLineBlock(b, status, req.lang);
        const note = this.doneNote(req);
        return send(
          req,
          200,
          v.dashboardPage(ctx, v.dashboardFields(status, req.lang), status, {
            ...(note ? { note } : {}),
            ...(line ? { line } : {}),
          }),
        );
      }
      case '/api/status':
        return send(
          req,
          200,
          JSON.stringify({ fields: v.dashboardFields(await b.status(), req.lang) }),
          'application/json; charset=utf-8',
        );
      case '/api/events':
        return this.live.open(req);
      case '/password':
        return send(req, 200, v.passwordPage(ctx, {}));
      case '/reconciliation': {
        const all = req.query.get('all') === '1';
        const r = await this.attempt(req, () => b.listReconciliation({ includeHandled: all }));
        return send(req, 200, v.reconciliationPage(ctx, r.value, all, r.note ?? this.doneNote(req)));
      }
      case '/history':
      case '/api/history': {
        const now = Date.now();
        const range: HistoryRange = req.query.get('range') === '7d' ? '7d' : '24h';
        const r = await this.attempt(req, () => b.listHistory(now - 30 * 86_400_000));
        const from = now - RANGE_HOURS[range] * 3_600_000;
        const line = await readLinePicture(b, await b.status(), from, now, r.value);
        const data = { range, ...(r.value ? { rows: r.value } : {}), ...(line ? { line } : {}) };
        // the page's own refresh (admin.js): the same pictures, without the page around them
        if (req.path === '/api/history')
          return send(
            req,
            200,
            JSON.stringify({ html: historyCharts(ctx, data, now).text }),
            'application/json; charset=utf-8',
          );
        // ?refresh=ms: how often the open page fetches its pictures again (tests; 1 s at least)
        const refresh = Math.max(1000, Number(req.query.get('refresh')) || 60_000);
        return send(req, 200, historyPage(ctx, data, now, r.note, refresh));
      }
      case '/rechecks': {
        const r = await this.attempt(req, () => b.listRechecks());
        return send(req, 200, v.rechecksPage(ctx, r.value, r.note));
      }
      case '/batches': {
        const r = await this.attempt(req, () => b.listBatches());
        return send(req, 200, v.batchesPage(ctx, r.value, r.note));
      }
      case '/clients':
        return send(req, 200, v.clientsPage(ctx, await b.listClients(), { note: this.doneNote(req) }));
      case '/audit': {
        const r = await this.attempt(req, () => this.auditEntries(req, AUDIT_PAGE_SIZE));
        return send(
          req,
          200,
          auditPage(ctx, {
            ...(r.value ? { entries: r.value } : {}),
            query: req.query,
            ...(r.note ? { note: r.note } : {}),
          }),
        );
      }
      case '/audit.csv': {
        const entries = await this.auditEntries(req, AUDIT_CSV_MAX, false);
        const stamp = new Date().toISOString().slice(0, 16).replace(/\D/g, '');
        return download(req, `audit-${stamp}.csv`, auditCsv(ctx, entries), 'text/csv; charset=utf-8');
      }
      case '/events': {
        const kind = req.query.get('kind');
        const range = dateRange(req.query);
        const before = req.query.get('before');
        const r = await this.attempt(req, () =>
          b.listEvents({
            limit: EVENTS_PAGE_SIZE,
            ...(isEventKind(kind) ? { kind } : {}),
            ...(range.from !== undefined ? { from: range.from } : {}),
            ...(range.to !== undefined ? { to: range.to } : {}),
            ...(before && /^\d{1,16}(\.[01]\.\d{1,16})?$/.test(before) ? { before } : {}),
          }),
        );
        return send(
          req,
          200,
          eventsPage(ctx, {
            ...(r.value ? { items: r.value } : {}),
            ...(isEventKind(kind) ? { kind } : {}),
            range,
            filter: filterQuery(req.query, ['kind', 'from', 'to']),
            paged: before !== null,
            now: Date.now(),
            ...(r.note ? { note: r.note } : {}),
          }),
        );
      }
      case '/settings': {
        const s = await b.getSettings();
        return send(
          req,
          200,
          v.settingsPage(ctx, s.config, {
            file: s.file,
            writable: s.writable,
            saved: req.query.get('done') === 'saved',
            changed: (req.query.get('changed') ?? '').split(',').filter(Boolean),
            restart: b.restart !== undefined,
          }),
        );
      }
      case '/backup':
        return send(req, 200, v.backupPage(ctx, {}));
      case '/support':
        return send(req, 200, v.supportPage(ctx));
      default:
        return send(req, 404, v.errorPage(ctx, t(req.lang, 'err.not_found_title'), t(req.lang, 'err.not_found')));
    }
  }

  /**
   * The audit entries the page's filter selects: the search also finds receipt computers by name
   * and actions by their Japanese words (the chain keeps ids and codes). `paged`: from the cursor.
   */
  private async auditEntries(req: Req, limit: number, paged = true): Promise<AuditEntry[]> {
    const { range: _r, before, ...f } = auditQuery(req.query);
    const text = f.q?.toLowerCase();
    const actors = text
      ? (await this.o.backend.listClients()).filter((c) => c.name.toLowerCase().includes(text)).map((c) => c.id)
      : [];
    const actions = f.q ? auditActionsMatching(req.lang, f.q) : [];
    return this.o.backend.listAudit({
      limit,
      ...f,
      ...(paged && before !== undefined ? { before } : {}),
      ...(actors.length ? { actors } : {}),
      ...(actions.length ? { actions } : {}),
    });
  }

  /** Where the settings are saved and whether they can be, and whether the restart button works. */
  private async settingsFile(): Promise<{ file: string; writable: boolean; restart: boolean }> {
    const s = await this.o.backend.getSettings();
    return { file: s.file, writable: s.writable, restart: this.o.backend.restart !== undefined };
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
    const ctx = pageContext(req);
    const b = this.o.backend;
    const session = req.session!;
    if (req.path === '/logout') {
      this.sessions.destroy(req.sessionId);
      await this.audit(req, 'logout', 'ok');
      return redirect(req, '/login?done=logout', { 'set-cookie': cookie(SESSION_COOKIE, '', 0) });
    }
    if (req.path === '/password') return this.postPassword(req, form);
    if (req.path.startsWith('/kiosks/')) return kioskRoute(req, ctx, this.o.kiosk, form);
    if (session.mustChange) return redirect(req, '/password');

    const handled = /^\/reconciliation\/([^/]+)\/handled$/.exec(req.path);
    if (handled) {
      const id = decodeURIComponent(handled[1]!);
      const r = await this.attempt(req, () => b.markHandled(id, session.user));
      await this.audit(req, 'reconciliation.handled', r.note ? 'failed' : 'ok', id);
      if (r.note) return send(req, 200, v.reconciliationPage(ctx, undefined, false, r.note));
      return redirect(req, '/reconciliation');
    }
    const revoke = /^\/clients\/([a-f0-9]{8})\/revoke$/.exec(req.path);
    if (revoke) {
      const c = await b.revokeClient(revoke[1]!);
      await this.audit(req, 'client.revoke', 'ok', `${c.name} (${c.id})`);
      return redirect(req, `/clients?done=revoked&name=${encodeURIComponent(c.name)}`);
    }
    switch (req.path) {
      case '/clients': {
        const name = form.get('name') ?? '';
        const scopes = form.getAll('scope');
        try {
          const created = await b.addClient(name, scopes);
          await this.audit(req, 'client.add', 'ok', `${created.client.name} (${created.client.id})`);
          // Shown in this response only (no redirect): the token must never sit in a URL or a later page.
          return send(req, 200, v.clientsPage(ctx, await b.listClients(), { created }));
        } catch (e) {
          if (!CLIENT_REFUSALS.some((code) => isOnshiError(e, code))) throw e;
          return send(
            req,
            400,
            v.clientsPage(ctx, await b.listClients(), {
              note: v.message(errorText(req.lang, e as OnshiError), 'error'),
              name,
              scopes,
            }),
          );
        }
      }
      case '/restart': {
        if (!b.restart)
          return send(
            req,
            409,
            v.settingsPage(ctx, (await b.getSettings()).config, {
              ...(await this.settingsFile()),
              note: v.message(t(req.lang, 'rs.unavailable'), 'error'),
            }),
          );
        await this.audit(req, 'gateway.restart', 'ok');
        this.o.logger.warn('restart requested from the admin page', { event: 'admin_restart', remote: req.remote });
        const restart = b.restart;
        // The answer first (the page waits for the gateway to come back), then the exit.
        req.res.once('finish', () => setImmediate(restart));
        return send(req, 202, v.restartingPage(ctx));
      }
      case '/settings': {
        const input = v.settingsFromForm(form);
        if (form.get('back') === '1') {
          // Back from the review: the form again, as it was submitted.
          return send(req, 200, v.settingsPage(ctx, input as unknown as GatewayConfig, await this.settingsFile()));
        }
        try {
          const before = (await b.getSettings()).config;
          const changes = settingChanges(before, validateConfig(input));
          if (changes.length === 0) {
            return send(
              req,
              200,
              v.settingsPage(ctx, before, {
                ...(await this.settingsFile()),
                note: v.message(t(req.lang, 'set.nothing')),
              }),
            );
          }
          // A diff before anything is written: saving is its own step.
          if (form.get('confirm') !== '1')
            return send(req, 200, v.settingsReviewPage(ctx, changes, form, validateConfig(input)));
          const { config } = await b.putSettings(input);
          const changed = changedSettings(before, config);
          await this.audit(req, 'settings.save', 'ok', changed.join(',').slice(0, 128) || undefined);
          return redirect(req, `/settings?done=saved&changed=${encodeURIComponent(changed.join(','))}`);
        } catch (e) {
          if (!isOnshiError(e, 'CONFIG_INVALID') && !isOnshiError(e, 'ADMIN_SETTINGS_READONLY')) throw e;
          await this.audit(req, 'settings.save', 'refused');
          const given = e.details.problems as string[] | undefined;
          const problems = given
            ? given.map((p) => (req.lang === 'ja' ? configProblemJa(p) : p))
            : [errorText(req.lang, e)];
          return send(
            req,
            400,
            v.settingsPage(ctx, input as unknown as GatewayConfig, {
              ...(await this.settingsFile()),
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
          return download(req, filename, data, 'application/octet-stream');
        } catch (e) {
          if (!isOnshiError(e)) throw e;
          return send(req, 400, v.backupPage(ctx, { error: errorText(req.lang, e) }));
        }
      }
      case '/support': {
        const { filename, data } = await b.supportBundle();
        await this.audit(req, 'support.bundle', 'ok');
        return download(req, filename, data, 'application/gzip');
      }
      default:
        return send(req, 404, v.errorPage(ctx, t(req.lang, 'err.not_found_title'), t(req.lang, 'err.not_found')));
    }
  }

  private async postPassword(req: Req, form: URLSearchParams): Promise<void> {
    const session = req.session!;
    const next = form.get('next') ?? '';
    const fail = async (key: MessageKey, status = 400): Promise<void> => {
      await this.audit(req, 'password.change', 'refused', key);
      send(req, status, v.passwordPage(pageContext(req), { error: t(req.lang, key) }));
    };
    if (next !== (form.get('confirm') ?? '')) return fail('password.mismatch');
    // The current password is checked here too: a locked-out address waits as it does at the login.
    const wait = this.limiter.retryAfterMs(req.remote);
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      await this.audit(req, 'password.change', 'refused', 'rate-limited');
      req.res.setHeader('retry-after', String(seconds));
      const error = t(req.lang, 'login.limited', { seconds });
      return send(req, 429, v.passwordPage(pageContext(req), { error }));
    }
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
    return redirect(req, '/?done=password', { 'set-cookie': cookie(SESSION_COOKIE, id) });
  }

  private async postRestore(req: Req): Promise<void> {
    const ctx = pageContext(req);
    const boundary = multipartBoundary(req.raw.headers['content-type']);
    if (boundary === undefined) return send(req, 400, v.backupPage(ctx, { error: t(req.lang, 'err.multipart') }));
    const parts = parseMultipart(await readBody(req.raw, UPLOAD_LIMIT), boundary);
    if (!csrfMatches(req.session!.csrf, parts.get('_csrf')?.toString('utf8'))) return this.csrfRefused(req, '/restore');
    if (req.session!.mustChange) return redirect(req, '/password');
    const file = parts.get('file');
    if (!file || file.length === 0)
      return send(
        req,
        400,
        v.backupPage(ctx, { error: errorText(req.lang, { code: 'BACKUP_NO_FILE', message: 'no file' }) }),
      );
    try {
      const r = await this.o.backend.restoreBackup(file, parts.get('passphrase')?.toString('utf8') || undefined);
      await this.audit(req, 'backup.restore', 'ok', `${r.restored.length} files`);
      return send(req, 200, v.backupPage(ctx, { info: t(req.lang, 'bk.restored', { n: r.restored.length }) }));
    } catch (e) {
      if (!isOnshiError(e)) throw e;
      await this.audit(req, 'backup.restore', 'refused', e.code);
      return send(req, 400, v.backupPage(ctx, { error: errorText(req.lang, e) }));
    }
  }

  /** Records an admin action; a failed audit write is logged, never the action's failure. */
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
}
