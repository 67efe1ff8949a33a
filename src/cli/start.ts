/** `onshi start`: runs the daemon until SIGTERM or SIGINT. */
import { createLogger, type Logger } from '../core/logger.js';
import { startGateway } from '../daemon/index.js';
import { parseCliArgs } from './args.js';
import { configFile } from './context.js';
import type { CliContext } from './status.js';

/**
 * The exit code of a restart asked for on the admin page (EX_TEMPFAIL). The unit's
 * Restart=on-failure starts the daemon again after RestartSec: the service user cannot run
 * `systemctl restart` (NoNewPrivileges, no capabilities, no polkit rule — and granting one would let
 * the service manage units), but it can end itself, and systemd's own policy does the rest.
 */
export const RESTART_EXIT_CODE = 75;

export async function cmdStart(argv: string[], ctx: CliContext): Promise<number> {
  const { values } = parseCliArgs(argv, { config: { type: 'string' } }, ctx.usage);
  const config = ctx.config(values.config);
  const logger = createLogger({ level: config.log.level });
  let stop: (why: string, code: number) => void = () => undefined;
  // Under systemd (Type=notify sets NOTIFY_SOCKET) an exit is followed by a new start: the page may offer it.
  const supervised = Boolean(process.env.NOTIFY_SOCKET);
  const gateway = await startGateway(config, {
    logger,
    configFile: configFile(values.config),
    ...(supervised ? { onRestartRequest: () => stop('restart', RESTART_EXIT_CODE) } : {}),
  });
  if (process.env.ONSHI_MEMORY_REPORT === '1') reportMemoryOnSignal(logger);
  return new Promise((resolve) => {
    let stopping = false;
    stop = (why, code) => {
      if (stopping) return;
      stopping = true;
      logger.info(
        why === 'restart' ? 'restart requested: stopping, systemd starts the gateway again' : 'signal received',
        {
          event: why === 'restart' ? 'restart' : 'signal',
          ...(why === 'restart' ? { exitCode: code } : { signal: why }),
        },
      );
      void gateway.close().then(() => {
        // A handle left open must not keep a restart from happening.
        if (code !== 0) setTimeout(() => process.exit(code), 10_000).unref();
        resolve(code);
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM', 0));
    process.once('SIGINT', () => stop('SIGINT', 0));
  });
}

/**
 * For the footprint benchmark (bench/footprint.ts): with ONSHI_MEMORY_REPORT=1, SIGUSR2 logs the
 * process's memory as a `memory` event, after a full GC when node runs with --expose-gc, so heap
 * growth is measured without an inspector. Off by default: nothing listens for SIGUSR2.
 */
function reportMemoryOnSignal(logger: Logger): void {
  process.on('SIGUSR2', () => {
    (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    logger.info('memory', {
      event: 'memory',
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
    });
  });
}
