import t from 'tap';
import { isOnshiError } from '../../src/core/errors.js';
import { parseLineMode, type LineMode } from '../../src/sim/line/index.js';

t.test('parseLineMode accepts every kind and normalises', async (t) => {
  const good: LineMode[] = [
    { kind: 'up' },
    { kind: 'down' },
    { kind: 'blackhole' },
    { kind: 'latency', ms: 50 },
    { kind: 'latency', ms: 0, jitterMs: 10.5 },
    { kind: 'bandwidth', bytesPerSecond: 1024 },
    { kind: 'reset-after', bytes: 0 },
    { kind: 'truncate-after', bytes: 4096 },
    { kind: 'fragment', maxChunk: 1 },
    { kind: 'fragment', maxChunk: 100, delayMs: 5 },
    { kind: 'slow-close', delayMs: 200 },
    { kind: 'flap', upMs: 100, downMs: 50 },
  ];
  for (const m of good) t.same(parseLineMode(JSON.parse(JSON.stringify(m))), m, m.kind);
  // optional fields that are absent stay absent (no "undefined" keys leak into JSON)
  t.same(Object.keys(parseLineMode({ kind: 'latency', ms: 1 })), ['kind', 'ms']);
});

t.test('parseLineMode rejects bad input with LINE_MODE_INVALID and a useful message', async (t) => {
  const bad: Array<[unknown, string, RegExp]> = [
    [null, 'not-object', /object/],
    ['up', 'not-object', /object/],
    [[], 'not-object', /object/],
    [{}, 'unknown-kind', /unknown line mode kind/],
    [{ kind: 'sideways' }, 'unknown-kind', /expected one of/],
    [{ kind: 'latency' }, 'missing', /needs a number "ms"/],
    [{ kind: 'latency', ms: '50' }, 'not-finite-number', /finite/],
    [{ kind: 'latency', ms: Number.NaN }, 'not-finite-number', /finite/],
    [{ kind: 'latency', ms: Number.POSITIVE_INFINITY }, 'not-finite-number', /finite/],
    [{ kind: 'latency', ms: -1 }, 'out-of-range', /between 0 and/],
    [{ kind: 'latency', ms: 1e9 }, 'out-of-range', /between 0 and/],
    [{ kind: 'latency', ms: 5, jitterMs: -2 }, 'out-of-range', /jitterMs/],
    [{ kind: 'latency', ms: 5, delay: 2 }, 'unknown-field', /no field "delay"/],
    [{ kind: 'up', ms: 5 }, 'unknown-field', /no field "ms"/],
    [{ kind: 'bandwidth', bytesPerSecond: 0 }, 'out-of-range', /bytesPerSecond/],
    [{ kind: 'reset-after', bytes: 1.5 }, 'not-integer', /integer/],
    [{ kind: 'truncate-after', bytes: -1 }, 'out-of-range', /bytes/],
    [{ kind: 'fragment', maxChunk: 0 }, 'out-of-range', /maxChunk/],
    [{ kind: 'fragment', maxChunk: 1e6 }, 'out-of-range', /maxChunk/],
    [{ kind: 'slow-close' }, 'missing', /delayMs/],
    [{ kind: 'flap', upMs: 0, downMs: 100 }, 'out-of-range', /upMs/],
    [{ kind: 'flap', upMs: 100 }, 'missing', /downMs/],
  ];
  for (const [input, reason, msg] of bad) {
    try {
      parseLineMode(input);
      t.fail(`accepted ${JSON.stringify(input)}`);
    } catch (e) {
      t.ok(isOnshiError(e, 'LINE_MODE_INVALID'), `code for ${JSON.stringify(input)}`);
      if (isOnshiError(e)) {
        t.equal(e.details['reason'], reason, `reason for ${JSON.stringify(input)}`);
        t.match(e.message, msg);
      }
    }
  }
});
