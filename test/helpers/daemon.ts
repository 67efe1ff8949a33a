/**
 * The built daemon (`bin/onshi.js start`) as a child process, exactly as systemd runs it: resolves
 * its WebSocket port from the `ready` log line; `kill` is SIGKILL (no cleanup, as a power cut).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/onshi.js', import.meta.url));

export function startDaemon(configFile: string): { child: ChildProcess; ready: Promise<number> } {
  const child = spawn(process.execPath, [BIN, 'start', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.resume();
  const ready = new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const e = JSON.parse(line) as { event?: string; wsPort?: number };
        if (e.event === 'ready' && typeof e.wsPort === 'number') resolve(e.wsPort);
      } catch { /* not a log line */ }
    });
    child.once('exit', (code, sig) => reject(new Error(`exited (${code ?? sig}) before ready`)));
  });
  ready.catch(() => {});
  return { child, ready };
}

export const kill = (child: ChildProcess): Promise<void> => new Promise((r) => {
  if (child.exitCode !== null || child.signalCode !== null) return r();
  child.once('exit', () => r());
  child.kill('SIGKILL');
});
