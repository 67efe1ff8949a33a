import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { FaultProxy, startLineControl } from '../../src/sim/line/index.js';

interface Reply {
  status: number;
  body: unknown;
  headers: http.IncomingHttpHeaders;
}

function call(url: string, method: string, body?: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method, agent: false, headers: { 'content-type': 'application/json', ...headers } },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (b: Buffer) => parts.push(b));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString();
          resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined, headers: res.headers });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

t.test('control API: GET and PUT /line, good and bad input', async (t) => {
  const target = net.createServer((s) => s.on('error', () => {}).pipe(s));
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => target.close(() => r())));
  const proxy = await FaultProxy.start({
    targetHost: '127.0.0.1',
    targetPort: (target.address() as net.AddressInfo).port,
  });
  t.teardown(() => proxy.close());
  const ctl = await startLineControl(proxy);
  t.teardown(() => ctl.close());
  t.match(ctl.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const line = `${ctl.url}/line`;

  const got = await call(line, 'GET');
  t.equal(got.status, 200);
  t.match(got.headers['content-type'], /application\/json/);
  t.same(got.body, {
    mode: { kind: 'up' },
    stats: {
      connectionsAccepted: 0,
      connectionsRefused: 0,
      bytesUp: 0,
      bytesDown: 0,
      activeConnections: 0,
      mode: 'up',
    },
  });

  const put = await call(line, 'PUT', JSON.stringify({ mode: { kind: 'latency', ms: 25, jitterMs: 5 } }));
  t.equal(put.status, 204);
  t.same(proxy.mode(), { kind: 'latency', ms: 25, jitterMs: 5 });
  t.match((await call(line, 'GET')).body, {
    mode: { kind: 'latency', ms: 25, jitterMs: 5 },
    stats: { mode: 'latency' },
  });

  t.equal((await call(line, 'PUT', JSON.stringify({ kind: 'down' }))).status, 204, 'a bare mode object is accepted');
  t.equal(proxy.mode().kind, 'down');

  const badMode = await call(line, 'PUT', JSON.stringify({ mode: { kind: 'latency', ms: -1 } }));
  t.equal(badMode.status, 400);
  t.match(badMode.body, {
    error: {
      code: 'LINE_MODE_INVALID',
      message: /"ms" must be between 0 and/,
      details: { field: 'ms', reason: 'out-of-range' },
    },
  });
  const badKind = await call(line, 'PUT', JSON.stringify({ mode: { kind: 'sideways' } }));
  t.equal(badKind.status, 400);
  t.match(badKind.body, { error: { code: 'LINE_MODE_INVALID', message: /unknown line mode kind/ } });
  const badJson = await call(line, 'PUT', '{"mode":');
  t.equal(badJson.status, 400);
  t.match(badJson.body, { error: { code: 'LINE_CONTROL_BAD_JSON' } });
  t.equal(proxy.mode().kind, 'down', 'rejected requests change nothing');

  t.equal((await call(line, 'PUT', JSON.stringify({ mode: { kind: 'up', pad: 'x'.repeat(20_000) } }))).status, 413);
  t.equal((await call(`${ctl.url}/nope`, 'GET')).status, 404);
  const post = await call(line, 'POST', '{}');
  t.equal(post.status, 405);
  t.equal(post.headers['allow'], 'GET, PUT');
  t.equal(
    (await call(line, 'GET', undefined, { host: 'evil.example:80' })).status,
    403,
    'foreign Host refused (DNS rebinding)',
  );

  await t.rejects(startLineControl(proxy, { host: '0.0.0.0' as '127.0.0.1' }), { code: 'LINE_CONTROL_CONFIG' });

  await ctl.close();
  await t.rejects(call(line, 'GET'), { code: 'ECONNREFUSED' }, 'closed control API no longer listens');
});
