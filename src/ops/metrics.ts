/**
 * A small Prometheus registry (text exposition format 0.0.4): counters, gauges and histograms
 * with labels. Our own rather than prom-client: we need a dozen series, and prom-client's default
 * collectors and cluster code would be most of the dependency.
 *
 * GatewayMetrics below defines the gateway's series: events (checks) are recorded by the daemon as
 * they happen; states (outbox, line, reader, cache) are read from the StatusSource at scrape time.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { OnshiError } from '../core/errors.js';
import type { GatewayStatus, LinkState, ReaderState, StatusSource } from './status.js';

export type MetricsErrorCode = 'METRIC_INVALID';
export type Labels = Readonly<Record<string, string>>;

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const escapeHelp = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

/** Prometheus number formatting: integers plainly, +Inf/-Inf/NaN spelled out. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function labelText(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i]!)}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

abstract class Metric {
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!NAME_RE.test(name)) throw new OnshiError<MetricsErrorCode>('METRIC_INVALID', `bad metric name ${name}`);
    for (const l of labelNames) {
      if (!LABEL_RE.test(l) || l.startsWith('__') || l === 'le')
        throw new OnshiError<MetricsErrorCode>('METRIC_INVALID', `bad label name ${l} on ${name}`);
    }
  }

  /** The label values in declared order; every declared label must be given, and nothing else. */
  protected key(labels: Labels = {}): string[] {
    const given = Object.keys(labels);
    if (given.length !== this.labelNames.length || !this.labelNames.every((n) => typeof labels[n] === 'string')) {
      throw new OnshiError<MetricsErrorCode>(
        'METRIC_INVALID',
        `${this.name} takes labels {${this.labelNames.join(',')}}, got {${given.join(',')}}`,
      );
    }
    return this.labelNames.map((n) => labels[n]!);
  }

  abstract samples(): string[];

  render(): string {
    return [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`, ...this.samples()].join(
      '\n',
    );
  }
}

class ValueMetric extends Metric {
  readonly type: 'counter' | 'gauge' = 'gauge';
  protected readonly values = new Map<string, { labels: string[]; value: number }>();

  protected add(labels: Labels | undefined, by: number, replace: boolean): void {
    const values = this.key(labels);
    const k = JSON.stringify(values);
    const cur = this.values.get(k);
    if (cur) cur.value = replace ? by : cur.value + by;
    else this.values.set(k, { labels: values, value: by });
  }

  get(labels?: Labels): number | undefined {
    return this.values.get(JSON.stringify(this.key(labels)))?.value;
  }

  samples(): string[] {
    return [...this.values.values()].map(
      (s) => `${this.name}${labelText(this.labelNames, s.labels)} ${formatValue(s.value)}`,
    );
  }
}

export class Counter extends ValueMetric {
  override readonly type = 'counter' as const;
  inc(labels?: Labels, by = 1): void {
    if (!(by >= 0)) throw new OnshiError<MetricsErrorCode>('METRIC_INVALID', `${this.name}: a counter only goes up`);
    this.add(labels, by, false);
  }
}

export class Gauge extends ValueMetric {
  override readonly type = 'gauge' as const;
  set(labels: Labels | undefined, value: number): void {
    this.add(labels, value, true);
  }
  inc(labels?: Labels, by = 1): void {
    this.add(labels, by, false);
  }
  /** Drops every series (for gauges rebuilt from a snapshot at each scrape). */
  reset(): void {
    this.values.clear();
  }
}

export class Histogram extends Metric {
  readonly type = 'histogram' as const;
  private readonly series = new Map<string, { labels: string[]; counts: number[]; sum: number; count: number }>();
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    super(name, help, labelNames);
    const sorted = [...buckets].sort((a, b) => a - b);
    if (sorted.length === 0 || sorted.some((b, i) => !Number.isFinite(b) || (i > 0 && b === sorted[i - 1]))) {
      throw new OnshiError<MetricsErrorCode>('METRIC_INVALID', `${name}: buckets must be distinct finite numbers`);
    }
    this.buckets = sorted;
  }

  observe(labels: Labels | undefined, value: number): void {
    const values = this.key(labels);
    const k = JSON.stringify(values);
    let s = this.series.get(k);
    if (!s) {
      s = { labels: values, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    // Counts are per bucket here and made cumulative when rendered.
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  samples(): string[] {
    const out: string[] = [];
    for (const s of this.series.values()) {
      let cum = 0;
      this.buckets.forEach((b, i) => {
        cum += s.counts[i]!;
        out.push(`${this.name}_bucket${labelText(this.labelNames, s.labels, ['le', formatValue(b)])} ${cum}`);
      });
      out.push(`${this.name}_bucket${labelText(this.labelNames, s.labels, ['le', '+Inf'])} ${s.count}`);
      out.push(`${this.name}_sum${labelText(this.labelNames, s.labels)} ${formatValue(s.sum)}`);
      out.push(`${this.name}_count${labelText(this.labelNames, s.labels)} ${s.count}`);
    }
    return out;
  }
}

export class Registry {
  private readonly metrics = new Map<string, Metric>();
  private readonly collectors: (() => void | Promise<void>)[] = [];

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.register(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.register(new Gauge(name, help, labelNames));
  }

  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Histogram {
    return this.register(new Histogram(name, help, labelNames, buckets));
  }

  /** Runs before each render, to refresh gauges from current state. */
  onCollect(fn: () => void | Promise<void>): void {
    this.collectors.push(fn);
  }

  async render(): Promise<string> {
    for (const c of this.collectors) await c();
    return [...this.metrics.values()].map((m) => m.render()).join('\n') + '\n';
  }

  private register<M extends Metric>(m: M): M {
    if (this.metrics.has(m.name))
      throw new OnshiError<MetricsErrorCode>('METRIC_INVALID', `metric ${m.name} registered twice`);
    this.metrics.set(m.name, m);
    return m;
  }
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

// --- the gateway's series -----------------------------------------------------------------------

export type CheckKind = 'card' | 'numbers';
/** central: answered by central; cache: from the local cache during an outage; none: no answer */
export type CheckSource = 'central' | 'cache' | 'none';

const LINK_STATES: readonly LinkState[] = ['up', 'degraded', 'down', 'unknown'];
const READER_STATES: readonly ReaderState[] = ['ready', 'no_reader', 'pcscd_down', 'disabled', 'unknown'];

export interface GatewayMetricsOptions {
  status: StatusSource;
  version: string;
  /** event-loop delay window: the lag gauges describe the last window (default 15 s) */
  lagWindowMs?: number;
}

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly checks: Counter;
  private readonly latency: Histogram;
  private readonly lag: IntervalHistogram;
  private readonly lagTimer: NodeJS.Timeout;
  private lagSnapshot: { p50: number; p99: number; max: number } | undefined;

  constructor(opts: GatewayMetricsOptions) {
    const r = this.registry;
    r.gauge('onshi_build_info', 'version of the running gateway', ['version', 'node']).set(
      { version: opts.version, node: process.versions.node },
      1,
    );
    this.checks = r.counter(
      'onshi_checks_total',
      'eligibility checks answered, by kind, outcome (ok or an error code) and where the answer came from',
      ['kind', 'outcome', 'source'],
    );
    this.latency = r.histogram(
      'onshi_check_duration_seconds',
      'time from request to answer of an eligibility check (card checks include the PIN entry)',
      ['kind', 'source'],
      [0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60],
    );
    const outboxDepth = r.gauge('onshi_outbox_depth', 'checks waiting to be re-verified with central');
    const outboxAge = r.gauge(
      'onshi_outbox_oldest_age_seconds',
      'age of the oldest check waiting in the outbox (0 when empty)',
    );
    const link = r.gauge('onshi_link_state', 'state of the closed line to central (1 for the current state)', [
      'state',
    ]);
    // ipsec mode only (absent in ip-vpn mode, where the carrier's router owns the tunnel)
    const tunnelUp = r.gauge('onshi_tunnel_up', '1 when the IPsec CHILD_SA carries traffic (ipsec mode)');
    const tunnelRekeys = r.gauge('onshi_tunnel_rekeys', 'IKE_SA and CHILD_SA rekeys since the gateway started');
    const tunnelBytes = r.gauge('onshi_tunnel_bytes', 'bytes through the tunnel since the gateway started', [
      'direction',
    ]);
    const tunnelPackets = r.gauge('onshi_tunnel_packets', 'packets through the tunnel since the gateway started', [
      'direction',
    ]);
    const tunnelDpd = r.gauge(
      'onshi_tunnel_last_dpd_seconds',
      'seconds since the last sign of life from the IPsec peer (ESP in or DPD)',
    );
    const reader = r.gauge('onshi_reader_state', 'state of the card reader (1 for the current state)', ['state']);
    const card = r.gauge('onshi_card_present', 'a card is in a reader');
    const cacheEntries = r.gauge('onshi_cache_entries', 'entries in the eligibility cache');
    const ready = r.gauge('onshi_ready', '1 when the gateway is ready to serve');
    const wsClients = r.gauge('onshi_api_connections', 'receipt computers connected to the WebSocket API');
    const certExpiry = r.gauge(
      'onshi_certificate_expiry_timestamp_seconds',
      'when each certificate the gateway uses expires (unix time)',
      ['name'],
    );
    const skew = r.gauge(
      'onshi_clock_skew_seconds',
      "the gateway's clock minus central's (from central's Date header)",
    );
    const lagP50 = r.gauge('onshi_event_loop_lag_p50_seconds', 'event-loop delay, median over the last window');
    const lagP99 = r.gauge(
      'onshi_event_loop_lag_p99_seconds',
      'event-loop delay, 99th percentile over the last window',
    );
    const lagMax = r.gauge('onshi_event_loop_lag_max_seconds', 'event-loop delay, maximum over the last window');
    const rss = r.gauge('process_resident_memory_bytes', 'resident memory of the gateway process');
    const started = r.gauge('process_start_time_seconds', 'when the gateway process started (unix time)');
    started.set(undefined, Math.round((Date.now() - process.uptime() * 1000) / 1000));

    this.lag = monitorEventLoopDelay({ resolution: 10 });
    this.lag.enable();
    // A fixed window rather than reset-per-scrape, so two scrapers do not disturb each other.
    this.lagTimer = setInterval(() => {
      this.lagSnapshot = this.readLag();
      this.lag.reset();
    }, opts.lagWindowMs ?? 15_000);
    this.lagTimer.unref();

    r.onCollect(async () => {
      const s: GatewayStatus = await opts.status.status();
      if (s.outbox) {
        outboxDepth.set(undefined, s.outbox.depth);
        outboxAge.set(
          undefined,
          s.outbox.oldestAt ? Math.max(0, (Date.parse(s.now) - Date.parse(s.outbox.oldestAt)) / 1000) : 0,
        );
      }
      for (const st of LINK_STATES) link.set({ state: st }, s.line.state === st ? 1 : 0);
      const tun = s.line.tunnel;
      if (tun) {
        tunnelUp.set(undefined, tun.up ? 1 : 0);
        tunnelRekeys.set(undefined, tun.rekeys);
        tunnelBytes.set({ direction: 'in' }, tun.bytesIn);
        tunnelBytes.set({ direction: 'out' }, tun.bytesOut);
        tunnelPackets.set({ direction: 'in' }, tun.packetsIn);
        tunnelPackets.set({ direction: 'out' }, tun.packetsOut);
        if (tun.lastDpd) tunnelDpd.set(undefined, Math.max(0, (Date.parse(s.now) - Date.parse(tun.lastDpd)) / 1000));
        else tunnelDpd.reset();
      }
      for (const st of READER_STATES) reader.set({ state: st }, s.reader.state === st ? 1 : 0);
      card.set(undefined, s.card.present ? 1 : 0);
      if (s.cache) cacheEntries.set(undefined, s.cache.entries);
      ready.set(undefined, s.ready ? 1 : 0);
      wsClients.set(undefined, s.api.connections);
      certExpiry.reset();
      for (const c of s.certificates) certExpiry.set({ name: c.name }, Math.round(Date.parse(c.notAfter) / 1000));
      if (s.clock.skewMs !== undefined) skew.set(undefined, s.clock.skewMs / 1000);
      const l = this.lagSnapshot ?? this.readLag();
      lagP50.set(undefined, l.p50);
      lagP99.set(undefined, l.p99);
      lagMax.set(undefined, l.max);
      rss.set(undefined, process.memoryUsage.rss());
    });
  }

  /** The daemon calls this once per answered (or failed) check. */
  recordCheck(c: { kind: CheckKind; outcome: string; source: CheckSource; seconds: number }): void {
    this.checks.inc({ kind: c.kind, outcome: c.outcome, source: c.source });
    this.latency.observe({ kind: c.kind, source: c.source }, c.seconds);
  }

  render(): Promise<string> {
    return this.registry.render();
  }

  close(): void {
    clearInterval(this.lagTimer);
    this.lag.disable();
  }

  private readLag(): { p50: number; p99: number; max: number } {
    // perf_hooks reports nanoseconds; before any sample it reports NaN/huge values, hence the guard.
    const ns = (v: number): number => (Number.isFinite(v) && this.lag.count > 0 ? v / 1e9 : 0);
    return { p50: ns(this.lag.percentile(50)), p99: ns(this.lag.percentile(99)), max: ns(this.lag.max) };
  }
}
