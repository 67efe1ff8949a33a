/**
 * Line modes of the fault proxy and their validation. A mode arrives from tests, from the sandbox
 * and over the control API as untrusted JSON, so every number is checked for finiteness, sign and
 * a sane upper bound, and unknown keys are refused (a typo such as `delay` must not silently mean 0).
 */
import { OnshiError } from '../../core/errors.js';

export type LineMode =
  | { kind: 'up' }
  /** Refuse: new connections are reset at once; existing ones are destroyed. */
  | { kind: 'down' }
  /** Accept and never answer: data is swallowed, nothing is forwarded, sockets stay open. */
  | { kind: 'blackhole' }
  /** Each chunk delayed by ms (+ uniform 0..jitterMs), order preserved per direction. */
  | { kind: 'latency'; ms: number; jitterMs?: number }
  /** Each direction limited to bytesPerSecond. */
  | { kind: 'bandwidth'; bytesPerSecond: number }
  /** Forward N bytes server→client, then RST both sides. */
  | { kind: 'reset-after'; bytes: number }
  /** Forward N bytes server→client, then FIN (clean close) both sides. */
  | { kind: 'truncate-after'; bytes: number }
  /** Split every chunk into ≤ maxChunk pieces, written separately, delayMs apart. */
  | { kind: 'fragment'; maxChunk: number; delayMs?: number }
  /** When either side closes, hold the other side open for delayMs before closing it. */
  | { kind: 'slow-close'; delayMs: number }
  /** Alternate up (upMs) and down (downMs), starting up. */
  | { kind: 'flap'; upMs: number; downMs: number };

export type LineModeKind = LineMode['kind'];

export interface LineStats {
  connectionsAccepted: number;
  connectionsRefused: number;
  /** Bytes delivered to the target (client → server). */
  bytesUp: number;
  /** Bytes delivered to the client (server → client). */
  bytesDown: number;
  activeConnections: number;
  mode: LineModeKind;
}

export const LINE_MODE_KINDS: readonly LineModeKind[] = [
  'up',
  'down',
  'blackhole',
  'latency',
  'bandwidth',
  'reset-after',
  'truncate-after',
  'fragment',
  'slow-close',
  'flap',
];

/** Upper bounds: generous for any test or demo, small enough to catch unit mistakes (s vs ms). */
export const LINE_MODE_LIMITS = {
  maxDelayMs: 600_000,
  maxBytesPerSecond: 1_000_000_000,
  maxBytes: 2 ** 32,
  maxChunk: 65_536,
  minFlapMs: 10,
} as const;

function invalid(message: string, details: Record<string, unknown>): OnshiError<'LINE_MODE_INVALID'> {
  return new OnshiError('LINE_MODE_INVALID', message, { details });
}

interface NumRule {
  min: number;
  max: number;
  integer?: boolean;
}

function num(
  obj: Record<string, unknown>,
  kind: string,
  field: string,
  rule: NumRule,
  optional: true,
): number | undefined;
function num(obj: Record<string, unknown>, kind: string, field: string, rule: NumRule, optional?: false): number;
function num(
  obj: Record<string, unknown>,
  kind: string,
  field: string,
  rule: NumRule,
  optional = false,
): number | undefined {
  const v = obj[field];
  if (v === undefined) {
    if (optional) return undefined;
    throw invalid(`line mode "${kind}" needs a number "${field}"`, { kind, field, reason: 'missing' });
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw invalid(`line mode "${kind}": "${field}" must be a finite number`, {
      kind,
      field,
      reason: 'not-finite-number',
    });
  }
  if (rule.integer === true && !Number.isInteger(v)) {
    throw invalid(`line mode "${kind}": "${field}" must be an integer`, { kind, field, reason: 'not-integer' });
  }
  if (v < rule.min || v > rule.max) {
    throw invalid(`line mode "${kind}": "${field}" must be between ${rule.min} and ${rule.max} (got ${v})`, {
      kind,
      field,
      reason: 'out-of-range',
      min: rule.min,
      max: rule.max,
    });
  }
  return v;
}

const ALLOWED_KEYS: Record<LineModeKind, readonly string[]> = {
  up: [],
  down: [],
  blackhole: [],
  latency: ['ms', 'jitterMs'],
  bandwidth: ['bytesPerSecond'],
  'reset-after': ['bytes'],
  'truncate-after': ['bytes'],
  fragment: ['maxChunk', 'delayMs'],
  'slow-close': ['delayMs'],
  flap: ['upMs', 'downMs'],
};

function isKind(k: unknown): k is LineModeKind {
  return typeof k === 'string' && (LINE_MODE_KINDS as readonly string[]).includes(k);
}

/**
 * Validates an untrusted value and returns a fresh, normalised LineMode (optional fields left out
 * when absent). Throws OnshiError('LINE_MODE_INVALID') with details {kind?, field?, reason}.
 */
export function parseLineMode(input: unknown): LineMode {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalid('line mode must be an object such as {"kind":"up"}', { reason: 'not-object' });
  }
  const obj = input as Record<string, unknown>;
  const kind = obj['kind'];
  if (!isKind(kind)) {
    throw invalid(
      `unknown line mode kind ${JSON.stringify(kind) ?? String(kind)}; expected one of ${LINE_MODE_KINDS.join(', ')}`,
      {
        field: 'kind',
        reason: 'unknown-kind',
        allowed: [...LINE_MODE_KINDS],
      },
    );
  }
  const allowed = ALLOWED_KEYS[kind];
  for (const key of Object.keys(obj)) {
    if (key !== 'kind' && !allowed.includes(key)) {
      throw invalid(
        `line mode "${kind}" has no field "${key}"${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}`,
        {
          kind,
          field: key,
          reason: 'unknown-field',
        },
      );
    }
  }
  const L = LINE_MODE_LIMITS;
  const delay: NumRule = { min: 0, max: L.maxDelayMs };
  switch (kind) {
    case 'up':
    case 'down':
    case 'blackhole':
      return { kind };
    case 'latency': {
      const ms = num(obj, kind, 'ms', delay);
      const jitterMs = num(obj, kind, 'jitterMs', delay, true);
      return jitterMs === undefined ? { kind, ms } : { kind, ms, jitterMs };
    }
    case 'bandwidth':
      // 0 B/s would be a blackhole in disguise; ask for that mode explicitly.
      return { kind, bytesPerSecond: num(obj, kind, 'bytesPerSecond', { min: 1, max: L.maxBytesPerSecond }) };
    case 'reset-after':
    case 'truncate-after':
      return { kind, bytes: num(obj, kind, 'bytes', { min: 0, max: L.maxBytes, integer: true }) };
    case 'fragment': {
      const maxChunk = num(obj, kind, 'maxChunk', { min: 1, max: L.maxChunk, integer: true });
      const delayMs = num(obj, kind, 'delayMs', delay, true);
      return delayMs === undefined ? { kind, maxChunk } : { kind, maxChunk, delayMs };
    }
    case 'slow-close':
      return { kind, delayMs: num(obj, kind, 'delayMs', delay) };
    case 'flap':
      // A floor on the periods keeps a flapping line from turning into a timer storm.
      return {
        kind,
        upMs: num(obj, kind, 'upMs', { min: L.minFlapMs, max: L.maxDelayMs }),
        downMs: num(obj, kind, 'downMs', { min: L.minFlapMs, max: L.maxDelayMs }),
      };
  }
}
