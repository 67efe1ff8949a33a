/**
 * Loggers for tests, the daemon's own (redaction, JSON lines) writing to memory instead of stdout:
 * captureLogger keeps every line for the test to inspect, silentLogger drops them.
 */
import { Writable } from 'node:stream';
import { createLogger, type Logger, type LogLevel } from '../../src/core/logger.js';

/** `lines` may be given, to keep one list across several loggers (a gateway restarted in a test). */
export function captureLogger(level: LogLevel = 'debug', lines: string[] = []): { logger: Logger; lines: string[] } {
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  return { logger: createLogger({ level, stream }), lines };
}

export function silentLogger(): Logger {
  return createLogger({
    level: 'error',
    stream: new Writable({
      write(_chunk, _enc, cb) {
        cb();
      },
    }),
  });
}
