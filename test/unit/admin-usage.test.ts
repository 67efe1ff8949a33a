import t from 'tap';
import type { HistoryRow, UsageDay, UsageMonth } from '../../src/cache/index.js';
import { hourly, methodsChart } from '../../src/admin/history-chart.js';
import { fmtShare, lastMonths, usageChart, usageCsv, usagePage } from '../../src/admin/usage-page.js';

const HOUR = 3_600_000;
const month = (m: string, cardPin: number, cardVisual: number, numbers: number): UsageMonth => ({
  month: m,
  cardPin,
  cardVisual,
  numbers,
  patients: Math.max(0, cardPin + cardVisual + numbers - 1),
  cardPatients: cardPin + cardVisual,
});

t.test('checks per hour by method: summed per hour, drawn as stacked bars', async (t) => {
  const now = Date.parse('2026-12-03T15:30:00Z');
  const at = Date.parse('2026-12-03T14:00:00Z');
  const rows: HistoryRow[] = [
    { at, central: 3, cache: 0, none: 0, outbox: 0, methods: { cardPin: 1, cardVisual: 1, numbers: 1 } },
    { at: at + 300_000, central: 2, cache: 0, none: 0, outbox: 0, methods: { cardPin: 0, cardVisual: 0, numbers: 2 } },
    { at: at - HOUR, central: 4, cache: 0, none: 0, outbox: 0 }, // sampled before the method was recorded
  ];
  const b = hourly(rows, now, 24);
  t.match(b.at(-2), { cardPin: 1, cardVisual: 1, numbers: 3 });
  t.match(b.at(-3), { central: 4, cardPin: 0, cardVisual: 0, numbers: 0 });
  const svg = methodsChart(b, 'ja').text;
  t.equal((svg.match(/<rect class="c-(pin|visual|numbers)"/g) ?? []).length, 3, 'one part per non-zero method');
  t.match(svg, /aria-label="1時間ごとの確認件数（カード・暗証番号、カード・目視確認、番号）"/);
});

t.test('the CSV: a BOM, a Japanese header, one line per row, CRLF', async (t) => {
  const csv = usageCsv([month('2026-10', 3, 1, 4), month('2026-11', 0, 0, 0)], 'ja', 'month');
  t.same([...csv.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'UTF-8 with a BOM');
  const lines = csv.toString('utf8').slice(1).split('\r\n');
  t.equal(
    lines[0],
    '月,カード（暗証番号）,カード（目視確認）,番号（資格確認書・被保険者証）,合計,カードの割合,患者数,うちカードで確認した患者',
  );
  t.equal(lines[1], '2026-10,3,1,4,8,50.0%,7,4');
  t.equal(lines[2], '2026-11,0,0,0,0,,0,0', 'no share without a check');
  t.equal(lines[3], '', 'ends with a line break');
  const en = usageCsv(
    [{ day: '2026-11-01', cardPin: 1, cardVisual: 0, numbers: 0, patients: 1, cardPatients: 1 } as UsageDay],
    'en',
    'day',
  )
    .toString('utf8')
    .split('\r\n');
  t.match(en[0], /^\uFEFFDay,Card with PIN,Card, visual check|^\uFEFFDay,Card with PIN,"Card, visual check"/);
  t.equal(en[1], '2026-11-01,1,0,0,1,100.0%,1,1');
});

t.test('the chart months: the 12 up to the chosen one, zeros where nothing was counted', async (t) => {
  const m = lastMonths([month('2025-11', 1, 0, 1), month('2026-02', 2, 0, 2)], '2026-03');
  t.equal(m.length, 12);
  t.equal(m[0]!.month, '2025-04');
  t.equal(m.at(-1)!.month, '2026-03');
  t.match(m[7], { month: '2025-11', cardPin: 1 });
  t.match(m[2], { month: '2025-06', cardPin: 0, numbers: 0 });
  const svg = usageChart(m, 'ja', { shares: true, title: 't' }).text;
  const shares = [...svg.matchAll(/<text class="share" x="[\d.]+" y="([\d.]+)">([^<]+)<\/text>/g)].map((m) => [
    Number(m[1]),
    m[2],
  ]);
  // the tallest month's stack reaches the top of the plot (y 16): its share just above it; the half-height one lower
  t.same(
    shares,
    [
      [83, '50.0%'],
      [13, '50.0%'],
    ],
    "each month's share above its own bar",
  );
  t.equal(fmtShare(month('2026-01', 0, 0, 0)), '—');
});

t.test('the page says what it counts and that the official rate is the 支払基金 one', async (t) => {
  const data = {
    months: [month('2026-10', 3, 1, 4)],
    days: Array.from({ length: 31 }, (_, i) => ({
      day: `2026-10-${String(i + 1).padStart(2, '0')}`,
      cardPin: i === 4 ? 3 : 0,
      cardVisual: i === 4 ? 1 : 0,
      numbers: i === 4 ? 4 : 0,
      patients: i === 4 ? 7 : 0,
      cardPatients: i === 4 ? 4 : 0,
    })),
  };
  const ja = usagePage({ lang: 'ja', path: '/usage', csrf: 'x' }, data, '2026-10');
  t.match(ja, /社会保険診療報酬支払基金がレセプト/);
  t.match(ja, /中央（オンライン資格確認等システム）またはキャッシュが回答したものだけ/);
  t.match(ja, /<tr data-key="2026-10">/);
  t.equal((ja.match(/<tr data-key="2026-10-/g) ?? []).length, 1, 'only days with a check in the table');
  t.match(ja, /カード 4件（暗証番号 3件、目視確認 1件）、番号 4件、カードの割合 50\.0%、患者 7人（うちカード 4人）/);
  t.match(ja, /href="\/usage\.csv\?month=2026-10"/);
  const en = usagePage({ lang: 'en', path: '/usage', csrf: 'x' }, data, '2026-10');
  t.match(en, /computed by the Health Insurance Claims Review/);
  t.match(en, /its own count/);
  t.notMatch(
    usagePage({ lang: 'ja', path: '/usage' }, undefined, '2026-10'),
    /<svg/,
    'nothing to draw when unavailable',
  );
});
