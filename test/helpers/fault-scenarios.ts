/** The line faults of the fault-injection suite, shared by the single-check and the replay runs. */
import type { LineMode } from '../../src/sim/line/index.js';

export interface Scenario {
  name: string;
  mode: LineMode;
  /** true when the fault should make the gateway fall back (fragmenting is slow but works) */
  outage: boolean;
}

export const SCENARIOS: Scenario[] = [
  { name: 'down', mode: { kind: 'down' }, outage: true },
  { name: 'blackhole', mode: { kind: 'blackhole' }, outage: true },
  { name: 'slow', mode: { kind: 'latency', ms: 2500 }, outage: true },
  { name: 'reset mid-answer', mode: { kind: 'reset-after', bytes: 200 }, outage: true },
  { name: 'truncated answers', mode: { kind: 'truncate-after', bytes: 200 }, outage: true },
  // 64-byte segments: every TLS record crosses in pieces, while the whole certificate flight (~50
  // segments) still fits a 2 s deadline on a loaded machine (7-byte ones took ~450 and timed out).
  { name: 'fragmenting', mode: { kind: 'fragment', maxChunk: 64, delayMs: 1 }, outage: false },
  { name: 'flapping', mode: { kind: 'flap', upMs: 600, downMs: 600 }, outage: true },
];
