/**
 * The sandbox (real gateway daemon process, central simulator over mutual TLS behind the line
 * proxy) and the real `onshi` CLI, as a new user would drive them: for the counter scenarios.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startSandbox, type Sandbox } from '../../src/sim/sandbox.js';
import { seedCardDir } from './card-dir.js';

export const BIN = fileURLToPath(new URL('../../bin/onshi.js', import.meta.url));
const run = promisify(execFile);

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built `onshi` with `env` added to this process's environment; never throws for an exit code. */
export async function runOnshi(args: string[], env: NodeJS.ProcessEnv = {}, stdin?: string): Promise<CliRun> {
  try {
    const p = run(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    if (stdin !== undefined) p.child.stdin!.end(stdin);
    const { stdout, stderr } = await p;
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

export interface SandboxCli {
  sandbox: Sandbox;
  env: NodeJS.ProcessEnv;
  onshi(args: string[], stdin?: string): Promise<CliRun>;
  /** `onshi …` that must exit 0 with JSON on stdout */
  json<T = Record<string, unknown>>(args: string[], stdin?: string): Promise<T>;
  close(): Promise<void>;
}

export async function startSandboxCli(opts: { card?: boolean } = {}): Promise<SandboxCli> {
  // the PKI and card profiles issued once per run, copied in (card-dir.ts)
  const state = await seedCardDir(mkdtempSync(join(tmpdir(), 'onshi-counter-')));
  const sandbox = await startSandbox({ stateDir: state, portBase: 0, card: opts.card ?? false });
  const r = sandbox.ready;
  const env: NodeJS.ProcessEnv = {
    ONSHI_WS: r.ws,
    ONSHI_TOKEN: r.token,
    ONSHI_SIM_CONTROL: r.control,
    ONSHI_SIM_LINE: r.line,
    ...(r.cards ? { ONSHI_SIM_CARDS: r.cards } : {}),
  };
  const onshi = (args: string[], stdin?: string): Promise<CliRun> => runOnshi(args, env, stdin);
  return {
    sandbox,
    env,
    onshi,
    async json<T>(args: string[], stdin?: string): Promise<T> {
      const out = await onshi(args, stdin);
      if (out.code !== 0) throw new Error(`onshi ${args.join(' ')} exited ${out.code}: ${out.stderr}`);
      return JSON.parse(out.stdout) as T;
    },
    async close() {
      await sandbox.close();
      rmSync(state, { recursive: true, force: true });
    },
  };
}

/**
 * `onshi sandbox` as a new user starts it: the real CLI in its own process, on ephemeral ports, in
 * a fresh state folder. Resolves with the READY line's fields; stopped (SIGINT) and removed at teardown.
 */
export async function startSandboxProcess(
  t: { teardown(f: () => unknown): void },
  prefix: string,
  /** false: a new user's first start, which issues its own PKI and card profiles (slow) */
  issued = true,
): Promise<{ state: string; ready: Record<string, string> }> {
  const state = mkdtempSync(join(tmpdir(), prefix));
  if (issued) await seedCardDir(state);
  const sandbox = spawn(process.execPath, [BIN, 'sandbox', '--state', state, '--port-base', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(async () => {
    if (sandbox.exitCode === null) {
      const exited = new Promise((r) => sandbox.once('exit', r));
      sandbox.kill('SIGINT');
      await exited;
    }
    rmSync(state, { recursive: true, force: true });
  });
  const readyLine = await new Promise<string>((resolve, reject) => {
    createInterface({ input: sandbox.stdout! }).on('line', (l) => {
      if (l.startsWith('READY ')) resolve(l);
    });
    sandbox.once('exit', (code) => reject(new Error(`sandbox exited ${code}`)));
  });
  const ready = Object.fromEntries(
    readyLine
      .slice(6)
      .split(' ')
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  return { state, ready };
}
