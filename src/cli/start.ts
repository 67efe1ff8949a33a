/** `onshi start`: runs the daemon until SIGTERM or SIGINT. */
import { createLogger, type Logger } from '../core/logger.js';
import { startGateway } from '../daemon/index.js';
import { parseCliArgs } from './args.js';
import { configFile } from './context.js';
import type { CliContext } from './status.js';

export async function cmdStart(argv: string[], ctx: CliContext): Promise<number> {
  const { values } = parseCliArgs(argv, { config: { type: 'string' } }, ctx.usage);
  const config = ctx.config(values.config);
  const logger = createLogger({ level: config.log.level });
  const gateway = await startGateway(config, { logger, configFile: configFile(values.config) });
  if (process.env.ONSHI_MEMORY_REPORT === '1') reportMemoryOnSignal(logger);
  return new Promise((resolve) => {
    const stop = (signal: string): void => {
      logger.info('signal received', { event: 'signal', signal });
      void gateway.close().then(() => resolve(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
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
