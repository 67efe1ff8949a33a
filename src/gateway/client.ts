/**
 * A small client for the gateway's WebSocket API: connects with a token, correlates requests by id,
 * and surfaces progress events and typed errors. Used by the CLI and the tests.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { WebSocket } from 'ws';
import { OnshiError } from '../errors.js';
import { FINAL_TYPES, type ApiErrorBody } from './api-schema.js';

export type ClientErrorCode = 'CLIENT_CONNECT_FAILED' | 'CLIENT_CLOSED' | 'CLIENT_TIMEOUT';

interface Pending { resolve(v: Record<string, unknown>): void; reject(e: Error): void; onProgress?: (m: Record<string, unknown>) => void }

export class GatewayClient extends EventEmitter {
  private readonly pending = new Map<string, Pending>();
  welcome: Record<string, unknown> | undefined;

  private constructor(private readonly ws: WebSocket) {
    super();
    ws.on('message', (data) => this.onMessage(data.toString()));
    ws.on('close', (code, reason) => {
      for (const p of this.pending.values()) p.reject(new OnshiError<ClientErrorCode>('CLIENT_CLOSED', `connection closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`, { retryable: true, details: { closeCode: code } }));
      this.pending.clear();
      this.emit('close', code);
    });
    ws.on('error', (e) => this.emit('error', e));
  }

  static connect(url: string, token: string, opts: { timeoutMs?: number; ca?: string | Buffer } = {}): Promise<GatewayClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, ...(opts.ca ? { ca: opts.ca } : {}), handshakeTimeout: opts.timeoutMs ?? 5000 });
      const fail = (why: string, e?: unknown): void => {
        ws.removeAllListeners();
        ws.on('error', () => {});
        ws.terminate();
        reject(new OnshiError<ClientErrorCode>('CLIENT_CONNECT_FAILED', `cannot connect to ${url}: ${why}`, { retryable: true, cause: e }));
      };
      ws.once('unexpected-response', (_req, res) => fail(`HTTP ${res.statusCode}${res.statusCode === 401 ? ' (the token was refused)' : ''}`));
      ws.once('error', (e) => fail(e.message, e));
      ws.once('message', (data) => {
        ws.removeAllListeners();
        const client = new GatewayClient(ws);
        try {
          client.welcome = JSON.parse(data.toString()) as Record<string, unknown>;
        } catch { /* the server always sends JSON */ }
        resolve(client);
      });
    });
  }

  /** Sends one request; resolves with its answer, rejects with the typed error the gateway sent. */
  request(msg: Record<string, unknown> & { type: string }, opts: { onProgress?: (m: Record<string, unknown>) => void } = {}): Promise<Record<string, unknown>> {
    const id = typeof msg.id === 'string' ? msg.id : randomUUID();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
      this.ws.send(JSON.stringify({ ...msg, id }));
    });
  }

  sendRaw(data: string | Buffer): void {
    this.ws.send(data);
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close(1000);
    });
  }

  private onMessage(text: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    this.emit('message', msg);
    const id = typeof msg.id === 'string' ? msg.id : undefined;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p) return;
    if (msg.type === 'error') {
      this.pending.delete(id!);
      const e = msg.error as ApiErrorBody;
      p.reject(new OnshiError(e.code, e.message, { retryable: e.retryable, ...(e.details ? { details: e.details } : {}) }));
    } else if (isFinal(msg.type)) {
      this.pending.delete(id!);
      p.resolve(msg);
    } else p.onProgress?.(msg);
  }
}

function isFinal(type: unknown): boolean {
  return (FINAL_TYPES as readonly unknown[]).includes(type);
}

/**
 * For the CLI commands that talk to the running gateway like a receipt computer: the URL and token
 * from --ws/--token or ONSHI_WS/ONSHI_TOKEN (a usage error without them), one connection for `use`.
 */
export async function withCliClient<T>(
  values: { ws?: string | undefined; token?: string | undefined }, command: string, usage: (message: string) => Error, use: (client: GatewayClient) => Promise<T>,
): Promise<T> {
  const url = values.ws ?? process.env.ONSHI_WS;
  const token = values.token ?? process.env.ONSHI_TOKEN;
  if (!url || !token) throw usage(`${command} needs --ws and --token (or ONSHI_WS and ONSHI_TOKEN)`);
  const client = await GatewayClient.connect(url, token);
  try {
    return await use(client);
  } finally {
    await client.close();
  }
}

/** Prints a list as JSON, one line per item, or `empty` when there is none. */
export function printList<T>(items: T[], json: boolean | undefined, empty: string, line: (item: T) => string): void {
  if (json) process.stdout.write(JSON.stringify(items, null, 2) + '\n');
  else if (items.length === 0) process.stdout.write(empty + '\n');
  else for (const i of items) process.stdout.write(line(i) + '\n');
}
