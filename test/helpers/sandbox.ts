/**
 * `onshi sandbox` as a new user starts it: the real CLI in its own process, on ephemeral ports, in
 * a fresh state folder. Resolves with the READY line's fields; stopped (SIGINT) and removed at teardown.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/onshi.js', import.meta.url));

export async function startSandboxProcess(t: { teardown(f: () => unknown): void }, prefix: string): Promise<{ state: string; ready: Record<string, string> }> {
  const state = mkdtempSync(join(tmpdir(), prefix));
  const sandbox = spawn(process.execPath, [BIN, 'sandbox', '--state', state, '--port-base', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(async () => {
    if (sandbox.exitCode === null) {
      const exited = new Promise((r) => sandbox.once('exit', r));
      sandbox.kill('SIGINT');
      await exited;
    }
    rmSync(state, { recursive: true, force: true });
  });
  const readyLine = await new Promise<string>((resolve, reject) => {
    createInterface({ input: sandbox.stdout! }).on('line', (l) => { if (l.startsWith('READY ')) resolve(l); });
    sandbox.once('exit', (code) => reject(new Error(`sandbox exited ${code}`)));
  });
  const ready = Object.fromEntries(readyLine.slice(6).split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  return { state, ready };
}
