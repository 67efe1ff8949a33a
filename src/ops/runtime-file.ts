/**
 * `<stateDir>/daemon.json`: where the running daemon listens, written at READY. Ports may be 0 in
 * the config (chosen at start, as in tests and the sandbox); the CLI finds the daemon through it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const RUNTIME_FILE = 'daemon.json';

export interface RuntimeInfo {
  pid: number;
  wsPort: number;
  wsTls: boolean;
  adminPort?: number;
  healthPort?: number;
}

export function readRuntimeFile(stateDir: string): RuntimeInfo | undefined {
  try {
    const r = JSON.parse(readFileSync(join(stateDir, RUNTIME_FILE), 'utf8')) as RuntimeInfo;
    return typeof r.pid === 'number' && typeof r.wsPort === 'number' ? r : undefined;
  } catch {
    return undefined;
  }
}
