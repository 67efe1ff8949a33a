/**
 * Time bounds that hold on a loaded machine. A test may check that something happens by a
 * deadline, but the machine's load is not what it tests: the allowance grows with the event-loop
 * lag this process saw while it waited (a starved process fires its timers late by as much).
 * What a test would prove about speed belongs in `npm run bench` instead.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface Stopwatch {
  /** Milliseconds since the stopwatch started. */
  ms(): number;
  /** The worst lateness of this process's event loop since the start, in ms (timer resolution 10 ms). */
  lagMs(): number;
  /** `ms` plus `slackMs` plus three times the worst lag seen: the most a deadline of `ms` may take here. */
  allowance(ms: number, slackMs?: number): number;
}

export function stopwatch(): Stopwatch {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const started = performance.now();
  const lagMs = (): number => Math.max(0, h.max / 1e6 - 10);
  return {
    ms: () => performance.now() - started,
    lagMs,
    allowance: (ms, slackMs = 100) => ms + slackMs + 3 * lagMs(),
  };
}

/** How late a `intervalMs` timer fires, sample by sample, while `during` runs (p99 and max in ms). */
export async function timerLag(
  during: () => Promise<unknown>,
  intervalMs = 5,
): Promise<{ samples: number; p99: number; max: number }> {
  const lags: number[] = [];
  let expected = performance.now() + intervalMs;
  const timer = setInterval(() => {
    const now = performance.now();
    lags.push(Math.max(0, now - expected));
    expected = now + intervalMs;
  }, intervalMs);
  try {
    await during();
  } finally {
    clearInterval(timer);
  }
  lags.sort((a, b) => a - b);
  return { samples: lags.length, p99: lags[Math.floor(lags.length * 0.99)] ?? 0, max: lags.at(-1) ?? 0 };
}
