/**
 * The built daemon (`bin/onshi.js start`) as a child process of a test, exactly as systemd runs
 * it: `ready` resolves with the WebSocket port from the `ready` log line (`info` with the whole
 * line: admin and health ports, TLS), and rejects if the daemon exits first. `kill` is SIGKILL (no
 * cleanup, as a power cut); `exitOf` waits for the exit code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/onshi.js', import.meta.url));

export interface ReadyInfo {
  wsPort: number;
  wsTls?: boolean;
  adminPort?: number;
  healthPort?: number;
  fingerprint?: string;
}

export interface DaemonProcess {
  child: ChildProcess;
  ready: Promise<number>;
  info: Promise<ReadyInfo>;
  /** every stdout line so far */
  lines: string[];
  /** stderr so far */
  stderr(): string;
}

export function startDaemon(configFile: string, env: NodeJS.ProcessEnv = {}): DaemonProcess {
  const child = spawn(process.execPath, [BIN, 'start', '--config', configFile], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let err = '';
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const info = new Promise<ReadyInfo>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      try {
        const e = JSON.parse(line) as ReadyInfo & { event?: string };
        if (e.event === 'ready' && typeof e.wsPort === 'number') resolve(e);
      } catch {
        /* not a log line */
      }
    });
    child.once('exit', (code, sig) =>
      reject(new Error(`daemon exited (${code ?? sig}) before ready: ${err}${lines.join('\n')}`)),
    );
  });
  const ready = info.then((i) => i.wsPort);
  // A test may kill the daemon before it is ready: that is not an unhandled rejection.
  info.catch(() => {});
  ready.catch(() => {});
  return { child, ready, info, lines, stderr: () => err };
}

export const exitOf = (child: ChildProcess): Promise<number | null> =>
  new Promise((r) => child.once('exit', (code) => r(code)));

export const kill = (child: ChildProcess): Promise<void> =>
  new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) return r();
    child.once('exit', () => r());
    child.kill('SIGKILL');
  });
