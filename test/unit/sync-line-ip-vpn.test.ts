import t from 'tap';
import { parseNeighbour, parseRouteGet, summarize } from '../../src/sync/line/ip-vpn.js';

t.test('ip -j route get: interface, next hop, source', async (t) => {
  t.same(
    parseRouteGet(
      '[{"dst":"198.19.1.1","gateway":"198.18.0.1","dev":"eth0","prefsrc":"198.18.0.20","flags":[],"uid":0,"cache":[]}]',
    ),
    { dev: 'eth0', gateway: '198.18.0.1', src: '198.18.0.20' },
  );
  t.same(
    // a route into the tunnel as charon installs it with the installer's clamp (as printed in the lab)
    parseRouteGet(
      '[{"dst":"198.19.41.1","dev":"ipsec0","table":"220","prefsrc":"198.19.41.2","flags":[],"uid":0,"cache":[],"metrics":[{"mtu":1040,"advmss":1000}]}]',
    ),
    { dev: 'ipsec0', src: '198.19.41.2', mtu: 1040 },
    "the route's own MTU",
  );
  t.same(parseRouteGet('[{"dst":"198.18.0.9","dev":"lan0","prefsrc":"198.18.0.10"}]'), {
    dev: 'lan0',
    src: '198.18.0.10',
  });
  t.throws(() => parseRouteGet('[]'), { code: 'LINE_ROUTE_UNPARSEABLE' });
  t.throws(() => parseRouteGet('RTNETLINK answers: Network is unreachable'), { code: 'LINE_ROUTE_UNPARSEABLE' });
});

t.test('ip -j neigh: a failed next hop is not usable, a stale one is', async (t) => {
  const json =
    '[{"dst":"198.18.0.1","dev":"eth0","lladdr":"02:00:00:00:00:01","state":["STALE"]},{"dst":"198.18.0.2","dev":"eth0","state":["FAILED"]}]';
  t.same(parseNeighbour(json, '198.18.0.1'), { states: ['STALE'], usable: true });
  t.same(parseNeighbour(json, '198.18.0.2'), { states: ['FAILED'], usable: false });
  t.same(parseNeighbour(json, '198.18.0.3'), { states: [], usable: false });
  t.same(parseNeighbour('garbage', '198.18.0.1'), { states: [], usable: false });
});

t.test('summarize names the first failing hop', async (t) => {
  const r = summarize([
    { hop: 'dns', ok: true, detail: '' },
    { hop: 'route', ok: true, detail: '' },
    { hop: 'tls', ok: false, detail: 'ECONNREFUSED' },
  ]);
  t.equal(r.ok, false);
  t.equal(r.failing, 'tls');
  t.equal(summarize([{ hop: 'route', ok: true, detail: '' }]).failing, undefined);
});
