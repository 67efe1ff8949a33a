import t from 'tap';
import { request } from 'node:http';
import { HealthServer } from '../../src/ops/health.js';
import { CONTENT_TYPE, GatewayMetrics, Registry } from '../../src/ops/metrics.js';
import type { GatewayStatus } from '../../src/ops/status.js';

function status(over: Partial<GatewayStatus> = {}): GatewayStatus {
  const now = new Date('2026-05-01T09:00:00Z');
  return {
    version: '0.1.0',
    startedAt: '2026-05-01T08:00:00Z',
    now: now.toISOString(),
    ready: true,
    checks: { store: true, api: true },
    reader: { enabled: true, state: 'ready', readers: [{ name: 'Virtual PCD 00 00', cardPresent: true }] },
    card: { present: true, stage: 'idle' },
    line: { state: 'up', since: '2026-05-01T08:00:01Z' },
    outbox: { depth: 3, oldestAt: '2026-05-01T08:59:00Z' },
    cache: { entries: 42 },
    clock: { skewMs: 1500 },
    certificates: [{ name: 'central-client', notAfter: '2027-01-01T00:00:00Z' }],
    api: { listening: true, port: 8765, connections: 2 },
    ...over,
  };
}

t.test('registry renders the text format: help, type, labels escaped, cumulative buckets', async (t) => {
  const r = new Registry();
  const c = r.counter('x_total', 'a "counter"\nwith a newline \\', ['a']);
  c.inc({ a: 'q"uote\\back\nline' });
  c.inc({ a: 'plain' }, 2);
  const g = r.gauge('y', 'a gauge');
  g.set(undefined, 0.5);
  const h = r.histogram('z_seconds', 'a histogram', ['k'], [1, 0.1, 10]);
  for (const v of [0.05, 0.5, 0.5, 5, 50]) h.observe({ k: 'v' }, v);
  const text = await r.render();
  t.equal(
    text,
    [
      '# HELP x_total a "counter"\\nwith a newline \\\\',
      '# TYPE x_total counter',
      'x_total{a="q\\"uote\\\\back\\nline"} 1',
      'x_total{a="plain"} 2',
      '# HELP y a gauge',
      '# TYPE y gauge',
      'y 0.5',
      '# HELP z_seconds a histogram',
      '# TYPE z_seconds histogram',
      'z_seconds_bucket{k="v",le="0.1"} 1',
      'z_seconds_bucket{k="v",le="1"} 3',
      'z_seconds_bucket{k="v",le="10"} 4',
      'z_seconds_bucket{k="v",le="+Inf"} 5',
      'z_seconds_sum{k="v"} 56.05',
      'z_seconds_count{k="v"} 5',
      '',
    ].join('\n'),
  );
});

t.test('registry refuses what Prometheus would reject', async (t) => {
  const r = new Registry();
  t.throws(() => r.counter('bad-name', 'x'), { code: 'METRIC_INVALID' });
  t.throws(() => r.counter('ok', 'x', ['le']), { code: 'METRIC_INVALID' });
  const c = r.counter('c_total', 'x', ['a']);
  t.throws(() => r.counter('c_total', 'x'), { code: 'METRIC_INVALID', message: /twice/ });
  t.throws(() => c.inc({}), { code: 'METRIC_INVALID' });
  t.throws(() => c.inc({ a: 'x', b: 'y' }), { code: 'METRIC_INVALID' });
  t.throws(() => c.inc({ a: 'x' }, -1), { code: 'METRIC_INVALID' });
  t.throws(() => r.histogram('h', 'x', [], [1, 1]), { code: 'METRIC_INVALID' });
});

t.test('gateway metrics: checks recorded, states read from the status source at scrape time', async (t) => {
  let s = status();
  const m = new GatewayMetrics({ status: { status: () => s }, version: '9.9.9' });
  t.teardown(() => m.close());
  m.recordCheck({ kind: 'card', outcome: 'ok', source: 'central', seconds: 1.2 });
  m.recordCheck({ kind: 'numbers', outcome: 'ok', source: 'cache', seconds: 0.05 });
  m.recordCheck({ kind: 'numbers', outcome: 'CENTRAL_UNAVAILABLE', source: 'none', seconds: 10 });
  let text = await m.render();
  t.match(text, /onshi_build_info\{version="9.9.9",node="[\d.]+"\} 1/);
  t.match(text, /onshi_checks_total\{kind="card",outcome="ok",source="central"\} 1/);
  t.match(text, /onshi_checks_total\{kind="numbers",outcome="CENTRAL_UNAVAILABLE",source="none"\} 1/);
  t.match(text, /onshi_check_duration_seconds_bucket\{kind="card",source="central",le="2"\} 1/);
  t.match(text, /onshi_check_duration_seconds_bucket\{kind="card",source="central",le="1"\} 0/);
  t.match(text, /onshi_outbox_depth 3\n/);
  t.match(text, /onshi_outbox_oldest_age_seconds 60\n/);
  t.match(text, /onshi_link_state\{state="up"\} 1\n/);
  t.match(text, /onshi_link_state\{state="down"\} 0\n/);
  t.match(text, /onshi_reader_state\{state="ready"\} 1\n/);
  t.match(text, /onshi_cache_entries 42\n/);
  t.match(text, /onshi_clock_skew_seconds 1.5\n/);
  t.match(text, /onshi_certificate_expiry_timestamp_seconds\{name="central-client"\} 1798761600\n/);
  t.match(text, /onshi_event_loop_lag_p99_seconds [\d.e-]+\n/);
  s = status({
    line: { state: 'down' },
    reader: { enabled: true, state: 'pcscd_down', readers: [] },
    outbox: { depth: 0 },
  });
  text = await m.render();
  t.match(text, /onshi_link_state\{state="down"\} 1\n/);
  t.match(text, /onshi_link_state\{state="up"\} 0\n/);
  t.match(text, /onshi_reader_state\{state="pcscd_down"\} 1\n/);
  t.match(text, /onshi_outbox_oldest_age_seconds 0\n/);
  t.notMatch(text, /^onshi_tunnel_up /m, 'ip-vpn mode: no tunnel series');
  s = status({
    now: '2026-05-01T09:00:00.000Z',
    line: {
      state: 'up',
      mode: 'ipsec',
      tunnel: {
        ike: 'established',
        child: 'installed',
        up: true,
        since: '2026-05-01T08:00:00.000Z',
        rekeys: 3,
        bytesIn: 5000,
        bytesOut: 7000,
        packetsIn: 50,
        packetsOut: 70,
        lastDpd: '2026-05-01T08:59:48.000Z',
      },
    },
  });
  text = await m.render();
  t.match(text, /onshi_tunnel_up 1\n/);
  t.match(text, /onshi_tunnel_rekeys 3\n/);
  t.match(text, /onshi_tunnel_bytes\{direction="in"\} 5000\n/);
  t.match(text, /onshi_tunnel_bytes\{direction="out"\} 7000\n/);
  t.match(text, /onshi_tunnel_packets\{direction="out"\} 70\n/);
  t.match(text, /onshi_tunnel_last_dpd_seconds 12\n/);
  // every sample line parses as name{labels} value
  for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) {
    t.match(
      line,
      /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[\d.e+-]+|\+Inf|NaN)$/,
      line,
    );
  }
});

function get(
  port: number,
  path: string,
  host = `127.0.0.1:${port}`,
  method = 'GET',
): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('health endpoints on loopback', async (t) => {
  let s = status();
  let slow = false;
  const metrics = new GatewayMetrics({ status: { status: () => s }, version: '1' });
  const server = await HealthServer.start({
    port: 0,
    metrics,
    statusTimeoutMs: 200,
    status: { status: () => (slow ? new Promise<GatewayStatus>(() => {}) : s) },
  });
  t.teardown(async () => {
    metrics.close();
    await server.close();
  });
  const p = server.port;

  t.same(await get(p, '/healthz'), { status: 200, type: 'text/plain; charset=utf-8', body: 'ok\n' });
  const ready = await get(p, '/readyz');
  t.equal(ready.status, 200);
  t.same(JSON.parse(ready.body), { ready: true, checks: { store: true, api: true } });
  s = status({ ready: false, checks: { store: false, api: true } });
  const notReady = await get(p, '/readyz');
  t.equal(notReady.status, 503);
  t.same(JSON.parse(notReady.body).checks, { store: false, api: true });
  slow = true;
  t.equal((await get(p, '/readyz')).status, 503, 'a status source that hangs is not ready');
  t.equal((await get(p, '/healthz')).status, 200, 'but the process is alive');
  slow = false;

  const m = await get(p, '/metrics');
  t.equal(m.status, 200);
  t.equal(m.type, CONTENT_TYPE);
  t.match(m.body, /# TYPE onshi_checks_total counter/);
  const st = await get(p, '/status');
  t.equal(JSON.parse(st.body).version, '0.1.0');
  t.equal((await get(p, '/nope')).status, 404);
  t.equal((await get(p, '/healthz', `localhost:${p}`)).status, 200);
  t.equal((await get(p, '/status', 'evil.example')).status, 421, 'DNS rebinding: a foreign Host is refused');
  t.equal((await get(p, '/healthz', `127.0.0.1:${p}`, 'POST')).status, 405);
});

t.test('health refuses to listen beyond loopback', async (t) => {
  await t.rejects(HealthServer.start({ port: 0, host: '0.0.0.0' as '127.0.0.1', status: { status: () => status() } }), {
    code: 'HEALTH_NOT_LOOPBACK',
  });
});
