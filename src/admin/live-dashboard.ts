/** The live dashboard: server-sent events with the status fields, pushed when they change. */
import type { ServerResponse } from 'node:http';
import type { Logger } from '../core/logger.js';
import type { AdminAccounts, SessionStore } from './auth.js';
import type { AdminBackend } from './backend.js';
import type { Req } from './http/request.js';
import * as v from './views.js';

interface Stream {
  res: ServerResponse;
  req: Req;
  last: string;
}

export class LiveDashboard {
  private readonly streams = new Set<Stream>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly o: { backend: AdminBackend; accounts: AdminAccounts; logger: Logger },
    private readonly sessions: SessionStore,
  ) {}

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.pushAll(), intervalMs);
    this.timer.unref();
  }

  /** Ends every stream. */
  stop(): void {
    clearInterval(this.timer);
    for (const s of this.streams) s.res.end();
    this.streams.clear();
  }

  open(req: Req): void {
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

  private async pushAll(): Promise<void> {
    await Promise.all([...this.streams].map((s) => this.pushOne(s)));
  }

  private async pushOne(s: Stream): Promise<void> {
    // The session is re-checked on every push, without touching it: a logout, an idle or absolute
    // expiry or `onshi admin reset` ends the stream (an open dashboard alone does not keep a login).
    const live = this.sessions.peek(s.req.sessionId, this.o.accounts.generation);
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
