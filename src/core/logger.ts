/**
 * JSON-lines logging to stdout (journald on the appliance). Personal data never reaches a log line:
 * a format drops every field whose key names personal or secret data, whatever the level, so a
 * careless `log.info('x', { query })` cannot leak a name, a number or a PIN.
 */
import { writeSync } from 'node:fs';
import { Writable } from 'node:stream';
import winston from 'winston';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export type Logger = winston.Logger;

/** Keys (case-insensitive) whose values are replaced wherever they appear in a log entry. */
const SENSITIVE_KEYS = new Set([
  'pin',
  'password',
  'secret',
  'token',
  'authorization',
  'cookie',
  'name',
  'namekana',
  'nameofother',
  'nameofotherkana',
  'insuredname',
  'address',
  'postnumber',
  'birthdate',
  'insurernumber',
  'symbol',
  'number',
  'branch',
  'insuredidentificationnumber',
  'insuredcardsymbol',
  'insuredbranchnumber',
  'query',
  'results',
  'certificate',
  'signature',
  'idtoken',
  'mynumber',
]);

const REDACTED = '[redacted]';

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Error)
    return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    out[k] = SENSITIVE_KEYS.has(k.toLowerCase()) ? REDACTED : redact(v, depth + 1);
  return out;
}

/** A UTF-16 surrogate without its pair: JSON.stringify writes it as `\ud800`, which log tools reject. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** The text with every lone surrogate replaced by U+FFFD, so it encodes as UTF-8 and parses everywhere. */
export function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, '\uFFFD');
}

/**
 * The JSON replacer every line goes through: it sees every value at every depth (after toJSON),
 * so no field, key or nested message can carry a lone surrogate into the line.
 */
function wellFormedReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'string') return wellFormed(value);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  if (keys.every((k) => wellFormed(k) === k)) return value;
  const out: Record<string, unknown> = {};
  for (const k of keys) out[wellFormed(k)] = (value as Record<string, unknown>)[k];
  return out;
}

/** Fields every line starts with, in this order; the rest follow as they were given. */
const FIRST = new Set(['level', 'message']);

/** `\ud800`–`\udfff` escaped by JSON.stringify: a lone surrogate (pairs are written as they are). */
const ESCAPED_SURROGATE = /\\u[dD][89a-fA-F]/;

/**
 * The one format of a line: redaction, the timestamp and the JSON text in one pass. winston's
 * `format.json` runs safe-stable-stringify, configured anew for every line, sorting every
 * object's keys and calling the surrogate replacer on every value (in an outage profile the line's
 * formatting was a fifth of the event loop's work per answer). Here native JSON.stringify writes
 * the line; the replacer runs only when the text shows an escaped lone surrogate, and what native
 * JSON refuses (a cycle, a BigInt) goes the old way.
 */
/** The key winston's transports write (triple-beam's MESSAGE). */
const MESSAGE = Symbol.for('message');
const slowJson = winston.format.json({ replacer: wellFormedReplacer });
const lineFormat = winston.format((info) => {
  const line: Record<string, unknown> = { level: info.level, message: info.message };
  for (const key of Object.keys(info)) {
    if (FIRST.has(key) || key === 'timestamp') continue;
    const v = info[key];
    line[key] = SENSITIVE_KEYS.has(key.toLowerCase()) ? REDACTED : redact(v);
  }
  line.timestamp = info.timestamp || new Date().toISOString();
  info.timestamp = line.timestamp;
  let text: string | undefined;
  try {
    text = JSON.stringify(line);
  } catch {
    text = undefined; // a cycle or a BigInt: safe-stable-stringify copes
  }
  if (text === undefined || ESCAPED_SURROGATE.test(text)) {
    const slow = slowJson.transform(line as winston.Logform.TransformableInfo, slowJson.options);
    text = (slow as Record<symbol, string>)[MESSAGE];
  }
  (info as Record<symbol, unknown>)[MESSAGE] = text;
  return info;
});

/** The outputs that still hold lines to write at exit. */
const live = new Set<CoalescedOutput>();

/**
 * Standard output, one write per turn of the event loop: under load the daemon logs a line per
 * request, and a write(2) of its own for each cost more than formatting the line. Lines wait at
 * most until the loop's next check phase; at exit whatever is left is written synchronously.
 */
export class CoalescedOutput extends Writable {
  private lines: string[] = [];
  private scheduled = false;
  private readonly flushSoon = (): void => this.flush(false);

  constructor(private readonly fd = 1) {
    super({ decodeStrings: false });
    if (live.size === 0)
      process.once('exit', () => {
        for (const o of live) o.flushSync();
      });
    live.add(this);
  }

  override _write(chunk: unknown, _enc: BufferEncoding, cb: () => void): void {
    this.lines.push(String(chunk));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushSoon);
    }
    cb();
  }

  /** Writes what is waiting, synchronously (at exit, and for tests). */
  flushSync(): void {
    this.flush(true);
  }

  private flush(sync: boolean): void {
    this.scheduled = false;
    if (this.lines.length === 0) return;
    const text = this.lines.join('');
    this.lines = [];
    // process.stdout copes with a full pipe (journald behind); at exit only a plain write is left.
    if (!sync && this.fd === 1) {
      process.stdout.write(text);
      return;
    }
    try {
      writeSync(this.fd, text);
    } catch {
      /* the output is gone: there is no one left to tell */
    }
  }
}

export function createLogger(opts: { level: LogLevel; component?: string; stream?: NodeJS.WritableStream }): Logger {
  const transport = opts.stream
    ? new winston.transports.Stream({ stream: opts.stream })
    : new winston.transports.Stream({ stream: new CoalescedOutput() });
  const logger = winston.createLogger({
    level: opts.level,
    defaultMeta: opts.component ? { component: opts.component } : undefined,
    format: lineFormat(),
    transports: [transport],
  });
  // winston formats every entry (redaction, timestamp, JSON) before its transports drop the ones
  // below their level: a debug line on the check path cost as much as an info line. Skip them first.
  for (const level of ['warn', 'info', 'debug'] as const) {
    const write = logger[level].bind(logger) as (...a: unknown[]) => Logger;
    (logger as unknown as Record<string, unknown>)[level] = (...args: unknown[]): Logger =>
      logger.isLevelEnabled(level) ? write(...args) : logger;
  }
  return logger;
}
