/**
 * A tiny loopback-only HTTP JSON control API for the virtual cards (sandbox and CLI):
 *   GET  /cards                      → [{slot, profile, inserted, authTriesLeft, signTriesLeft}]
 *   POST /cards/:slot/insert {profile?, resetCounters?}
 *   POST /cards/:slot/remove
 *   GET  /cards/:slot/log            → ApduLogEntry[]
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ApduLogEntry, VirtualCard, VirtualCardState } from './virtual-card.js';
import { readBody, sendJson } from '../http.js';

export interface CardControl {
  server: Server;
  url: string;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export async function startCardControl(opts: {
  cards: VirtualCard[];
  port?: number;
  host?: string;
}): Promise<CardControl> {
  const host = opts.host ?? '127.0.0.1';
  if (!LOOPBACK.has(host)) throw new Error('the card control server listens on loopback only');
  const bySlot = new Map(opts.cards.map((c) => [c.slot, c]));
  const server = createServer((req, res) => {
    handle(bySlot, req, res).catch((e: unknown) => sendJson(res, 500, { error: String((e as Error).message ?? e) }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  const url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  return {
    server,
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The JSON object in the body; anything else counts as an empty request. */
async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const raw = await readBody(req, 64 * 1024);
  if (raw.length === 0) return {};
  const v = JSON.parse(raw.toString('utf8')) as unknown;
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

async function handle(cards: Map<number, VirtualCard>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x');
  const parts = url.pathname.split('/').filter(Boolean);
  if (parts[0] !== 'cards') return sendJson(res, 404, { error: 'not found' });
  if (parts.length === 1 && req.method === 'GET') {
    return sendJson(
      res,
      200,
      [...cards.values()].map((c) => c.state()),
    );
  }
  const slot = Number(parts[1]);
  const card = cards.get(slot);
  if (!Number.isInteger(slot) || !card) return sendJson(res, 404, { error: `no card on slot ${parts[1]}` });
  const action = parts[2];
  if (action === 'log' && req.method === 'GET' && parts.length === 3) return sendJson(res, 200, card.apduLog);
  if (req.method !== 'POST' || parts.length !== 3) return sendJson(res, 405, { error: 'method not allowed' });
  if (action === 'insert') {
    const body = await readJson(req);
    const profile = typeof body['profile'] === 'string' ? body['profile'] : undefined;
    if (profile !== undefined && (profile !== card.profile || body['resetCounters'] === true)) {
      await card.remove();
      await card.setProfile(profile, body['resetCounters'] === true);
    }
    try {
      await card.insert();
    } catch (e) {
      return sendJson(res, 503, { error: (e as Error).message });
    }
    return sendJson(res, 200, card.state());
  }
  if (action === 'remove') {
    await card.remove();
    return sendJson(res, 200, card.state());
  }
  return sendJson(res, 404, { error: 'not found' });
}

export interface CardControlClient {
  list(): Promise<VirtualCardState[]>;
  insert(slot: number, profile?: string, opts?: { resetCounters?: boolean }): Promise<VirtualCardState>;
  remove(slot: number): Promise<VirtualCardState>;
  log(slot: number): Promise<ApduLogEntry[]>;
}

export function cardControlClient(baseUrl: string): CardControlClient {
  const call = <T>(method: string, path: string, body?: unknown): Promise<T> =>
    new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        new URL(path, baseUrl),
        {
          method,
          headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {},
          timeout: 15_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = { error: text };
            }
            if ((res.statusCode ?? 500) >= 400)
              reject(
                new Error(
                  `card control ${method} ${path}: ${res.statusCode} ${(parsed as { error?: string }).error ?? ''}`,
                ),
              );
            else resolve(parsed as T);
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('card control timeout')));
      req.on('error', reject);
      req.end(data);
    });
  return {
    list: () => call('GET', '/cards'),
    insert: (slot, profile, opts) =>
      call('POST', `/cards/${slot}/insert`, {
        ...(profile ? { profile } : {}),
        ...(opts?.resetCounters ? { resetCounters: true } : {}),
      }),
    remove: (slot) => call('POST', `/cards/${slot}/remove`),
    log: (slot) => call('GET', `/cards/${slot}/log`),
  };
}
