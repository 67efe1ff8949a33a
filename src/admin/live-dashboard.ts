/**
 * The live dashboard: server-sent events with the status fields, pushed when they change, and the
 * line's 24-hour block (line-timeline.ts), pushed again when the line changes state and at least
 * every 15 s (its "now" end moves).
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from '../core/logger.js';
import type { GatewayStatus } from '../ops/status.js';
import type { AdminAccounts, SessionStore } from './auth.js';
import type { AdminBackend } from './backend.js';
import type { Req } from './http/request.js';
import type { Lang } from './i18n.js';
import { attentionItems } from './attention.js';
import { dashboardLineBlock } from './line-timeline.js';
import * as v from './views.js';

interface Stream {
  res: ServerResponse;
  req: Req;
  last: string;
  lastTimeline: string;
  lastAttention: string;
}

/** How long a drawn timeline is reused while the line's state stays the same. */
const TIMELINE_MAX_AGE_MS = 15_000;

export class LiveDashboard {
  private readonly streams = new Set<Stream>();
  private timer: NodeJS.Timeout | undefined;
  private readonly timelines = new Map<Lang, { key: string; at: number; html: string }>();

  constructor(
    private readonly o: { backend: AdminBackend; accounts: AdminAccounts; logger: Logger; now?: () => number },
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
    const entry = { res: req.res, req, last: '', lastTimeline: '', lastAttention: '' };
    this.streams.add(entry);
    req.raw.on('close', () => this.streams.delete(entry));
    void this.pushOne(entry);
  }

  private async pushAll(): Promise<void> {
    if (this.streams.size === 0) return;
    let status: GatewayStatus;
    try {
      status = await this.o.backend.status();
    } catch (e) {
      this.o.logger.warn('admin live status failed', { event: 'admin_live_error', error: (e as Error).message });
      return;
    }
    await Promise.all([...this.streams].map((s) => this.pushOne(s, status)));
  }

  /** The line's block in `lang`, drawn again when the line changed state or the drawing is old. */
  private async timeline(lang: Lang, status: GatewayStatus): Promise<string | undefined> {
    const key = `${status.line.state} ${status.line.since ?? ''}`;
    const now = (this.o.now ?? Date.now)();
    const cached = this.timelines.get(lang);
    if (cached && cached.key === key && now - cached.at < TIMELINE_MAX_AGE_MS) return cached.html;
    const block = await dashboardLineBlock(this.o.backend, status, lang, now);
    if (!block) return undefined;
    this.timelines.set(lang, { key, at: now, html: block.text });
    return block.text;
  }

  private async pushOne(s: Stream, known?: GatewayStatus): Promise<void> {
    // The session is re-checked on every push, without touching it: a logout, an idle or absolute
    // expiry or `onshi admin reset` ends the stream (an open dashboard alone does not keep a login).
    const live = this.sessions.peek(s.req.sessionId, this.o.accounts.generation);
    if (!live) {
      s.res.end('event: logout\ndata: {}\n\n');
      this.streams.delete(s);
      return;
    }
    try {
      const status = known ?? (await this.o.backend.status());
      const data = JSON.stringify({ fields: v.dashboardFields(status, s.req.lang) });
      let wrote = false;
      if (data !== s.last) {
        s.last = data;
        s.res.write(`event: status\ndata: ${data}\n\n`);
        wrote = true;
      }
      const timeline = await this.timeline(s.req.lang, status);
      if (timeline !== undefined && timeline !== s.lastTimeline) {
        s.res.write(`event: timeline\ndata: ${JSON.stringify({ html: timeline })}\n\n`);
        s.lastTimeline = timeline;
        wrote = true;
      }
      // what needs attention (alerts, open reconciliation, certificates): replaced when it changes
      const attention = v.attentionBlock(s.req, attentionItems(status, s.req.lang)).text;
      if (attention !== s.lastAttention) {
        s.res.write(`event: attention\ndata: ${JSON.stringify({ html: attention })}\n\n`);
        s.lastAttention = attention;
        wrote = true;
      }
      if (!wrote) s.res.write(': keep-alive\n\n');
    } catch (e) {
      this.o.logger.warn('admin live status failed', { event: 'admin_live_error', error: (e as Error).message });
    }
  }
}
