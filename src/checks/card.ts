/**
 * A check by My Number card (照会区分 1). One card connection for the whole check: read the
 * user-authentication certificate, check it locally, then (mode `pin`) prompt for the PIN and have
 * the card sign central's challenge — SELECT → VERIFY → SIGN in one PC/SC transaction — and send
 * certificate + signature to central. Mode `visual` (資格確認限定型) sends the certificate only,
 * after staff have compared the face photo.
 *
 * With the line down (or central failing mid-check) the card still proves the PIN: it signs a
 * nonce of ours, the gateway verifies the signature with the certificate's key, the chain and the
 * synced revocation list, and the answer comes from the outage path (cache + outbox).
 *
 * PIN rules: the client is told the tries left before every attempt; each `pin.submit` is used for
 * exactly one VERIFY; a wrong PIN is reported with the tries left and the client asked again; the
 * last try needs an explicit confirmation; nothing is ever retried by the gateway.
 */
import { randomBytes, randomUUID, verify as verifySignature, type X509Certificate } from 'node:crypto';
import type { LookupInput } from '../cache/index.js';
import { OnshiError, isOnshiError } from '../core/errors.js';
import { todayJst } from '../oqs/dates.js';
import { isReaderError, type ReaderManager } from '../reader/index.js';
import type { CentralClient } from '../sync/central-client.js';
import {
  CARD_ALTERNATIVES,
  checkCardCertificate,
  EXPIRED_GUIDANCE,
  revocationNotices,
  type RevocationView,
} from './card-cert.js';
import { toInquiryResult, withAdvice, type CheckContext, type InquiryResult, type RecheckScheduler } from './result.js';
import { CONSENT_BLOCKS, type ConsentFlags, type ConsentName } from './counter-advice.js';
import { shouldFallBack, type OutagePath } from './outage.js';
import type { PinBroker } from './pin-broker.js';

export interface CardInquiryDeps {
  reader: ReaderManager;
  central: CentralClient;
  institutionCode: string;
  jpkiCas: readonly X509Certificate[];
  pins: PinBroker;
  readerName?: string;
  /** the outage path; without it a line failure is an error */
  outage?: OutagePath;
  /** the synced revocation list, for the offline check */
  revocation?: RevocationView;
  /** time-lag rechecks; without it none are scheduled */
  rechecks?: RecheckScheduler;
}

export interface CardInquiryInput {
  mode: 'pin' | 'visual';
  limitConsent: boolean;
  confirmationDate?: string;
  readerName?: string;
  inquiryId: string;
  clientId?: string;
  connectionId: string;
  deadline: number;
  signal: AbortSignal;
  progress(event: Record<string, unknown>): void;
  /** known facts, change of insurer, consent flags (the 限度額 one is `limitConsent`) */
  context?: CheckContext;
  /**
   * The patient chooses the consents after proving the card (a kiosk: PIN, then consents). Called
   * once, after the PIN (or, mode visual, after the certificate) and before anything reaches
   * central; what it answers replaces the consent flags, 限度額 included.
   */
  askConsents?(signal: AbortSignal): Promise<ConsentFlags>;
}

export type CardResult = InquiryResult;

/** The consent flags a card check carries to central: every one (照会区分 1 has a field for each). */
const CARD_CONSENTS: ConsentName[] = [...(Object.keys(CONSENT_BLOCKS) as ConsentName[]), 'limit'];

export async function inquireByCard(deps: CardInquiryDeps, input: CardInquiryInput): Promise<CardResult> {
  const { deadline, signal, progress } = input;
  const readerName = input.readerName ?? deps.readerName;
  const { outage } = deps;
  progress({ type: 'inquiry.progress', stage: 'waiting_for_card' });
  let ctx: CheckContext = { ...input.context, consent: { ...input.context?.consent, limit: input.limitConsent } };
  let consents = consentBlocks(ctx);
  const advised = await deps.reader.withSession(
    async (session) => {
      progress({ type: 'inquiry.progress', stage: 'card_inserted' });
      const { der, certificate } = await session.readAuthCertificate();
      const warnings = checkCardCertificate(certificate, deps.jpkiCas);
      progress({ type: 'inquiry.progress', stage: 'certificate_read', warnings });

      const common = {
        confirmationDate: input.confirmationDate ?? todayJst(),
        institutionCode: deps.institutionCode,
        limitConsent: (ctx.consent?.limit ? '1' : '0') as '0' | '1',
      };
      // One key for the live search and any replay of it: central never acts twice on one check.
      const idempotencyKey = randomUUID();
      const liveDeadline = outage ? outage.liveDeadline(deadline) : deadline;
      let cause = outage && !outage.link.allowRequest() ? 'LINE_DOWN' : undefined;
      const lineFailed = (e: unknown): string => {
        if (!outage || !shouldFallBack(e)) throw e;
        outage.link.recordFailure(e);
        return e.code;
      };

      let proof: { nonce: Buffer; signature: Buffer; challenge?: string } | undefined;
      if (input.mode === 'pin') {
        // The challenge first: with the line up, the card signs central's challenge. With the line
        // down the card signs our own nonce, which proves the PIN locally.
        let challenge: string | undefined;
        if (!cause) {
          try {
            challenge = await deps.central.cardChallenge({ deadline: liveDeadline });
          } catch (e) {
            cause = lineFailed(e);
          }
        }
        // Known to be offline already: refuse an unverifiable or revoked card before the patient types a PIN in vain.
        if (cause) offlineCertChecks(deps, certificate);
        const nonce = challenge ? Buffer.from(challenge, 'base64') : randomBytes(32);
        proof = {
          nonce,
          signature: await askPinAndSign(session, nonce, deps.pins, input),
          ...(challenge ? { challenge } : {}),
        };
      }

      if (input.askConsents) {
        progress({ type: 'inquiry.progress', stage: 'consents' });
        ctx = { ...ctx, consent: { ...(await input.askConsents(signal)) } };
        consents = consentBlocks(ctx);
        common.limitConsent = ctx.consent?.limit ? '1' : '0';
      }

      if (!cause) {
        progress({ type: 'inquiry.progress', stage: 'checking' });
        const started = performance.now();
        try {
          const response = await deps.central.searchByCard(
            {
              certificate: der,
              ...(proof?.challenge ? { challenge: proof.challenge, signature: proof.signature } : { visual: true }),
              ...common,
              consents,
            },
            { deadline: liveDeadline, idempotencyKey },
          );
          const result = toInquiryResult(response);
          if (outage) {
            outage.link.recordSuccess(performance.now() - started);
            outage.remember(cardLookup(certificate), result);
          }
          return withAdvice(result, ctx, CARD_CONSENTS, warnings);
        } catch (e) {
          cause = lineFailed(cardRefusal(e));
        }
      }

      // The outage path: prove what can be proved here, then answer from the cache.
      progress({ type: 'inquiry.progress', stage: 'checking_offline', cause });
      const notices = offlineCertChecks(deps, certificate);
      if (proof && !verifySignature('sha256', proof.nonce, certificate.publicKey, proof.signature)) {
        throw new OnshiError(
          'CARD_SIGNATURE_INVALID',
          "The card's signature does not match its certificate: the card may be counterfeit.",
        );
      }
      const signedAt = new Date().toISOString();
      const payload: Record<string, unknown> = {
        certificate: der.toString('base64'),
        mode: input.mode,
        ...common,
        consents,
        inquiryId: input.inquiryId,
        ...(ctx.changedInsurer ? { changedInsurer: true } : {}),
        ...(input.clientId ? { clientId: input.clientId } : {}),
        ...(proof
          ? {
              proof: { nonce: proof.nonce.toString('base64'), signature: proof.signature.toString('base64'), signedAt },
            }
          : {}),
        // The live search may have reached central: the replay first resends exactly it, under the same key.
        ...(proof?.challenge
          ? { live: { challenge: proof.challenge, signature: proof.signature.toString('base64') } }
          : {}),
      };
      const result = await outage!.answer({
        lookup: cardLookup(certificate),
        referenceClassification: '1',
        confirmationDate: common.confirmationDate,
        cause: cause!,
        entry: { idempotencyKey, kind: 'card', payload },
        notices,
      });
      return withAdvice(result, ctx, CARD_CONSENTS, warnings);
    },
    { deadline, signal, ...(readerName ? { readerName } : {}) },
  );
  // After the card is released: the recheck is a check by numbers and needs no card.
  await deps.rechecks?.consider(advised, {
    inquiryId: input.inquiryId,
    clientId: input.clientId,
    changedInsurer: ctx.changedInsurer === true,
  });
  return advised;
}

/** The consent flags as central's blocks ('1'/'0'); 限度額 travels apart (limitConsent). */
function consentBlocks(ctx: CheckContext): Record<string, string> {
  return Object.fromEntries(
    Object.entries(CONSENT_BLOCKS).map(([name, block]) => [block, ctx.consent?.[name as ConsentName] ? '1' : '0']),
  );
}

export function cardLookup(cert: X509Certificate): LookupInput {
  return { kind: 'card', certSerial: cert.serialNumber, issuer: cert.issuer };
}

/**
 * What the gateway checks itself about the certificate when central cannot: the chain to the JPKI
 * CA bundle (checkCardCertificate did it; without a bundle nothing can be proved here) and the
 * last synced revocation list (refused when revoked, or when the list is past its nextUpdate
 * beyond the grace). The card's signature over the nonce is checked after the PIN.
 * Returns notices for the counter (the list stale or old).
 */
function offlineCertChecks(deps: CardInquiryDeps, cert: X509Certificate): string[] {
  if (deps.jpkiCas.length === 0) {
    throw new OnshiError(
      'CARD_OFFLINE_UNVERIFIABLE',
      `Central cannot be reached and no JPKI CA bundle is configured, so the card cannot be checked here. ${EXPIRED_GUIDANCE}`,
    );
  }
  return revocationNotices(deps.revocation, cert);
}

type Session = Parameters<Parameters<ReaderManager['withSession']>[0]>[0];

async function askPinAndSign(
  session: Session,
  challenge: Buffer,
  pins: PinBroker,
  input: CardInquiryInput,
): Promise<Buffer> {
  for (;;) {
    const triesLeft = await session.triesLeft();
    if (triesLeft === 0)
      throw new OnshiError(
        'CARD_PIN_BLOCKED',
        "The PIN is blocked; it can only be reset at the municipal office. Use the 資格確認書 for today's check.",
        { details: { triesLeft: 0 } },
      );
    input.progress({ type: 'pin.required', triesLeft, confirmRequired: triesLeft === 1 });
    const entry = await pins.wait(input.connectionId, input.inquiryId, input.signal);
    try {
      return (await session.authenticate(entry.pin, challenge, { confirmLastTry: entry.confirmLastTry })).signature;
    } catch (e) {
      entry.pin.fill(0);
      if (isReaderError(e, 'CARD_PIN_WRONG')) {
        const left = (e.details.triesLeft as number | undefined) ?? 0;
        if (left === 0)
          throw new OnshiError(
            'CARD_PIN_BLOCKED',
            "The PIN was wrong three times and is now blocked; it can only be reset at the municipal office. Use the 資格確認書 for today's check.",
            { details: { triesLeft: 0 } },
          );
        input.progress({ type: 'pin.wrong', triesLeft: left });
        continue;
      }
      // No VERIFY was sent for these: ask again.
      if (isReaderError(e, 'CARD_PIN_CONFIRM_REQUIRED') || isReaderError(e, 'CARD_PIN_FORMAT')) {
        input.progress({ type: 'pin.refused', reason: e.code, message: e.message });
        continue;
      }
      throw e;
    }
  }
}

/** Central's refusals of a card, in terms the counter can act on. */
function cardRefusal(e: unknown): unknown {
  if (!isOnshiError(e, 'CENTRAL_REFUSED')) return e;
  const code = e.details.centralCode;
  if (code === 'CERT_REVOKED')
    return new OnshiError(
      'CARD_CERT_REVOKED',
      `The card's certificate has been revoked (lost, stolen or reissued). ${EXPIRED_GUIDANCE}`,
      { cause: e, details: { alternatives: [...CARD_ALTERNATIVES] } },
    );
  if (code === 'CERT_EXPIRED')
    return new OnshiError('CARD_CERT_EXPIRED', `Central refused the card's expired certificate. ${EXPIRED_GUIDANCE}`, {
      cause: e,
      details: { alternatives: [...CARD_ALTERNATIVES] },
    });
  if (code === 'CERT_UNTRUSTED')
    return new OnshiError('CARD_CERT_UNTRUSTED', "Central does not trust the card's certificate.", { cause: e });
  if (code === 'SIGNATURE_INVALID')
    return new OnshiError(
      'CARD_SIGNATURE_INVALID',
      "The card's signature did not verify at central; try the check again.",
      { retryable: true, cause: e },
    );
  return e;
}
