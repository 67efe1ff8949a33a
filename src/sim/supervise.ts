/**
 * The sandbox keeps its gateway running as systemd would (Restart=on-failure with a back-off):
 * when the daemon ends on its own or is killed, the simulators, the card and the line stay up, the
 * end is named (its exit code or signal), and the daemon is started again after a delay that grows
 * while it keeps dying and resets once it has run for a while.
 */
import type { ChildProcess } from 'node:child_process';

export interface SuperviseOptions {
  /** the daemon running now */
  first: ChildProcess;
  /** starts the daemon again (waits for its READY) */
  restart(): Promise<ChildProcess>;
  warn(line: string): void;
  /** first delay and its ceiling (doubling in between), and the uptime after which it resets */
  baseMs?: number;
  capMs?: number;
  stableMs?: number;
}

export interface Supervisor {
  readonly current: ChildProcess;
  readonly restarts: number;
  /** no more restarts; the current daemon is left for the caller to stop */
  stop(): void;
}

/** How a child process ended, in words: "exited with code 1", "was killed by SIGKILL". */
export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code ?? '?'}`;
}

export function superviseGateway(o: SuperviseOptions): Supervisor {
  const base = o.baseMs ?? 1000;
  const cap = o.capMs ?? 30_000;
  const stable = o.stableMs ?? 60_000;
  let current = o.first;
  let startedAt = Date.now();
  let delay = base;
  let restarts = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const schedule = (): void => {
    timer = setTimeout(() => {
      o.restart().then(
        (child) => {
          if (stopped) {
            child.kill('SIGTERM');
            return;
          }
          restarts++;
          o.warn(`the gateway is running again (pid ${child.pid})`);
          watch(child);
        },
        (e: unknown) => {
          if (stopped) return;
          delay = Math.min(cap, delay * 2);
          o.warn(`the gateway did not start again (${(e as Error).message}); next try in ${delay / 1000} s`);
          schedule();
        },
      );
    }, delay);
  };

  const watch = (child: ChildProcess): void => {
    current = child;
    startedAt = Date.now();
    child.once('exit', (code, signal) => {
      if (stopped) return;
      if (Date.now() - startedAt >= stable) delay = base;
      o.warn(`the gateway ${describeExit(code, signal)}; the simulators stay up, restarting it in ${delay / 1000} s`);
      schedule();
      delay = Math.min(cap, delay * 2);
    });
  };
  watch(o.first);

  return {
    get current() {
      return current;
    },
    get restarts() {
      return restarts;
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
