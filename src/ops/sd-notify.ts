/**
 * sd_notify without a native addon: Node cannot send on a unix datagram socket, so we use
 * systemd-notify(1). Since systemd 246 it waits on a barrier until systemd has processed the
 * message, which removes the classic race with NotifyAccess=all; --pid names us as the main PID.
 * When NOTIFY_SOCKET is unset (not under systemd) every call is a no-op.
 */
import { execFile } from 'node:child_process';

export interface Notifier {
  ready(status?: string): Promise<void>;
  stopping(status?: string): Promise<void>;
  status(text: string): Promise<void>;
  /** Starts WATCHDOG=1 pings at half of WATCHDOG_USEC, sent from the event loop: a blocked loop misses them. */
  startWatchdog(): void;
  stopWatchdog(): void;
}

export function createNotifier(env: NodeJS.ProcessEnv = process.env, bin = 'systemd-notify'): Notifier {
  const enabled = Boolean(env.NOTIFY_SOCKET);
  let timer: NodeJS.Timeout | undefined;
  const send = (vars: string[]): Promise<void> => {
    if (!enabled) return Promise.resolve();
    return new Promise((resolve) => {
      execFile(
        bin,
        [`--pid=${process.pid}`, ...vars],
        { env: { ...process.env, NOTIFY_SOCKET: env.NOTIFY_SOCKET }, timeout: 5000 },
        () => resolve(),
      );
    });
  };
  return {
    ready: (status) => send(['READY=1', ...(status ? [`STATUS=${status}`] : [])]),
    stopping: (status) => send(['STOPPING=1', ...(status ? [`STATUS=${status}`] : [])]),
    status: (text) => send([`STATUS=${text}`]),
    startWatchdog() {
      const usec = Number(env.WATCHDOG_USEC);
      const pidOk = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
      if (!enabled || !Number.isFinite(usec) || usec <= 0 || !pidOk || timer) return;
      timer = setInterval(() => void send(['WATCHDOG=1']), Math.max(500, Math.floor(usec / 2000)));
      timer.unref();
    },
    stopWatchdog() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}
