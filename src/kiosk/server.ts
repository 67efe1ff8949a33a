/**
 * The kiosk page's HTTPS server: its own port with the gateway's own certificate (the admin page's
 * TLS identity). Its own origin, not a path of the admin page: the tablet at the patient's side
 * never shares cookies, CSRF tokens or same-origin reach with the admin page, a firewall can open
 * the one port to the tablet alone, and a plain-HTTP or LAN-wide listener is never needed.
 *
 * Every answer carries a strict CSP (nothing inline, nothing external). Every POST must be JSON,
 * carry the `x-onshi-kiosk` header (which no form and no cross-site fetch without a preflight can
 * send) and come from this origin; the kiosk's token travels in an HttpOnly, Secure, SameSite=Strict
 * cookie the page's script never sees. Request bodies are never logged: one may hold the PIN.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClientRecord, ClientStore } from '../api/tokens.js';
import type { ConsentFlags } from '../checks/counter-advice.js';
import { isOnshiError, OnshiError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { HttpsServer, type ServerTls } from '../ops/https-server.js';
import type { KioskDesk } from './desk.js';
import type { KioskFlows } from './flow.js';
import { KIOSK_CSS, KIOSK_HTML, KIOSK_JS } from './page.js';

export const KIOSK_COOKIE = '__Host-onshi_kiosk';
const BODY_LIMIT = 2048;

const HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
  'strict-transport-security': 'max-age=31536000',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), usb=(), payment=()',
  'cache-control': 'no-store',
};

export interface KioskServerOptions {
  host: string;
  port: number;
  tls: { keyPem: string; certPem: string };
  clients: ClientStore;
  desk: KioskDesk;
  flows: KioskFlows;
  logger: Logger;
}

const STATUS: Record<string, number> = {
  KIOSK_CODE_INVALID: 403,
  KIOSK_PAIRING_LOCKED: 429,
  KIOSK_UNPAIRED: 401,
  KIOSK_READER_MISMATCH: 403,
  KIOSK_CSRF: 403,
  KIOSK_BAD_REQUEST: 400,
  KIOSK_BUSY: 409,
  KIOSK_NOT_ASKING: 409,
  PIN_NOT_EXPECTED: 409,
};

export class KioskServer {
  private readonly server: HttpsServer;

  private constructor(private readonly o: KioskServerOptions) {
    this.server = new HttpsServer({ tls: o.tls, handler: (req, res) => void this.handle(req, res) });
  }

  static async start(o: KioskServerOptions): Promise<KioskServer> {
    const s = new KioskServer(o);
    await s.server.listen(o.port, o.host);
    return s;
  }

  get port(): number {
    return this.server.port;
  }

  updateTls(tls: ServerTls): void {
    this.server.updateTls(tls);
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for (const [k, v] of Object.entries(HEADERS)) res.setHeader(k, v);
    const path = new URL(req.url ?? '/', 'https://x').pathname;
    try {
      if (req.method === 'GET') return this.get(req, res, path);
      if (req.method !== 'POST') return send(res, 405, { error: 'METHOD' });
      return await this.post(req, res, path);
    } catch (e) {
      const code = isOnshiError(e) ? e.code : 'INTERNAL';
      if (!isOnshiError(e)) this.o.logger.warn('kiosk request failed', { event: 'kiosk_error', path, code });
      if (!res.headersSent) send(res, STATUS[code] ?? (isOnshiError(e) ? 409 : 500), { error: code });
    }
  }

  private get(req: IncomingMessage, res: ServerResponse, path: string): void {
    if (path === '/') return void res.writeHead(302, { location: '/kiosk' }).end();
    if (path === '/kiosk') return sendText(res, KIOSK_HTML, 'text/html; charset=utf-8');
    if (path === '/kiosk/app.js') return sendText(res, KIOSK_JS, 'text/javascript; charset=utf-8');
    if (path === '/kiosk/app.css') return sendText(res, KIOSK_CSS, 'text/css; charset=utf-8');
    if (path === '/kiosk/api/session') {
      const c = this.kiosk(req, false);
      const idleSeconds = Math.round(this.o.flows.idleMs / 1000);
      return send(res, 200, c ? { paired: true, name: c.name, idleSeconds } : { paired: false, idleSeconds });
    }
    if (path === '/kiosk/api/screens') return this.screens(req, res);
    send(res, 404, { error: 'NOT_FOUND' });
  }

  /** The screen stream (server-sent events): the page renders what it is told, and holds nothing else. */
  private screens(req: IncomingMessage, res: ServerResponse): void {
    const client = this.kiosk(req, true)!;
    res.writeHead(200, { 'content-type': 'text/event-stream', connection: 'keep-alive' });
    const detach = this.o.flows.attach(client, (s) => res.write(`data: ${JSON.stringify(s)}\n\n`));
    const beat = setInterval(() => res.write(': \n\n'), 20_000);
    req.on('close', () => {
      clearInterval(beat);
      detach();
    });
  }

  private async post(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const origin = req.headers.origin;
    if (
      req.headers['x-onshi-kiosk'] !== '1' ||
      !/^application\/json\b/.test(req.headers['content-type'] ?? '') ||
      (origin !== undefined && origin !== `https://${req.headers.host ?? ''}`)
    )
      throw new OnshiError('KIOSK_CSRF', 'refused: not from the kiosk page');
    const body = await readJson(req);
    if (path === '/kiosk/api/pair') {
      const { token } = this.o.desk.pairing.redeem(String(body.code ?? ''));
      this.o.logger.info('kiosk paired', { event: 'kiosk_paired' });
      // Ten years: a kiosk is paired once; revoking its client (admin page) ends it.
      res.setHeader(
        'set-cookie',
        `${KIOSK_COOKIE}=${token}; Path=/; Max-Age=315360000; HttpOnly; Secure; SameSite=Strict`,
      );
      return send(res, 200, { paired: true });
    }
    const client = this.kiosk(req, true)!;
    if (body.reader !== undefined && body.reader !== client.reader)
      throw new OnshiError('KIOSK_READER_MISMATCH', 'this kiosk is paired with another reader');
    const flows = this.o.flows;
    switch (path) {
      case '/kiosk/api/start':
        flows.begin(client, body.mode === 'visual' ? 'visual' : 'pin', req.socket.remoteAddress ?? 'unknown');
        return send(res, 200, { ok: true });
      case '/kiosk/api/pin': {
        const pin = body.pin;
        body.pin = undefined;
        if (typeof pin !== 'string') throw new OnshiError('KIOSK_BAD_REQUEST', 'pin is missing');
        await flows.pin(client, pin, body.confirmLastTry === true);
        return send(res, 200, { ok: true });
      }
      case '/kiosk/api/consents':
        flows.consents(client, consentFlags(body));
        return send(res, 200, { ok: true });
      case '/kiosk/api/touch':
        flows.touched(client);
        return send(res, 200, { ok: true });
      case '/kiosk/api/cancel':
        flows.cancel(client);
        return send(res, 200, { ok: true });
      default:
        send(res, 404, { error: 'NOT_FOUND' });
    }
  }

  /** The paired kiosk behind the request's cookie (a kiosk-scoped token, bound to a reader). */
  private kiosk(req: IncomingMessage, required: boolean): ClientRecord | undefined {
    const token = cookieValue(req.headers.cookie, KIOSK_COOKIE);
    const c = this.o.clients.authenticateKiosk(token);
    if (!c && required) throw new OnshiError('KIOSK_UNPAIRED', 'this kiosk is not paired');
    return c;
  }
}

/** 診療・手術情報 is one choice for the patient and two blocks for central. */
function consentFlags(body: Record<string, unknown>): ConsentFlags {
  return {
    medication: body.medication === true,
    healthCheck: body.healthCheck === true,
    treatment: body.treatment === true,
    surgery: body.treatment === true,
    limit: body.limit === true,
  };
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > BODY_LIMIT) throw new OnshiError('KIOSK_BAD_REQUEST', 'body too large');
    chunks.push(c);
  }
  const buf = Buffer.concat(chunks);
  try {
    const v = JSON.parse(buf.toString('utf8')) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch {
    throw new OnshiError('KIOSK_BAD_REQUEST', 'the body is not a JSON object');
  } finally {
    // The body may hold the PIN: leave no copy in our buffers.
    buf.fill(0);
    for (const c of chunks) c.fill(0);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function sendText(res: ServerResponse, text: string, type: string): void {
  res.writeHead(200, { 'content-type': type }).end(text);
}
