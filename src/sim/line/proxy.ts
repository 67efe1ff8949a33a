/**
 * TCP fault proxy: sits between the gateway and the central simulator and degrades the "closed
 * line" on demand. It works on raw TCP bytes and never terminates TLS, so the mTLS session between
 * the gateway and central is exactly what it would be on a real line.
 *
 * Each accepted connection gets two one-way pipes (client→target "up", target→client "down"). A
 * pipe is a FIFO of chunks with release times, drained by one pump; the current mode decides, per
 * chunk and per write, the delay, the slice size and whether to stop. FIN is queued like data so
 * that it never overtakes bytes, and half-close is passed through (allowHalfOpen on both sockets).
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { OnshiError } from '../../core/errors.js';
import { parseLineMode, type LineMode, type LineStats } from './modes.js';

/** Per-pipe queue bound: above it the reading side is paused, below LOW_WATER it resumes. */
const HIGH_WATER = 256 * 1024;
const LOW_WATER = 64 * 1024;
/** After truncate-after has sent FIN both ways, peers get this long to close before we destroy. */
const TRUNCATE_LINGER_MS = 2_000;
/**
 * reset-after sends its RST this long after the last byte. libuv reports data and an RST that
 * arrive in the same poll round as a clean EOF, so an immediate RST would look like truncate-after
 * to a Node peer; on a real line the RST trails the data anyway.
 */
const RESET_TRAIL_MS = 20;

const UP: LineMode = Object.freeze({ kind: 'up' });
const DOWN: LineMode = Object.freeze({ kind: 'down' });

export interface FaultProxyEvents {
  mode: [mode: LineMode];
  /** A flapping line changed phase. */
  flap: [phase: 'up' | 'down'];
  'connection-open': [info: { id: number; remote: string }];
  'connection-close': [info: { id: number }];
  'connection-refused': [info: { remote: string }];
  /** The target could not be reached or reset the connection (never emitted as 'error'). */
  'upstream-error': [info: { id: number; code: string | undefined; message: string }];
  /**
   * One write toward a peer ('up': the target, 'down': the client), as the proxy cut it. What the
   * peer's reads see may be coalesced (a busy reader takes several segments at once).
   */
  piece: [dir: 'up' | 'down', bytes: number];
}

export interface FaultProxyOptions {
  listenHost?: string;
  listenPort?: number;
  targetHost: string;
  targetPort: number;
  mode?: LineMode;
}

type Dir = 'up' | 'down';
type Trip = 'reset' | 'truncate';

interface DataItem {
  kind: 'data';
  buf: Buffer;
  at: number;
}
interface EndItem {
  kind: 'end';
  at: number;
  held: boolean;
}
type Item = DataItem | EndItem;

const now = (): number => performance.now();

/** Abortive close (RST). A socket still connecting has nothing to reset: plain destroy. */
function rst(sock: net.Socket | null): void {
  if (!sock || sock.destroyed) return;
  if (sock.connecting) {
    sock.destroy();
    return;
  }
  try {
    sock.resetAndDestroy();
  } catch {
    sock.destroy();
  }
}

function remoteOf(sock: net.Socket): string {
  return `${sock.remoteAddress ?? '?'}:${sock.remotePort ?? '?'}`;
}

/** Bandwidth slice: about 50 ms of line time, so the rate is smooth without a timer per byte. */
function sliceFor(bytesPerSecond: number): number {
  return Math.max(1, Math.min(16_384, Math.floor(bytesPerSecond / 20)));
}

class Pipe {
  private queue: Item[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private waitingDrain = false;
  private waitingConnect = false;
  private sourcePaused = false;
  /** bandwidth: when the emulated link is done with the previous slice, and the head slice's due time. */
  private linkFreeAt = 0;
  private sliceDueAt: number | null = null;
  private stopped = false;

  constructor(
    private readonly conn: Connection,
    private readonly dir: Dir,
    private readonly source: net.Socket,
    private readonly sink: net.Socket | null,
  ) {}

  push(buf: Buffer): void {
    if (this.stopped || this.conn.swallowing()) return;
    if (!this.sink || this.sink.destroyed) {
      // Bytes for a peer that is gone: a real stack answers with RST.
      this.conn.peerGone(this.dir);
      return;
    }
    this.queue.push({ kind: 'data', buf, at: now() + this.delay() });
    this.queued += buf.length;
    if (this.queued > HIGH_WATER && !this.sourcePaused) {
      this.sourcePaused = true;
      this.source.pause();
    }
    this.pump();
  }

  pushEnd(): void {
    if (this.stopped) return;
    this.queue.push({ kind: 'end', at: now() + this.delay(), held: false });
    this.pump();
  }

  onModeChange(): void {
    this.linkFreeAt = 0;
    this.sliceDueAt = null;
    this.clearTimers();
    this.pump();
  }

  stop(): void {
    this.stopped = true;
    this.clearTimers();
    this.queue = [];
    this.queued = 0;
    // Let the source drain into the void so that its FIN/close can still arrive.
    if (this.sourcePaused) {
      this.sourcePaused = false;
      this.source.resume();
    }
  }

  private delay(): number {
    const m = this.conn.mode();
    if (m.kind !== 'latency') return 0;
    return m.ms + (m.jitterMs ? Math.random() * m.jitterMs : 0);
  }

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
  }

  private schedule(ms: number): void {
    // ceil: a timer must never release a chunk before its time (tests rely on lower bounds).
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.pump();
      },
      Math.max(1, Math.ceil(ms)),
    );
    this.timer.unref();
  }

  private yieldThenPump(): void {
    // One turn of the event loop between fragments, so they leave as separate segments.
    this.immediate = setImmediate(() => {
      this.immediate = null;
      this.pump();
    });
    this.immediate.unref();
  }

  private dequeued(n: number): void {
    this.queued -= n;
    if (this.sourcePaused && this.queued < LOW_WATER) {
      this.sourcePaused = false;
      this.source.resume();
    }
  }

  private dropData(): void {
    const kept = this.queue.filter((i) => i.kind === 'end');
    this.queue = kept;
    this.dequeued(this.queued);
  }

  private pump(): void {
    if (this.stopped || this.timer || this.immediate || this.waitingDrain || this.waitingConnect) return;
    if (this.sink?.connecting) {
      // Node would buffer writes to a connecting socket and flush them as one segment, undoing
      // fragment/bandwidth shaping of the first bytes (the TLS ClientHello): wait for the target.
      this.waitingConnect = true;
      this.sink.once('connect', () => {
        this.waitingConnect = false;
        this.pump();
      });
      return;
    }
    for (;;) {
      const head = this.queue[0];
      if (!head) return;
      const mode = this.conn.mode();
      if (this.conn.swallowing()) {
        // Blackhole: data is lost, FIN is held (the line never delivers it).
        this.dropData();
        return;
      }
      const t = now();
      if (head.at > t) {
        this.schedule(head.at - t);
        return;
      }
      if (head.kind === 'end') {
        if (mode.kind === 'slow-close' && !head.held) {
          head.held = true;
          head.at = t + mode.delayMs;
          continue;
        }
        this.queue.shift();
        this.conn.endToward(this.dir);
        continue;
      }

      let n = head.buf.length;
      if (mode.kind === 'fragment') n = Math.min(n, mode.maxChunk);
      if (mode.kind === 'bandwidth') {
        n = Math.min(n, sliceFor(mode.bytesPerSecond));
        // A slice reaches the far side only once the link has had time to carry it.
        this.sliceDueAt ??= Math.max(this.linkFreeAt, t) + (n * 1000) / mode.bytesPerSecond;
        if (this.sliceDueAt > t) {
          this.schedule(this.sliceDueAt - t);
          return;
        }
        this.linkFreeAt = this.sliceDueAt;
        this.sliceDueAt = null;
      }

      let trip: Trip | null = null;
      if (this.dir === 'down' && (mode.kind === 'reset-after' || mode.kind === 'truncate-after')) {
        const left = mode.bytes - this.conn.downSinceMode;
        const kind: Trip = mode.kind === 'reset-after' ? 'reset' : 'truncate';
        if (left <= 0) {
          this.conn.trip(kind, null);
          return;
        }
        if (n >= left) {
          n = left;
          trip = kind;
        }
      }

      const piece = head.buf.subarray(0, n);
      if (n === head.buf.length) this.queue.shift();
      else head.buf = head.buf.subarray(n);
      this.dequeued(n);
      if (this.dir === 'down') this.conn.downSinceMode += n;

      if (trip) {
        this.conn.trip(trip, piece);
        return;
      }
      const ok = this.conn.write(this.dir, piece);
      if (!ok && this.sink) {
        this.waitingDrain = true;
        this.sink.once('drain', () => {
          this.waitingDrain = false;
          this.pump();
        });
        return;
      }
      if (mode.kind === 'fragment') {
        const next = this.queue[0];
        if (next?.kind === 'data') {
          const gap = mode.delayMs ?? 0;
          if (gap > 0) {
            next.at = Math.max(next.at, t + gap);
            continue;
          }
          this.yieldThenPump();
          return;
        }
      }
    }
  }
}

class Connection {
  readonly up: Pipe;
  readonly down: Pipe | null;
  /** Bytes forwarded server→client since the current mode took effect (reset-after/truncate-after). */
  downSinceMode = 0;
  /** Once blackholed, a connection stays dead: bytes were lost, resuming would hand peers a corrupt stream. */
  private holed: boolean;
  private tripped: Trip | null = null;
  private dead = false;
  private clientClosed = false;
  private upstreamClosed: boolean;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly proxy: FaultProxy,
    readonly id: number,
    private readonly client: net.Socket,
    private readonly upstream: net.Socket | null,
  ) {
    this.holed = upstream === null;
    this.upstreamClosed = upstream === null;
    client.setNoDelay(true);
    this.up = new Pipe(this, 'up', client, upstream);
    this.down = upstream ? new Pipe(this, 'down', upstream, client) : null;

    client.on('data', (b: Buffer) => this.up.push(b));
    client.on('end', () => {
      if (!this.holed) {
        this.up.pushEnd();
        return;
      }
      // A client that gives up on a blackholed connection would otherwise leave this pair
      // half-open for the proxy's lifetime.
      this.kill(false);
    });
    client.on('close', (hadError) => {
      this.clientClosed = true;
      if (hadError && !this.upstreamClosed) this.abortPeer('client');
      this.maybeDone();
    });

    if (upstream) {
      upstream.on('error', (e: NodeJS.ErrnoException) => {
        this.proxy.emit('upstream-error', { id, code: e.code, message: e.message });
      });
      upstream.on('data', (b: Buffer) => this.down?.push(b));
      upstream.on('end', () => this.down?.pushEnd());
      upstream.on('close', (hadError) => {
        this.upstreamClosed = true;
        if (hadError && !this.clientClosed) this.abortPeer('upstream');
        this.maybeDone();
      });
    }
  }

  mode(): LineMode {
    return this.proxy.effectiveMode();
  }

  swallowing(): boolean {
    return this.holed || this.tripped !== null;
  }

  onModeChange(): void {
    if (this.dead) return;
    const m = this.mode();
    if (m.kind === 'down') {
      this.kill(true);
      return;
    }
    if (m.kind === 'blackhole') this.holed = true;
    this.downSinceMode = 0;
    this.up.onModeChange();
    this.down?.onModeChange();
  }

  write(dir: Dir, piece: Buffer, cb?: () => void): boolean {
    const sink = dir === 'up' ? this.upstream : this.client;
    if (!sink || sink.destroyed || sink.writableEnded) {
      cb?.();
      return true;
    }
    this.proxy.countBytes(dir, piece.length);
    return sink.write(piece, cb ? () => cb() : undefined);
  }

  endToward(dir: Dir): void {
    const sink = dir === 'up' ? this.upstream : this.client;
    if (sink && !sink.destroyed && !sink.writableEnded) sink.end();
  }

  /** The reading side of `dir` sent data toward a peer that is already gone. */
  peerGone(dir: Dir): void {
    rst(dir === 'up' ? this.client : this.upstream);
  }

  /** reset-after / truncate-after reached its byte budget: send the last piece, then close both sides. */
  trip(kind: Trip, last: Buffer | null): void {
    if (this.tripped || this.dead) return;
    this.tripped = kind;
    this.up.stop();
    this.down?.stop();
    const act = (): void => {
      if (this.dead) return;
      if (kind === 'reset') {
        rst(this.client);
        rst(this.upstream);
        return;
      }
      this.endToward('down');
      this.endToward('up');
      this.later(TRUNCATE_LINGER_MS, () => {
        this.client.destroy();
        this.upstream?.destroy();
      });
    };
    const go = kind === 'reset' ? () => this.later(RESET_TRAIL_MS, act) : act;
    if (last) this.write('down', last, go);
    else go();
  }

  /** One side died abortively: pass the RST on (after the hold time in slow-close). */
  private abortPeer(from: 'client' | 'upstream'): void {
    const other = from === 'client' ? this.upstream : this.client;
    const m = this.mode();
    if (m.kind === 'slow-close' && m.delayMs > 0) this.later(m.delayMs, () => rst(other));
    else rst(other);
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  /** Destroy both sides now; `reset` sends RST (line down), otherwise a plain destroy (proxy shutdown). */
  kill(reset: boolean): void {
    this.up.stop();
    this.down?.stop();
    if (reset) {
      rst(this.client);
      rst(this.upstream);
    } else {
      this.client.destroy();
      this.upstream?.destroy();
    }
  }

  private maybeDone(): void {
    if (this.dead || !this.clientClosed || !this.upstreamClosed) return;
    this.dead = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.up.stop();
    this.down?.stop();
    this.proxy.connectionDone(this);
  }
}

export class FaultProxy extends EventEmitter<FaultProxyEvents> {
  readonly port: number;
  /** "host:port" to give the client in place of the target's address. */
  readonly url: string;
  private current: LineMode;
  private flapDown = false;
  private flapTimer: NodeJS.Timeout | null = null;
  private readonly conns = new Set<Connection>();
  private counters = { connectionsAccepted: 0, connectionsRefused: 0, bytesUp: 0, bytesDown: 0 };
  private nextId = 1;
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly server: net.Server,
    host: string,
    port: number,
    private readonly target: { host: string; port: number },
    mode: LineMode,
  ) {
    super();
    this.port = port;
    this.url = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.current = mode;
    server.on('connection', (s) => this.accept(s));
    this.applySchedule();
  }

  static async start(opts: FaultProxyOptions): Promise<FaultProxy> {
    const host = opts.listenHost ?? '127.0.0.1';
    const { targetHost, targetPort } = opts;
    if (typeof targetHost !== 'string' || targetHost === '') {
      throw new OnshiError('LINE_PROXY_CONFIG', 'targetHost must be a non-empty string', {
        details: { field: 'targetHost' },
      });
    }
    for (const [field, v] of [
      ['targetPort', targetPort],
      ['listenPort', opts.listenPort ?? 0],
    ] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 65_535 || (field === 'targetPort' && v === 0)) {
        throw new OnshiError('LINE_PROXY_CONFIG', `${field} must be a TCP port number`, {
          details: { field, value: v },
        });
      }
    }
    const mode = parseLineMode(opts.mode ?? UP);
    const server = net.createServer({ allowHalfOpen: true, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.listenPort ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Past startup a server error (e.g. EMFILE on accept) must not crash the process.
    server.on('error', () => {});
    const addr = server.address() as net.AddressInfo;
    return new FaultProxy(server, host, addr.port, { host: targetHost, port: targetPort }, mode);
  }

  mode(): LineMode {
    return this.current;
  }

  /** Validates, then applies to new and existing connections (down resets them, blackhole silences them). */
  setMode(mode: LineMode): void {
    const next = parseLineMode(mode);
    this.current = next;
    this.applySchedule();
    for (const c of [...this.conns]) c.onModeChange();
    this.emit('mode', next);
  }

  stats(): LineStats {
    return { ...this.counters, activeConnections: this.conns.size, mode: this.current.kind };
  }

  resetStats(): void {
    this.counters = { connectionsAccepted: 0, connectionsRefused: 0, bytesUp: 0, bytesDown: 0 };
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.clearFlap();
      this.server.close(() => resolve());
      for (const c of [...this.conns]) c.kill(false);
    });
    return this.closing;
  }

  /** @internal the mode connections act on: flap resolved to its current phase. */
  effectiveMode(): LineMode {
    if (this.current.kind === 'flap') return this.flapDown ? DOWN : UP;
    return this.current;
  }

  /** @internal */
  countBytes(dir: Dir, n: number): void {
    if (dir === 'up') this.counters.bytesUp += n;
    else this.counters.bytesDown += n;
    this.emit('piece', dir, n);
  }

  /** @internal */
  connectionDone(c: Connection): void {
    if (this.conns.delete(c)) this.emit('connection-close', { id: c.id });
  }

  private accept(client: net.Socket): void {
    client.on('error', () => {}); // resets from clients are routine; 'close' does the bookkeeping
    const remote = remoteOf(client);
    if (this.closing) {
      client.destroy();
      return;
    }
    const m = this.effectiveMode();
    if (m.kind === 'down') {
      this.counters.connectionsRefused++;
      this.emit('connection-refused', { remote });
      rst(client);
      return;
    }
    this.counters.connectionsAccepted++;
    const id = this.nextId++;
    // A blackholed line never reaches the target: no upstream connection at all.
    const upstream =
      m.kind === 'blackhole'
        ? null
        : net.connect({ host: this.target.host, port: this.target.port, allowHalfOpen: true, noDelay: true });
    const conn = new Connection(this, id, client, upstream);
    this.conns.add(conn);
    this.emit('connection-open', { id, remote });
  }

  private clearFlap(): void {
    if (this.flapTimer) clearTimeout(this.flapTimer);
    this.flapTimer = null;
    this.flapDown = false;
  }

  /** (Re)starts the flap schedule, always beginning with the up phase. */
  private applySchedule(): void {
    this.clearFlap();
    const m = this.current;
    if (m.kind !== 'flap') return;
    const step = (): void => {
      this.flapDown = !this.flapDown;
      this.flapTimer = setTimeout(step, this.flapDown ? m.downMs : m.upMs);
      this.flapTimer.unref();
      if (this.flapDown) for (const c of [...this.conns]) c.onModeChange();
      this.emit('flap', this.flapDown ? 'down' : 'up');
    };
    this.flapTimer = setTimeout(step, m.upMs);
    this.flapTimer.unref();
  }
}
