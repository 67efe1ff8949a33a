/** One admin request as the routes see it, and the ways to answer it. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AdminSession } from '../auth.js';
import { isLang, type Lang } from '../i18n.js';
import { LANG_COOKIE, parseCookies } from './cookies.js';

export interface Req {
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

export function toReq(raw: IncomingMessage, res: ServerResponse): Req {
  const url = new URL(raw.url ?? '/', 'https://admin.invalid');
  const cookies = parseCookies(raw.headers.cookie);
  const langCookie = cookies.get(LANG_COOKIE);
  return {
    raw,
    res,
    method: raw.method ?? 'GET',
    path: url.pathname,
    query: url.searchParams,
    cookies,
    lang: isLang(langCookie) ? langCookie : 'ja',
    remote: (raw.socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, ''),
  };
}

export function send(
  req: Req,
  status: number,
  body: string,
  type = 'text/html; charset=utf-8',
  headers: Record<string, string | string[]> = {},
): void {
  req.res.writeHead(status, { 'content-type': type, ...headers });
  req.res.end(req.method === 'HEAD' ? undefined : body);
}

export function redirect(req: Req, to: string, headers: Record<string, string | string[]> = {}): void {
  req.res.writeHead(303, { location: to, ...headers });
  req.res.end();
}

/** A file to save (its name reduced to safe characters). */
export function download(req: Req, filename: string, data: Buffer, type: string): void {
  req.res.writeHead(200, {
    'content-type': type,
    'content-length': String(data.length),
    'content-disposition': `attachment; filename="${filename.replace(/[^\w.-]/g, '_')}"`,
  });
  req.res.end(data);
}
