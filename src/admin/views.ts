/**
 * Server-rendered pages. `html` escapes every interpolated value unless it is already Html, so a
 * client name or a config value can never become markup. Forms work without the script.
 */
import { configLeaves, type GatewayConfig } from '../core/config.js';
import type { DaemonStatus, GatewayStatus } from '../ops/status.js';
import { type Attention, attentionItems } from './attention.js';
import { type AdminClient, type BatchItem, PAGE_SCOPES, type ReconciliationItem, type RecheckItem } from './backend.js';
import type { Scope } from '../protocol/scopes.js';
import { type Lang, type MessageKey, t } from './i18n.js';
import { BATCH_STATE_JA, CARD_STAGE_JA, CHECK_NAME_JA, jaOr, RECHECK_STATE_JA } from './messages-ja.js';
import { LOCKOUT_SETTINGS, type SettingChange } from './settings-diff.js';
import { SETTING_GROUPS_JA, settingText } from './settings-labels.js';

export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ESC[c]!);

type Part = Html | string | number | undefined | null | false | Part[];
function render(v: Part): string {
  if (v === undefined || v === null || v === false) return '';
  if (Array.isArray(v)) return v.map(render).join('');
  if (v instanceof Html) return v.text;
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += render(v) + strings[i + 1]!;
  });
  return new Html(out);
}

export interface PageContext {
  lang: Lang;
  path: string;
  /** the query (with its "?"), kept by the language switch */
  search?: string;
  /** present when logged in */
  csrf?: string;
  mustChange?: boolean;
  /** a receipt computer's name by its id (the token store's names); the id when unknown */
  clientName?: (id: string) => string;
  /** open reconciliation items: the badge beside their menu entry */
  openReconciliation?: number;
}

/** The open reconciliation count's badge text ('' when none): rendered in the menu and pushed live. */
export const openBadgeText = (lang: Lang, n: number | undefined): string => (n ? t(lang, 'nav.open', { n }) : '');

const clientLabel = (ctx: PageContext, id: string | undefined): string =>
  id === undefined ? '' : (ctx.clientName?.(id) ?? id);

const NAV: [string, MessageKey][] = [
  ['/', 'nav.dashboard'],
  ['/history', 'nav.history'],
  ['/events', 'nav.events'],
  ['/reconciliation', 'nav.reconciliation'],
  ['/rechecks', 'nav.rechecks'],
  ['/batches', 'nav.batches'],
  ['/usage', 'nav.usage'],
  ['/clients', 'nav.clients'],
  ['/audit', 'nav.audit'],
  ['/settings', 'nav.settings'],
  ['/backup', 'nav.backup'],
  ['/support', 'nav.support'],
  ['/kiosks', 'nav.kiosks'],
];

export const csrfField = (ctx: PageContext): Html => html`<input type="hidden" name="_csrf" value="${ctx.csrf ?? ''}">`;

export function layout(ctx: PageContext, title: string, body: Html): string {
  const other: Lang = ctx.lang === 'ja' ? 'en' : 'ja';
  const nav =
    ctx.csrf && !ctx.mustChange
      ? html`<nav>${NAV.map(([href, key]) => html`<a href="${href}"${href === ctx.path ? new Html(' aria-current="page"') : ''}>${t(ctx.lang, key)}${href === '/reconciliation' ? html`<span class="badge" id="open-badge" data-field="recOpen" data-tone="warn">${openBadgeText(ctx.lang, ctx.openReconciliation)}</span>` : ''}</a>`)}
      <span class="account"><a href="/password" id="nav-password"${ctx.path === '/password' ? new Html(' aria-current="page"') : ''}>${t(ctx.lang, 'nav.password')}</a>
      <form method="post" action="/logout">${csrfField(ctx)}<button type="submit" id="logout">${t(ctx.lang, 'nav.logout')}</button></form></span></nav>`
      : '';
  return (
    '<!doctype html>\n' +
    html`<html lang="${ctx.lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} — ${t(ctx.lang, 'app.title')}</title><link rel="stylesheet" href="/assets/admin.css"><script src="/assets/admin.js" defer></script></head>
<body><header><h1>${t(ctx.lang, 'app.title')}</h1><a id="lang-switch" href="/lang/${other}?next=${encodeURIComponent(ctx.path + (ctx.search ?? ''))}" lang="${other}">${t(ctx.lang, 'lang.other')}</a></header>
${nav}<main><h2>${title}</h2>${body}</main></body></html>`.text
  );
}

export function message(text: string | undefined, kind: 'info' | 'error' = 'info'): Html {
  return text
    ? html`<p class="msg${kind === 'error' ? ' error' : ''}" role="${kind === 'error' ? 'alert' : 'status'}">${text}</p>`
    : html``;
}

// --- login and password -----------------------------------------------------------------------

export function loginPage(
  ctx: PageContext,
  loginCsrf: string,
  opts: { error?: string; info?: string; fingerprint?: string },
): string {
  const L = (k: MessageKey): string => t(ctx.lang, k);
  return layout(
    ctx,
    L('login.title'),
    html`<div class="login">${message(opts.info)}${message(opts.error, 'error')}
<form method="post" action="/login"><input type="hidden" name="_csrf" value="${loginCsrf}">
<label for="user">${L('login.user')}</label><input type="text" id="user" name="user" value="admin" autocomplete="username" required>
<label for="password">${L('login.password')}</label><input type="password" id="password" name="password" autocomplete="current-password" required autofocus>
<p><button type="submit" id="login">${L('login.submit')}</button></p></form><p class="hint">${L('login.first')}</p>
${opts.fingerprint ? html`<p class="hint">${L('login.fingerprint')}<br><code id="fingerprint" class="fingerprint">${opts.fingerprint}</code></p>` : ''}</div>`,
  );
}

export function passwordPage(ctx: PageContext, opts: { error?: string; info?: string }): string {
  const L = (k: MessageKey): string => t(ctx.lang, k);
  return layout(
    ctx,
    L('password.title'),
    html`${ctx.mustChange ? message(L('password.forced')) : ''}${message(opts.info)}${message(opts.error, 'error')}
<form method="post" action="/password">${csrfField(ctx)}
<label for="current">${L('password.current')}</label><input type="password" id="current" name="current" autocomplete="current-password" required>
<label for="next">${L('password.next')}</label><input type="password" id="next" name="next" autocomplete="new-password" minlength="12" required>
<label for="confirm">${L('password.confirm')}</label><input type="password" id="confirm" name="confirm" autocomplete="new-password" minlength="12" required>
<p><button type="submit" id="change">${L('password.submit')}</button></p></form>`,
  );
}

// --- dashboard ----------------------------------------------------------------------------------

export type Tone = 'ok' | 'warn' | 'bad' | 'muted';
export type DashboardFields = Record<string, { text: string; tone: Tone }>;

export const fmtTime = (iso: string | undefined): string => {
  if (!iso) return '';
  const d = new Date(iso);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
};

export function fmtDuration(ms: number, lang: Lang): string {
  const s = Math.round(Math.abs(ms) / 1000);
  const [n, unit] =
    s < 120
      ? [s, lang === 'ja' ? '秒' : ' s']
      : s < 7200
        ? [Math.round(s / 60), lang === 'ja' ? '分' : ' min']
        : s < 172800
          ? [Math.round(s / 3600), lang === 'ja' ? '時間' : ' h']
          : [Math.round(s / 86400), lang === 'ja' ? '日' : ' days'];
  return `${n}${unit}`;
}

/** The clock's difference from central: ±0 under 0.05 s, tenths under 10 s, then whole units. */
export function fmtSkew(ms: number, lang: Lang): string {
  const abs = Math.abs(ms);
  const sec = lang === 'ja' ? '秒' : ' s';
  if (abs < 50) return `±0${sec}`;
  const sign = ms > 0 ? '+' : '-';
  if (abs < 10_000) return `${sign}${(abs / 1000).toFixed(1)}${sec}`;
  return `${sign}${fmtDuration(abs, lang)}`;
}

/** The dashboard's values as display text and a tone: rendered into the page and pushed live. */
/** The tunnel (ipsec mode) and the failing hop, in strongSwan's and the path check's own words. */
function lineDetail(l: GatewayStatus['line']): string {
  const tun = l.tunnel;
  const tunnel = tun
    ? ` — IPsec: IKE ${tun.ike}, CHILD_SA ${tun.child}, ${tun.rekeys} rekeys${tun.reason ? ` (${tun.reason})` : ''}`
    : '';
  return tunnel + (l.failingHop ? ` — failing at ${l.failingHop}` : '');
}

export function dashboardFields(s: GatewayStatus, lang: Lang): DashboardFields {
  const L = (k: MessageKey, p: Record<string, string | number> = {}): string => t(lang, k, p);
  const now = Date.parse(s.now);
  const f: DashboardFields = {};
  const failing = Object.entries(s.checks)
    .filter(([, ok]) => !ok)
    .map(([k]) => jaOr(lang, CHECK_NAME_JA, k))
    .join(lang === 'ja' ? '、' : ', ');
  f.ready = s.ready
    ? { text: L('state.ready'), tone: 'ok' }
    : { text: L('state.not_ready', { what: failing || '…' }), tone: 'bad' };
  const lineTone: Record<string, Tone> = { up: 'ok', degraded: 'warn', down: 'bad', unknown: 'muted' };
  f.line = {
    text:
      L(`line.${s.line.state}` as MessageKey) +
      (s.line.since ? ` (${L('line.since', { time: fmtTime(s.line.since) })})` : '') +
      lineDetail(s.line),
    tone: lineTone[s.line.state] ?? 'muted',
  };
  const readerName = s.reader.readers[0]?.name ?? '';
  f.reader = {
    text: L(`reader.${s.reader.state}` as MessageKey, { name: readerName }),
    tone: s.reader.state === 'ready' ? 'ok' : s.reader.state === 'disabled' ? 'muted' : 'bad',
  };
  f.card = {
    text: s.card.present
      ? L('card.present') +
        (s.card.stage && s.card.stage !== 'idle' ? ` (${jaOr(lang, CARD_STAGE_JA, s.card.stage)})` : '')
      : L('card.absent'),
    tone: s.card.present ? 'ok' : 'muted',
  };
  if (!s.outbox) f.outbox = { text: L('na'), tone: 'muted' };
  else if (s.outbox.depth === 0) f.outbox = { text: L('outbox.empty'), tone: 'ok' };
  else {
    const age = s.outbox.oldestAt ? now - Date.parse(s.outbox.oldestAt) : 0;
    f.outbox = {
      text: L('outbox.some', { n: s.outbox.depth, age: fmtDuration(age, lang) }),
      tone: age > 3_600_000 ? 'bad' : 'warn',
    };
  }
  f.cache = s.cache
    ? { text: L('cache.entries', { n: s.cache.entries }), tone: 'ok' }
    : { text: L('na'), tone: 'muted' };
  const skew = s.clock.skewMs;
  f.clock = {
    text: `${fmtTime(s.now)} — ${skew === undefined ? L('clock.unmeasured') : L('clock.skew', { skew: fmtSkew(skew, lang) })}`,
    tone: skew === undefined ? 'muted' : Math.abs(skew) > 300_000 ? 'bad' : Math.abs(skew) > 30_000 ? 'warn' : 'ok',
  };
  f.api = { text: L('api.connections', { n: s.api.connections }), tone: s.api.listening ? 'ok' : 'bad' };
  const certs = [...s.certificates, ...(s.tls ? [{ name: 'gateway-tls', notAfter: s.tls.notAfter }] : [])];
  let worst: Tone = 'ok';
  f.certs = {
    text:
      certs
        .map((c) => {
          const left = Date.parse(c.notAfter) - now;
          const tone: Tone =
            left <= 0 ? 'bad' : left < 14 * 86_400_000 ? 'bad' : left < 30 * 86_400_000 ? 'warn' : 'ok';
          if (tone === 'bad' || (tone === 'warn' && worst === 'ok')) worst = tone;
          return `${jaOr(lang, CHECK_NAME_JA, c.name)}: ${L(left <= 0 ? 'cert.expired' : 'cert.expires', { date: fmtTime(c.notAfter).slice(0, 10) })}`;
        })
        .join(' / ') || L('na'),
    tone: certs.length ? worst : 'muted',
  };
  f.tls = { text: s.tls?.fingerprint ?? L('na'), tone: s.tls ? 'ok' : 'muted' };
  f.version = { text: `${s.version} (${fmtTime(s.startedAt)})`, tone: 'muted' };
  f.recOpen = { text: openBadgeText(lang, (s as Partial<DaemonStatus>).reconciliation?.open), tone: 'warn' };
  return f;
}

/** What needs attention, at the top of the dashboard; the live stream replaces it as it changes. */
export function attentionBlock(ctx: Pick<PageContext, 'lang'>, items: Attention[]): Html {
  if (!items.length) return html``;
  const title = ctx.lang === 'ja' ? '対応が必要なこと' : 'Needs attention';
  return html`<section class="attention" aria-label="${title}"><h3>${title}</h3><ul>${items.map(
    (a) =>
      html`<li data-tone="${a.tone}">${a.href ? html`<a href="${a.href}">${a.text}</a>` : a.text} <span class="todo">${a.todo}</span></li>`,
  )}</ul></section>`;
}

/**
 * The dashboard: what needs attention, the live tiles, and (when the backend keeps it) the line's
 * last 24 hours, which the live stream replaces as it changes (`line`, from line-timeline.ts).
 */
export function dashboardPage(
  ctx: PageContext,
  fields: DashboardFields,
  status?: GatewayStatus,
  extra: { note?: Html; line?: Html } = {},
): string {
  const L = (k: MessageKey): string => t(ctx.lang, k);
  const tile = (key: string, label: MessageKey, cls = 'v'): Html =>
    html`<section class="tile"><h2>${L(label)}</h2><div class="${cls}" data-field="${key}" data-tone="${fields[key]?.tone ?? 'muted'}">${fields[key]?.text ?? ''}</div></section>`;
  return layout(
    ctx,
    L('dash.title'),
    html`${extra.note ?? ''}<div data-attention>${status ? attentionBlock(ctx, attentionItems(status, ctx.lang)) : ''}</div><div data-live><div class="tiles">
${tile('ready', 'dash.ready')}${tile('line', 'dash.line')}${tile('reader', 'dash.reader')}${tile('card', 'dash.card')}
${tile('outbox', 'dash.outbox')}${tile('cache', 'dash.cache')}${tile('clock', 'dash.clock')}${tile('api', 'dash.api')}
${tile('certs', 'dash.certs')}${tile('tls', 'dash.tls', 'v fp')}${tile('version', 'dash.version')}
</div><p class="hint">${L('dash.updated')}: <span data-updated>${fmtTime(new Date().toISOString())}</span></p>
${extra.line ? html`<section class="timeline" data-timeline>${extra.line}</section>` : ''}</div>`,
  );
}

// --- lists --------------------------------------------------------------------------------------

/**
 * A list as a table, stacked as labelled cards on a phone (table.cards): each cell gets its
 * column's heading as data-label, in order.
 */
const table = (head: string[], rows: Html[], empty: string): Html => {
  const labelled = (r: Html): Html => {
    let i = 0;
    return new Html(r.text.replace(/<td(?=[\s>])/g, () => `<td data-label="${escapeHtml(head[i++] ?? '')}"`));
  };
  return rows.length
    ? html`<table class="cards"><thead><tr>${head.map((h) => html`<th>${h}</th>`)}</tr></thead><tbody>${rows.map(labelled)}</tbody></table>`
    : html`<p>${empty}</p>`;
};

function patientCell(ctx: PageContext, i: { patient?: RecheckItem['patient']; patientRef?: string }): Html {
  const p = i.patient;
  const ja = ctx.lang === 'ja';
  const facts = [
    p?.nameKana ? `${ja ? 'カナ' : 'kana'} ${p.nameKana}` : '',
    p?.birthdate ? `${ja ? '生年月日' : 'born'} ${p.birthdate}` : '',
    p?.insurerNumber ? `${ja ? '保険者番号' : 'insurer'} ${p.insurerNumber}` : '',
    p?.symbolNumber ? `${ja ? '記号・番号' : 'symbol/number'} ${p.symbolNumber}` : '',
  ].filter(Boolean);
  // the receipt computer's own reference is an id, shown as code
  const ref = i.patientRef ? html`<div class="hint">${ja ? '参照' : 'ref'} <code>${i.patientRef}</code></div>` : '';
  return html`${p?.name ? html`<strong>${p.name}</strong>` : ''}${facts.length ? html`<div class="hint">${facts.join(' / ')}</div>` : ''}${ref}`;
}

export function reconciliationPage(
  ctx: PageContext,
  items: ReconciliationItem[] | undefined,
  includeHandled: boolean,
  note?: Html,
): string {
  const L = (k: MessageKey): string => t(ctx.lang, k);
  const rows = (items ?? []).map(
    (
      i,
    ) => html`<tr data-id="${i.id}"><td>${fmtTime(i.checkedAt)}</td><td>${fmtTime(i.reverifiedAt)}</td><td>${clientLabel(ctx, i.client)}</td>
<td>${patientCell(ctx, i)}</td><td>${i.before} → ${i.after}</td><td>${
      i.handledAt
        ? html`${fmtTime(i.handledAt)} ${i.handledBy ? html`<span class="by">${clientLabel(ctx, i.handledBy)}</span>` : ''}`
        : html`<form class="inline" method="post" action="/reconciliation/${encodeURIComponent(i.id)}/handled">${csrfField(ctx)}<button type="submit">${L('rec.markHandled')}</button></form>`
    }</td></tr>`,
  );
  return layout(
    ctx,
    L('rec.title'),
    html`${note ?? ''}<p class="hint">${L('rec.help')}</p>
<p><a href="/reconciliation${includeHandled ? '' : '?all=1'}">${includeHandled ? L('nav.reconciliation') : L('rec.showHandled')}</a></p>
${items ? table([L('rec.checkedAt'), L('rec.reverifiedAt'), L('rec.client'), L('rec.patient'), L('rec.change'), L('rec.handled')], rows, L('rec.none')) : ''}`,
  );
}

export function rechecksPage(ctx: PageContext, items: RecheckItem[] | undefined, note?: Html): string {
  const L = (k: MessageKey): string => t(ctx.lang, k);
  const rows = (items ?? []).map(
    (i) => html`<tr><td>${fmtTime(i.firstCheckedAt)}</td><td>${fmtTime(i.nextAt)}</td><td>${fmtTime(i.until)}</td>
<td>${i.attempts}</td><td>${jaOr(ctx.lang, RECHECK_STATE_JA, i.state)}${i.lastResult ? ` (${i.lastResult})` : ''}</td><td>${clientLabel(ctx, i.client)}</td><td>${patientCell(ctx, i)}</td></tr>`,
  );
  return layout(
    ctx,
    L('rc.title'),
    html`${note ?? ''}${items ? table([L('rc.first'), L('rc.next'), L('rc.until'), L('rc.attempts'), L('rc.state'), L('rec.client'), L('rec.patient')], rows, L('rc.none')) : ''}`,
  );
}

export function batchesPage(ctx: PageContext, items: BatchItem[] | undefined, note?: Html): string {
  const L = (k: MessageKey): string => t(ctx.lang, k);
  const rows = (items ?? []).map(
    (b) =>
      html`<tr><td><code>${b.id}</code></td><td>${fmtTime(b.submittedAt)}</td><td>${jaOr(ctx.lang, BATCH_STATE_JA, b.state)}</td><td>${b.done}/${b.total}${b.errors ? ` (${b.errors} ✗)` : ''}</td><td>${clientLabel(ctx, b.client)}</td></tr>`,
  );
  return layout(
    ctx,
    L('b.title'),
    html`${note ?? ''}${items ? table(['ID', L('b.submitted'), L('b.state'), L('b.progress'), L('rec.client')], rows, L('b.none')) : ''}`,
  );
}

/** A token's scopes in words. */
const scopeText = (ctx: PageContext, scopes: readonly Scope[]): string =>
  scopes.map((sc) => t(ctx.lang, `scope.${sc}` as MessageKey)).join(ctx.lang === 'ja' ? '、' : ', ');

export function clientsPage(
  ctx: PageContext,
  clients: AdminClient[],
  opts: { created?: { client: AdminClient; token: string }; note?: Html; name?: string; scopes?: readonly string[] },
): string {
  const L = (k: MessageKey, p: Record<string, string | number> = {}): string => t(ctx.lang, k, p);
  const active = clients.filter((c) => !c.revokedAt);
  const revoked = clients.filter((c) => c.revokedAt);
  const cell = (label: string, content: Html | string): Html => html`<td data-label="${label}">${content}</td>`;
  const connection = (c: AdminClient): Html =>
    c.connections === undefined
      ? html`${L('na')}`
      : c.connections > 0
        ? html`<span data-tone="ok">${L('cl.connectedNow', { n: c.connections })}</span>`
        : html`<span data-tone="muted">${L('cl.notConnected')}</span>`;
  const rows = active.map(
    (
      c,
    ) => html`<tr data-client="${c.name}">${cell(L('cl.name'), html`<strong>${c.name}</strong>`)}${cell(L('cl.id'), c.id)}
${cell(L('cl.scopes'), scopeText(ctx, c.scopes))}${cell(L('cl.connection'), connection(c))}${cell(L('cl.lastSeen'), c.lastSeenAt ? fmtTime(c.lastSeenAt) : L('cl.never'))}
${cell(L('cl.created'), fmtTime(c.createdAt))}${cell(
  L('cl.actions'),
  html`<form class="inline" method="post" action="/clients/${c.id}/revoke" data-confirm="${L('cl.revokeConfirm')}">${csrfField(ctx)}<button type="submit" class="revoke">${L('cl.revoke')}</button></form>`,
)}</tr>`,
  );
  const gone = revoked.map(
    (c) =>
      html`<tr data-client="${c.name}">${cell(L('cl.name'), c.name)}${cell(L('cl.id'), c.id)}${cell(L('cl.scopes'), scopeText(ctx, c.scopes))}${cell(L('cl.created'), fmtTime(c.createdAt))}${cell(L('cl.revoked'), fmtTime(c.revokedAt))}</tr>`,
  );
  const created = opts.created
    ? html`<div class="msg created" role="status"><p>${L('cl.tokenOnce')}</p><p><strong>${opts.created.client.name}</strong> (${scopeText(ctx, opts.created.client.scopes)})</p><div class="token" id="new-token">${opts.created.token}</div>
<p class="copy-row"><button type="button" class="copy" id="copy-token" data-copy="new-token" data-copied="${L('cl.copied')}" data-copy-failed="${L('cl.copyFailed')}">${L('cl.copy')}</button> <span class="copy-said" role="status" aria-live="polite"></span></p></div>`
    : '';
  const chosen = new Set(opts.scopes ?? ['inquiry']);
  const picker = html`<fieldset class="scopes"><legend>${L('cl.scopes')}</legend><p class="hint">${L('cl.scopesHelp')}</p>${PAGE_SCOPES.map(
    (sc) =>
      html`<label class="check"><input type="checkbox" name="scope" value="${sc}" id="scope-${sc}"${chosen.has(sc) ? new Html(' checked') : ''}> <span><strong>${L(`scope.${sc}` as MessageKey)}</strong> <span class="hint">${L(`scope.${sc}.help` as MessageKey)}</span></span></label>`,
  )}</fieldset>`;
  return layout(
    ctx,
    L('cl.title'),
    html`${opts.note ?? ''}${created}
<form method="post" action="/clients" class="client-add">${csrfField(ctx)}<label for="client-name">${L('cl.addLabel')}</label>
<input type="text" id="client-name" name="name" maxlength="64" required value="${opts.name ?? ''}">${picker}<p><button type="submit" id="client-add">${L('cl.add')}</button></p></form>
${
  active.length
    ? html`<table class="cards clients"><thead><tr><th>${L('cl.name')}</th><th>${L('cl.id')}</th><th>${L('cl.scopes')}</th><th>${L('cl.connection')}</th><th>${L('cl.lastSeen')}</th><th>${L('cl.created')}</th><th>${L('cl.actions')}</th></tr></thead><tbody>${rows}</tbody></table><p class="hint">${L('cl.lastSeenHelp')}</p>`
    : html`<p>${L('cl.none')}</p>`
}${
  revoked.length
    ? html`<details class="revoked"><summary>${L('cl.revokedList', { n: revoked.length })}</summary><table class="cards"><thead><tr><th>${L('cl.name')}</th><th>${L('cl.id')}</th><th>${L('cl.scopes')}</th><th>${L('cl.created')}</th><th>${L('cl.revoked')}</th></tr></thead><tbody>${gone}</tbody></table></details>`
    : ''
}`,
  );
}

// --- settings -----------------------------------------------------------------------------------

function getPath(obj: unknown, path: string[]): unknown {
  return path.reduce<unknown>(
    (o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined),
    obj,
  );
}

/** One input per schema leaf, named by its dotted path: the form and the config file cannot drift. */
export function settingsPage(
  ctx: PageContext,
  config: GatewayConfig,
  opts: {
    file: string;
    writable: boolean;
    errors?: string[];
    saved?: boolean;
    changed?: string[];
    note?: Html;
    /** whether the restart button works (the daemon runs under systemd) */
    restart?: boolean;
  },
): string {
  const L = (k: MessageKey, p: Record<string, string> = {}): string => t(ctx.lang, k, p);
  let group: string | undefined;
  const rows = configLeaves().map((leaf) => {
    const name = leaf.path.join('.');
    const value = getPath(config, leaf.path);
    const enumValues = leaf.description.startsWith('one of ') ? leaf.description.slice(7).split(', ') : undefined;
    const text = settingText(ctx.lang, name, leaf.description);
    let input: Html;
    if (leaf.type === 'boolean') {
      input = html`<select name="${name}" id="set-${name}"><option value="true"${value === true ? new Html(' selected') : ''}>${L('set.yes')}</option><option value="false"${value === false ? new Html(' selected') : ''}>${L('set.no')}</option></select>`;
    } else if (enumValues) {
      input = html`<select name="${name}" id="set-${name}">${enumValues.map((v) => html`<option${v === value ? new Html(' selected') : ''}>${v}</option>`)}</select>`;
    } else if (leaf.type === 'integer' || leaf.type === 'number') {
      input = html`<input type="number"${leaf.type === 'number' ? new Html(' step="any"') : ''} name="${name}" id="set-${name}" value="${String(value ?? '')}">`;
    } else if (leaf.type === 'array') {
      input = html`<input type="text" name="${name}" id="set-${name}" value="${Array.isArray(value) ? value.join(', ') : ''}">`;
    } else {
      input = html`<input type="text" name="${name}" id="set-${name}" value="${String(value ?? '')}">`;
    }
    const section = leaf.path.length > 1 ? leaf.path[0]! : '';
    const groupName = ctx.lang === 'ja' ? (SETTING_GROUPS_JA[section] ?? section) : section || 'general';
    const heading =
      section !== group
        ? html`<tr class="group" data-group-head="${section}"><th colspan="2">${groupName}</th></tr>`
        : '';
    group = section;
    const search = `${text.label} ${text.help} ${name} ${groupName}`.toLowerCase();
    return html`${heading}<tr data-group="${section}" data-search="${search}"><td><label for="set-${name}">${text.label}</label>${LOCKOUT_SETTINGS.has(name) ? html` <span class="lock" title="${L('set.lockoutTitle')}">⚠</span>` : ''}</td><td>${input}<div class="hint">${text.help}</div></td></tr>`;
  });
  const errors = opts.errors?.length
    ? html`<div class="msg error" role="alert">${L('set.invalid')}<ul>${opts.errors.map((e) => html`<li>${e}</li>`)}</ul></div>`
    : '';
  return layout(
    ctx,
    L('set.title'),
    html`${opts.note ?? ''}${opts.saved ? message(L('set.saved')) : ''}${opts.saved ? savedChanges(ctx, opts.changed ?? []) : ''}${opts.saved ? restartBlock(ctx, opts.restart ?? false) : ''}${errors}
${opts.writable ? '' : message(L('set.readonly', { file: opts.file }), 'error')}<p class="hint">${L('set.help')} (${opts.file})</p>
<p class="search"><label for="settings-search">${L('set.search')}</label><input type="search" id="settings-search" data-filter="table.settings" autocomplete="off"></p>
<p class="hint" data-filter-none hidden>${L('set.searchNone')}</p>
<form method="post" action="/settings">${csrfField(ctx)}<table class="settings cards">${rows}</table>
<p><button type="submit" id="settings-save"${opts.writable ? '' : new Html(' disabled')}>${L('set.save')}</button></p></form>
${opts.saved ? '' : restartBlock(ctx, opts.restart ?? false)}`,
  );
}

/** A setting's value as staff read it: はい/いいえ, （空）, else the value as typed (code). */
function settingValue(ctx: PageContext, v: unknown): Html {
  if (v === true) return html`${t(ctx.lang, 'set.yes')}`;
  if (v === false) return html`${t(ctx.lang, 'set.no')}`;
  if (v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0))
    return html`${t(ctx.lang, 'set.empty')}`;
  return html`<code>${Array.isArray(v) ? v.join(', ') : String(v)}</code>`;
}

/** What a change that can lock staff out does, said before saving (undefined: this one is harmless). */
export function lockoutWarning(ctx: PageContext, c: SettingChange, after: GatewayConfig): Html | undefined {
  const L = (k: MessageKey, p: Record<string, string> = {}): string => t(ctx.lang, k, p);
  if (!c.lockout) return undefined;
  if (c.name === 'admin.enabled') return c.after === false ? html`${L('lock.admin.enabled')}` : undefined;
  if (c.name.startsWith('admin.')) {
    const host = after.admin.host.includes(':') ? `[${after.admin.host}]` : after.admin.host;
    // the address as code: staff type it, the sentence around it is translated
    const [before, rest] = L('lock.admin.address', { url: '\u0000' }).split('\u0000');
    return html`${before}<code>https://${host}:${after.admin.port}/</code>${rest}`;
  }
  if (c.name.startsWith('api.')) return html`${L('lock.api')}`;
  if (c.name.startsWith('tls.')) return html`${L('lock.tls')}`;
  return html`${L('lock.kiosk')}`;
}

/**
 * Before saving: each change (now → new), the warnings for the ones that can lock staff out, that a
 * restart applies them; the submitted values ride along hidden, to be saved or edited again.
 */
export function settingsReviewPage(
  ctx: PageContext,
  changes: SettingChange[],
  form: URLSearchParams,
  after: GatewayConfig,
): string {
  const L = (k: MessageKey): string => t(ctx.lang, k);
  const leaves = new Map(configLeaves().map((l) => [l.path.join('.'), l.description]));
  const warnings = changes.flatMap((c) => {
    const w = lockoutWarning(ctx, c, after);
    return w ? [{ c, w }] : [];
  });
  const label = (name: string): string => settingFullLabel(ctx, name, leaves.get(name) ?? '');
  const rows = changes.map(
    (c) =>
      html`<tr data-setting="${c.name}"${c.lockout ? new Html(' class="risky"') : ''}><td data-label="${L('set.setting')}">${label(c.name)}${c.lockout ? ' ⚠' : ''}</td><td data-label="${L('set.before')}"><del>${settingValue(ctx, c.before)}</del></td><td data-label="${L('set.after')}"><ins>${settingValue(ctx, c.after)}</ins></td></tr>`,
  );
  const hidden = [...form.entries()]
    .filter(([k]) => k !== '_csrf' && k !== 'confirm' && k !== 'back')
    .map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`);
  return layout(
    ctx,
    L('set.reviewTitle'),
    html`<p class="msg" role="status">${L('set.reviewHelp')}</p>
<table class="cards diff"><thead><tr><th>${L('set.setting')}</th><th>${L('set.before')}</th><th>${L('set.after')}</th></tr></thead><tbody>${rows}</tbody></table>
${
  warnings.length
    ? html`<div class="msg warn" id="lockout-warnings"><p><strong>${L('set.lockoutTitle')}</strong></p><ul>${warnings.map(
        ({ c, w }) => html`<li><strong>${label(c.name)}</strong>: ${w}</li>`,
      )}</ul></div>`
    : ''
}<p class="msg" id="restart-note">${L('set.restartNeeded')}</p>
<form method="post" action="/settings">${csrfField(ctx)}${hidden}
<p class="buttons"><button type="submit" name="confirm" value="1" id="settings-confirm">${L('set.confirm')}</button> <button type="submit" name="back" value="1" id="settings-back" class="secondary">${L('set.back')}</button></p></form>`,
  );
}

/** The restart through systemd (the daemon exits and systemd starts it again), or how to do it by hand. */
export function restartBlock(ctx: PageContext, available: boolean): Html {
  const L = (k: MessageKey): string => t(ctx.lang, k);
  return html`<section class="restart" id="restart"><h3>${L('rs.title')}</h3><p class="hint">${L('rs.help')}</p>${
    available
      ? html`<form method="post" action="/restart" data-confirm="${L('rs.confirm')}">${csrfField(ctx)}<button type="submit" id="restart-now" class="danger">${L('rs.button')}</button></form>`
      : html`<p>${L('rs.unavailable')} <code>sudo systemctl restart onshi-gateway</code></p>`
  }</section>`;
}

/** While the gateway restarts: the script waits for the page to go away and come back, then opens the login. */
export function restartingPage(ctx: PageContext): string {
  const L = (k: MessageKey): string => t(ctx.lang, k);
  return layout(
    ctx,
    L('rs.title'),
    html`<p class="msg" role="status" data-restarting data-slow="${L('rs.slow')}">${L('rs.restarting')}</p>`,
  );
}

/** A setting's label with its group's ("レセコン接続（WebSocket API） › ポート番号"): labels repeat across groups. */
function settingFullLabel(ctx: PageContext, name: string, description: string): string {
  const path = name.split('.');
  const section = path.length > 1 ? path[0]! : '';
  const group = ctx.lang === 'ja' ? (SETTING_GROUPS_JA[section] ?? section) : section || 'general';
  return `${group} › ${settingText(ctx.lang, name, description).label}`;
}

/** What the save changed, each by its label; the ones that can lock staff out are flagged. */
function savedChanges(ctx: PageContext, changed: string[]): Html {
  const ja = ctx.lang === 'ja';
  if (!changed.length) return message(ja ? '変更はありませんでした。' : 'Nothing changed.');
  const leaves = new Map(configLeaves().map((l) => [l.path.join('.'), l.description]));
  const risky = changed.filter((c) => LOCKOUT_SETTINGS.has(c));
  return html`<div class="msg" role="status">${ja ? '変更した設定（再起動で反映）:' : 'Changed (applied at the next restart):'}<ul>${changed.map(
    (c) => html`<li>${settingFullLabel(ctx, c, leaves.get(c) ?? '')}${LOCKOUT_SETTINGS.has(c) ? ' ⚠' : ''}</li>`,
  )}</ul>${
    risky.length
      ? html`<p class="error">⚠ ${
          ja
            ? '管理画面やレセコンへの接続先が変わります。再起動の前に、新しいアドレスとポートで開けることを確かめてください。開けなくなった場合は root で設定ファイルを直してください。'
            : 'The address of this page or of the API changes. Before restarting, make sure the new address and port are reachable; if not, fix the config file as root.'
        }</p>`
      : ''
  }</div>`;
}

/** The form back into a config object, typed by the schema (numbers, booleans, comma lists). */
export function settingsFromForm(form: URLSearchParams): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const leaf of configLeaves()) {
    const raw = form.get(leaf.path.join('.'));
    if (raw === null) continue;
    let value: unknown = raw;
    if (leaf.type === 'integer' || leaf.type === 'number')
      value = raw.trim() !== '' && Number.isFinite(Number(raw.trim())) ? Number(raw.trim()) : raw;
    else if (leaf.type === 'boolean') value = raw === 'true' ? true : raw === 'false' ? false : raw;
    else if (leaf.type === 'array')
      value = raw
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean);
    let obj = out;
    for (const seg of leaf.path.slice(0, -1)) {
      obj[seg] ??= {};
      obj = obj[seg] as Record<string, unknown>;
    }
    obj[leaf.path[leaf.path.length - 1]!] = value;
  }
  return out;
}

// --- backup, support, errors --------------------------------------------------------------------

export function backupPage(ctx: PageContext, opts: { error?: string; info?: string }): string {
  const L = (k: MessageKey): string => t(ctx.lang, k);
  return layout(
    ctx,
    L('bk.title'),
    html`${message(opts.info)}${message(opts.error, 'error')}<p>${L('bk.help')}</p>
<form method="post" action="/backup">${csrfField(ctx)}<label for="bk-pass">${L('bk.passphrase')}</label>
<input type="password" id="bk-pass" name="passphrase" autocomplete="new-password"> <button type="submit" id="backup-create">${L('bk.create')}</button></form>
<h3>${L('bk.restoreTitle')}</h3><p class="hint">${L('bk.restoreHelp')}</p>
<form method="post" action="/restore" enctype="multipart/form-data">${csrfField(ctx)}
<label for="bk-file">${L('bk.file')}</label><input type="file" id="bk-file" name="file" required>
<label for="bk-pass2">${L('bk.passphrase')}</label><input type="password" id="bk-pass2" name="passphrase" autocomplete="off">
<p><button type="submit" id="backup-restore">${L('bk.restore')}</button></p></form>`,
  );
}

export function supportPage(ctx: PageContext): string {
  const L = (k: MessageKey): string => t(ctx.lang, k);
  return layout(
    ctx,
    L('sp.title'),
    html`<p>${L('sp.help')}</p><form method="post" action="/support">${csrfField(ctx)}<button type="submit" id="support-download">${L('sp.download')}</button></form>`,
  );
}

export function errorPage(ctx: PageContext, title: string, text: string): string {
  return layout(ctx, title, message(text, 'error'));
}
