/**
 * Loopback-only HTTP JSON control for a FaultProxy, used by the sandbox and by tests running in
 * another process:
 *   GET /line          → 200 {mode, stats}
 *   PUT /line {mode}   → 204 (a bare mode object {"kind": …} is accepted too)
 * Errors are JSON {error: {code, message, details?}}: 400 bad JSON or bad mode, 403 foreign Host,
 * 404, 405, 413.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { OnshiError, isOnshiError } from '../../core/errors.js';
import { HttpError, readBody, sendJson } from '../http.js';
import { parseLineMode } from './modes.js';
import type { FaultProxy } from './proxy.js';

const MAX_BODY = 16 * 1024;

export interface LineControl {
  /** e.g. "http://127.0.0.1:PORT" */
  url: string;
  close(): Promise<void>;
}

function sendError(
  res: http.ServerResponse,
  status: number,
  code: string,
  message: string,
  headers?: Record<string, string>,
): void {
  sendJson(res, status, { error: { code, message } }, headers);
}

export async function startLineControl(
  proxy: FaultProxy,
  opts: { port?: number; host?: '127.0.0.1' } = {},
): Promise<LineControl> {
  const host = opts.host ?? '127.0.0.1';
  if (host !== '127.0.0.1') {
    // The API can cut the clinic's line: it must never be reachable from the network.
    throw new OnshiError('LINE_CONTROL_CONFIG', 'the line control API listens on 127.0.0.1 only', {
      details: { host },
    });
  }
  let port = opts.port ?? 0;

  const server = http.createServer((req, res) => {
    void handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'LINE_CONTROL_INTERNAL', e instanceof Error ? e.message : String(e));
      else res.destroy();
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // Guard against DNS rebinding: a web page must not be able to drive the line through a browser.
    const hostHeader = (req.headers.host ?? '').toLowerCase();
    if (hostHeader !== `127.0.0.1:${port}` && hostHeader !== `localhost:${port}`) {
      sendError(res, 403, 'LINE_CONTROL_FORBIDDEN', 'Host header must name the loopback control address');
      return;
    }
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    if (path !== '/line') {
      sendError(res, 404, 'LINE_CONTROL_NOT_FOUND', `no such resource ${path}; use /line`);
      return;
    }
    if (req.method === 'GET') {
      sendJson(res, 200, { mode: proxy.mode(), stats: proxy.stats() });
      return;
    }
    if (req.method !== 'PUT') {
      sendError(res, 405, 'LINE_CONTROL_METHOD', 'use GET or PUT on /line', { allow: 'GET, PUT' });
      return;
    }
    let raw: Buffer;
    try {
      raw = await readBody(req, MAX_BODY);
    } catch (e) {
      if (!(e instanceof HttpError) || e.status !== 413) throw e;
      sendError(res, 413, 'LINE_CONTROL_TOO_LARGE', `body larger than ${MAX_BODY} bytes`);
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      sendError(res, 400, 'LINE_CONTROL_BAD_JSON', 'body must be JSON such as {"mode":{"kind":"down"}}');
      return;
    }
    const input =
      typeof body === 'object' && body !== null && !Array.isArray(body) && 'mode' in body
        ? (body as { mode: unknown }).mode
        : body;
    try {
      proxy.setMode(parseLineMode(input));
    } catch (e) {
      if (isOnshiError(e, 'LINE_MODE_INVALID')) {
        sendJson(res, 400, { error: e.toJSON() });
        return;
      }
      throw e;
    }
    sendJson(res, 204);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', () => {});
  port = (server.address() as AddressInfo).port;

  let closing: Promise<void> | null = null;
  return {
    url: `http://${host}:${port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
