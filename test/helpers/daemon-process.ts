/** The built daemon as systemd runs it (`bin/onshi.js start`), as a child process of a test. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/onshi.js', import.meta.url));

export interface DaemonProcess {
  child: ChildProcess;
  /** the WebSocket port from the `ready` log line; rejects if the daemon exits first */
  ready: Promise<number>;
  /** every stdout line so far */
  lines: string[];
}

export function startDaemon(configFile: string, env: NodeJS.ProcessEnv = {}): DaemonProcess {
  const child = spawn(process.execPath, [BIN, 'start', '--config', configFile], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const ready = new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      try {
        const e = JSON.parse(line) as { event?: string; wsPort?: number };
        if (e.event === 'ready') resolve(e.wsPort!);
      } catch { /* keep going */ }
    });
    child.once('exit', (code) => reject(new Error(`daemon exited ${code}: ${lines.join('\n')}`)));
  });
  return { child, ready, lines };
}

export const exitOf = (child: ChildProcess): Promise<number | null> => new Promise((r) => child.once('exit', (code) => r(code)));
