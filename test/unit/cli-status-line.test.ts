// `onshi status` shows the line's mode, the failing hop and, in ipsec mode, the tunnel.
import t from 'tap';
import { formatStatus } from '../../src/cli/status.js';
import type { GatewayStatus } from '../../src/ops/status.js';

const base: GatewayStatus = {
  version: '0.1.0',
  startedAt: '2026-05-01T08:00:00.000Z',
  now: '2026-05-01T09:00:00.000Z',
  ready: true,
  checks: { store: true },
  reader: { enabled: false, state: 'disabled', readers: [] },
  card: { present: false },
  line: { state: 'up' },
  clock: {},
  certificates: [],
  api: { listening: true, connections: 0 },
};

t.test('ipsec: the tunnel, its counters and the last sign of life', async (t) => {
  const out = formatStatus({
    ...base,
    line: {
      state: 'down',
      mode: 'ipsec',
      failingHop: 'child-sa',
      tunnel: {
        ike: 'established',
        child: 'down',
        up: false,
        since: '2026-05-01T08:59:50.000Z',
        rekeys: 2,
        bytesIn: 12_300,
        bytesOut: 800,
        packetsIn: 10,
        packetsOut: 9,
        lastDpd: '2026-05-01T08:59:56.000Z',
        reason: 'CHILD_SA oqs deleted (state INSTALLED)',
      },
    },
  });
  t.match(out, /line +down, ipsec, failing at child-sa/);
  t.match(
    out,
    /tunnel +DOWN: IKE established, CHILD_SA down since 2026-05-01T08:59:50.000Z, 2 rekeys, 12.3 kB in \/ 800 B out, peer heard 4 s ago \(CHILD_SA oqs deleted/,
  );
});

t.test('ip-vpn: no tunnel line, the failing hop named', async (t) => {
  const out = formatStatus({ ...base, line: { state: 'down', mode: 'ip-vpn', failingHop: 'next-hop' } });
  t.match(out, /line +down, ip-vpn, failing at next-hop/);
  t.notMatch(out, /tunnel/);
});

t.test('the admin dashboard: the tunnel and the failing hop in the line tile', async (t) => {
  const { dashboardFields } = await import('../../src/admin/views.js');
  const f = dashboardFields(
    {
      ...base,
      line: {
        state: 'down',
        mode: 'ipsec',
        failingHop: 'child-sa',
        tunnel: {
          ike: 'established',
          child: 'down',
          up: false,
          since: base.now,
          rekeys: 1,
          bytesIn: 0,
          bytesOut: 0,
          packetsIn: 0,
          packetsOut: 0,
          reason: 'CHILD_SA oqs deleted',
        },
      },
    },
    'en',
  );
  t.match(
    f.line?.text,
    /IPsec: IKE established, CHILD_SA down, 1 rekeys \(CHILD_SA oqs deleted\) — failing at child-sa/,
  );
  t.equal(f.line?.tone, 'bad');
});
