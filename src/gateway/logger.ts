/**
 * JSON-lines logging to stdout (journald on the appliance). Personal data never reaches a log line:
 * a format drops every field whose key names personal or secret data, whatever the level, so a
 * careless `log.info('x', { query })` cannot leak a name, a number or a PIN.
 */
import winston from 'winston';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export type Logger = winston.Logger;

/** Keys (case-insensitive) whose values are replaced wherever they appear in a log entry. */
const SENSITIVE_KEYS = new Set([
  'pin', 'password', 'secret', 'token', 'authorization', 'cookie',
  'name', 'namekana', 'nameofother', 'nameofotherkana', 'insuredname', 'address', 'postnumber',
  'birthdate', 'insurernumber', 'symbol', 'number', 'branch', 'insuredidentificationnumber', 'insuredcardsymbol',
  'insuredbranchnumber', 'query', 'results', 'certificate', 'signature', 'idtoken', 'mynumber',
]);

const REDACTED = '[redacted]';

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Error) return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SENSITIVE_KEYS.has(k.toLowerCase()) ? REDACTED : redact(v, depth + 1);
  return out;
}

const redactFormat = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (key === 'level' || key === 'message' || key === 'timestamp') continue;
    info[key] = SENSITIVE_KEYS.has(key.toLowerCase()) ? REDACTED : redact(info[key]);
  }
  return info;
});

export function createLogger(opts: { level: LogLevel; component?: string; stream?: NodeJS.WritableStream }): Logger {
  const transport = opts.stream
    ? new winston.transports.Stream({ stream: opts.stream })
    : new winston.transports.Console();
  const logger = winston.createLogger({
    level: opts.level,
    defaultMeta: opts.component ? { component: opts.component } : undefined,
    format: winston.format.combine(redactFormat(), winston.format.timestamp(), winston.format.json()),
    transports: [transport],
  });
  // winston formats every entry (redaction, timestamp, JSON) before its transports drop the ones
  // below their level: a debug line on the check path cost as much as an info line. Skip them first.
  for (const level of ['warn', 'info', 'debug'] as const) {
    const write = logger[level].bind(logger) as (...a: unknown[]) => Logger;
    (logger as unknown as Record<string, unknown>)[level] = (...args: unknown[]): Logger => (logger.isLevelEnabled(level) ? write(...args) : logger);
  }
  return logger;
}
