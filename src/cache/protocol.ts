/**
 * The main thread ↔ writer worker protocol. Plain JSON-able messages (no transferables, no
 * Buffers): values travel as JSON text, keyed hashes as hex, times as epoch milliseconds.
 * Every request carries an id and gets exactly one response with that id.
 */
import type { OnshiError } from '../core/errors.js';
import type { WireAuditInput } from './audit.js';
import type { CompleteOutcome, StoreAlert, StoreErrorCode } from './types.js';

export interface WorkerInit {
  dbPath: string;
  /** master key, hex: the worker seals and opens with the same derived keys as the main thread */
  keyHex: string;
  outboxMax: number;
}

/** Wire form of the CompleteOutcome (Dates as ms). */
export type WireOutcome = 'done' | { retryAt: number; error: string; unsent?: true } | { dead: string };

/** A cache write prepared on the main thread (lookup key and JSON), committed by the writer. */
export interface WireEligibility {
  lookupHex: string;
  answerJson: string;
  verifiedAt: number;
  source: string;
}

export interface WireOutboxEntry {
  id: number;
  idempotencyKey: string;
  kind: string;
  payloadJson: string;
  createdAt: number;
  attempts: number;
  lastError?: string;
}

/** One source address's failed authentications (api/rate-limit.ts), times as epoch ms. */
export interface WireAuthFailure {
  source: string;
  windowStart: number;
  failures: number;
  lockedUntil: number;
  /** when the row stops mattering: the end of its window, or of its lockout */
  expiresAt: number;
}

/** op name → [arguments, result] */
export interface Ops {
  putEligibility: [WireEligibility, { stored: boolean }];
  enqueue: [
    { idempotencyKey: string; kind: string; payloadJson: string; now: number },
    { id: number; depth: number; duplicate: boolean },
  ];
  nextDue: [{ limit: number; now: number }, { entries: WireOutboxEntry[]; corruptIds: number[] }];
  complete: [{ id: number; outcome: WireOutcome; now: number }, null];
  /** a replay's cache writes + complete + nextDue(next), in one savepoint: one round trip per replay */
  settleOutbox: [
    { id: number; outcome: WireOutcome; eligibility: WireEligibility[]; next: number; now: number },
    { entries: WireOutboxEntry[]; corruptIds: number[] },
  ];
  addReconciliation: [
    { outboxId: number; beforeJson: string | null; afterJson: string; changedFields: string[]; now: number },
    { id: number },
  ];
  markHandled: [{ id: number; now: number }, null];
  addRecheck: [
    {
      lookupHex: string;
      client: string;
      validity: string;
      until: number;
      nextAt: number;
      personalJson: string;
      now: number;
    },
    { id: number; duplicate: boolean },
  ];
  updateRecheck: [
    {
      id: number;
      attempted: boolean;
      state: 'scheduled' | 'found' | 'expired';
      validity: string | null;
      error: string | null;
      nextAt: number | null;
      foundJson: string | null;
      now: number;
    },
    null,
  ];
  setRevocationList: [
    { serials: string[]; fetchedAt: number; info?: { thisUpdate: number; nextUpdate?: number; crlNumber?: string } },
    { count: number },
  ];
  setMeta: [{ key: string; value: string }, null];
  /** one address's failure count (upsert); rows past their expiry are dropped in the same step */
  putAuthFailure: [WireAuthFailure & { now: number }, null];
  historyPut: [
    {
      at: number;
      central: number;
      cache: number;
      none: number;
      outbox: number;
      /** JSON counts per latency bucket, or null */
      latency: string | null;
      /** checks by method */
      card_pin: number;
      card_visual: number;
      numbers: number;
      pruneBefore: number;
    },
    { pruned: number },
  ];
  /**
   * one successful check counted for its JST day; with `pruneBeforeDay` (once a month), patient
   * hashes of days before it dropped after their months' distinct counts are kept
   */
  usageRecord: [
    {
      day: string;
      method: 'card_pin' | 'card_visual' | 'numbers';
      /** the patient's keyed hash (hex), absent when the answer named no one */
      patientHex?: string;
      pruneBeforeDay?: string;
    },
    { newPatient: boolean },
  ];
  pruneOutbox: [{ before: number }, { deleted: number }];
  appendAudit: [WireAuditInput, { seq: number; hash: string }];
  purgeAuditPersonal: [{ before: number; now: number }, { purged: number }];
  batchAppend: [
    {
      batchId: string;
      client: string;
      create?: { confirmationDate: string; run: 'now' | 'scheduled' };
      entries: { arbitraryId: string; queryJson: string }[];
      close?: { chunkSize: number };
      maxEntries: number;
      now: number;
    },
    { total: number; state: string },
  ];
  batchStart: [{ batchId: string; now: number }, null];
  batchPrune: [{ before: number }, { batches: number; entries: number }];
  batchChunkSubmitted: [{ batchId: string; chunk: number; receptionNumber: string; now: number }, null];
  batchChunkError: [{ batchId: string; chunk: number; error: string; now: number }, null];
  batchChunkFinish: [
    {
      batchId: string;
      chunk: number;
      chunkState: 'done' | 'failed';
      error?: string;
      results: { seq: number; state: 'answered' | 'error'; isError: boolean; resultJson: string }[];
      unansweredJson: string;
      now: number;
    },
    { state: string; total: number; finished: number; errors: number; complete: boolean },
  ];
  close: [Record<string, never>, null];
}
export type OpName = keyof Ops;
export type OpArgs<K extends OpName> = Ops[K][0];
export type OpResult<K extends OpName> = Ops[K][1];

export type Request = { [K in OpName]: { type: 'req'; id: number; op: K; args: OpArgs<K> } }[OpName];

/** Requests made in the same turn of the main thread's event loop, sent as one message. */
export interface Requests {
  type: 'req-batch';
  requests: Request[];
}

export interface WireError {
  code: StoreErrorCode | string;
  message: string;
  retryable: boolean;
  details?: Record<string, unknown>;
}

export type Response =
  | { type: 'res'; id: number; ok: true; result: unknown }
  | { type: 'res'; id: number; ok: false; error: WireError };

/** Sent once after open: either ready (with alerts) or the typed reason it could not open. */
export type Startup = { type: 'ready'; alerts: StoreAlert[] } | { type: 'fatal'; error: WireError };

/** The answers to one group commit travel together: one message instead of one per request. */
export interface Responses {
  type: 'res-batch';
  responses: Response[];
}

export type WorkerMessage = Response | Responses | Startup;

export function toWire(e: OnshiError): WireError {
  const out: WireError = { code: e.code, message: e.message, retryable: e.retryable };
  if (Object.keys(e.details).length > 0) out.details = { ...e.details };
  return out;
}

export function outcomeToWire(o: CompleteOutcome): WireOutcome {
  if (o === 'done') return 'done';
  if ('dead' in o) return { dead: o.dead };
  return { retryAt: o.retryAt.getTime(), error: o.error, ...(o.unsent ? { unsent: true as const } : {}) };
}
