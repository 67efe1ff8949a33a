/**
 * Replaying one outbox entry: ask central again, under the entry's idempotency key, what the
 * counter was told during the outage; cache the fresh answer; when it differs from what the
 * counter was told, file a reconciliation item and push it to subscribed receipt computers.
 * The cache write goes back to the relay, which commits it with the entry's 'done' in one round
 * trip to the writer; subscribers hear of the replay once that is durable.
 */
import { X509Certificate } from 'node:crypto';
import { OnshiError, isOnshiError } from '../core/errors.js';
import type { EligibilityWrite, GatewayStore, LookupInput } from '../cache/index.js';
import type { QualificationRequest, QualificationResponse } from '../oqs/types.js';
import type { CentralClient } from '../sync/central-client.js';
import type { RelayEntry, ReplayFn } from '../sync/relay.js';
import { cardLookup } from './card.js';
import type { EventHub } from '../protocol/events.js';
import { numbersLookup, toInquiryResult, type InquiryResult, type RecheckScheduler } from './result.js';
import type { Logger } from '../core/logger.js';
import { compareOutcomes, summarize, type OutcomeSummary } from './outcome.js';
import { cacheable } from './outage.js';

export interface ReplayDeps {
  central: CentralClient;
  store: GatewayStore;
  events: EventHub;
  logger: Logger;
  /** how long one replay may take */
  timeoutMs: number;
  /** a lag answer on re-verification schedules its time-lag recheck, as a live answer would */
  rechecks?: RecheckScheduler;
}

interface CardPayload {
  certificate: string;
  mode: 'pin' | 'visual';
  confirmationDate: string;
  institutionCode: string;
  limitConsent: '0' | '1';
  /** the consents the live search carried: a resend under the same key must be byte-identical */
  consents?: Record<string, string>;
  proof?: { nonce: string; signature: string; signedAt: string };
  live?: { challenge: string; signature: string };
}

interface CommonPayload {
  told: OutcomeSummary;
  toldAt: string;
  inquiryId?: string;
  clientId?: string;
  changedInsurer?: boolean;
}

/** Central's refusals that are its verdict on the card, not on the request. */
const CARD_VERDICTS = new Set([
  'CERT_REVOKED',
  'CERT_EXPIRED',
  'CERT_UNTRUSTED',
  'SIGNATURE_INVALID',
  'OFFLINE_PROOF_STALE',
]);

const bad = (why: string): OnshiError =>
  new OnshiError('OUTBOX_PAYLOAD_INVALID', `the outbox entry cannot be replayed: ${why}`);

export function createReplay(deps: ReplayDeps): ReplayFn<EligibilityWrite> {
  return async (entry: RelayEntry) => {
    const p = entry.payload as CommonPayload & Record<string, unknown>;
    if (typeof p !== 'object' || p === null || typeof p.told !== 'object')
      throw bad('no record of what the counter was told');
    const deadline = Date.now() + deps.timeoutMs;
    let lookup: LookupInput;
    let after: OutcomeSummary;
    let result: InquiryResult | undefined;
    let request: QualificationRequest | undefined;
    if (entry.kind === 'numbers') {
      request = p.request as QualificationRequest | undefined;
      if (!request?.query) throw bad('no request');
      lookup = numbersLookup(request.query);
      result = toInquiryResult(
        await deps.central.searchByNumbers(request, { deadline, idempotencyKey: entry.idempotencyKey }),
      );
      after = summarize(result);
    } else if (entry.kind === 'card') {
      const card = p as unknown as CardPayload;
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(Buffer.from(card.certificate, 'base64'));
      } catch {
        throw bad('the certificate does not parse');
      }
      lookup = cardLookup(cert);
      try {
        result = toInquiryResult(await replayCard(deps.central, card, entry.idempotencyKey, deadline));
        after = summarize(result);
      } catch (e) {
        const verdict = isOnshiError(e, 'CENTRAL_REFUSED') ? String(e.details.centralCode ?? '') : '';
        if (!CARD_VERDICTS.has(verdict)) throw e;
        after = { source: 'central', refusedCode: verdict, insurances: [] };
      }
    } else {
      throw bad(`unknown kind ${entry.kind}`);
    }

    const writes: EligibilityWrite[] = [];
    if (result) {
      writes.push(deps.store.eligibility.write(lookup, cacheable(result), new Date(result.verifiedAt ?? Date.now())));
      // One open recheck per patient, so a replay repeated after a crash schedules nothing twice.
      await deps.rechecks?.consider(result, {
        ...(request ? { request } : {}),
        inquiryId: p.inquiryId ?? `outbox-${entry.id}`,
        clientId: p.clientId,
        changedInsurer: p.changedInsurer === true,
      });
    }
    const changedFields = compareOutcomes(p.told, after);
    const ids = {
      outboxId: entry.id,
      kind: entry.kind,
      ...(p.inquiryId ? { inquiryId: p.inquiryId } : {}),
      ...(p.clientId ? { clientId: p.clientId } : {}),
    };
    if (changedFields.length > 0) {
      const item = await fileReconciliation(
        deps.store,
        entry.id,
        { ...ids, checkedAt: p.toldAt, told: p.told },
        after,
        changedFields,
      );
      deps.events.publish('reconciliation', 'reconciliation.added', { item });
      deps.logger.warn('a re-verified check differs from what the counter was told', {
        event: 'reconciliation_added',
        outboxId: entry.id,
        changedFields,
      });
    }
    return {
      writes,
      onSettled: () =>
        deps.events.publish('outbox', 'outbox.replayed', {
          ...ids,
          changedFields,
          ...(result ? { result } : { refusedCode: after.refusedCode }),
        }),
    };
  };
}

/** Idempotent per outbox entry: a replay repeated after a crash does not file the item twice. */
async function fileReconciliation(
  store: GatewayStore,
  outboxId: number,
  before: Record<string, unknown>,
  after: OutcomeSummary,
  changedFields: string[],
): Promise<ReturnType<GatewayStore['reconciliation']['list']>[number]> {
  const existing = store.reconciliation.forOutbox(outboxId);
  if (existing) return existing;
  await store.reconciliation.add({ outboxId, before, after, changedFields });
  return store.reconciliation.forOutbox(outboxId)!;
}

async function replayCard(
  central: CentralClient,
  p: CardPayload,
  key: string,
  deadline: number,
): Promise<QualificationResponse> {
  const base = {
    certificate: Buffer.from(p.certificate, 'base64'),
    confirmationDate: p.confirmationDate,
    institutionCode: p.institutionCode,
    limitConsent: p.limitConsent,
    ...(p.consents ? { consents: p.consents } : {}),
  };
  if (p.mode === 'visual') return central.searchByCard({ ...base, visual: true }, { deadline, idempotencyKey: key });
  if (!p.proof) throw bad('a PIN check without its proof');
  const offlineProof = {
    nonce: Buffer.from(p.proof.nonce, 'base64'),
    signature: Buffer.from(p.proof.signature, 'base64'),
    signedAt: p.proof.signedAt,
  };
  if (p.live) {
    // The live search may have reached central: resend exactly it, so central answers from its
    // record instead of acting twice. Only if central never acted on it (the challenge expired
    // unused) does the offline proof go, under a key of its own.
    try {
      return await central.searchByCard(
        { ...base, challenge: p.live.challenge, signature: Buffer.from(p.live.signature, 'base64') },
        { deadline, idempotencyKey: key },
      );
    } catch (e) {
      if (!(isOnshiError(e, 'CENTRAL_REFUSED') && e.details.centralCode === 'CHALLENGE_UNKNOWN')) throw e;
    }
    return central.searchByCard({ ...base, offlineProof }, { deadline, idempotencyKey: `${key}.offline` });
  }
  return central.searchByCard({ ...base, offlineProof }, { deadline, idempotencyKey: key });
}
