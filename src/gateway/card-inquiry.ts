/**
 * A check by My Number card (照会区分 1). One card connection for the whole check: read the
 * user-authentication certificate, check it locally, then (mode `pin`) prompt for the PIN and have
 * the card sign central's challenge — SELECT → VERIFY → SIGN in one PC/SC transaction — and send
 * certificate + signature to central. Mode `visual` (資格確認限定型) sends the certificate only,
 * after staff have compared the face photo.
 *
 * PIN rules: the client is told the tries left before every attempt; each `pin.submit` is used for
 * exactly one VERIFY; a wrong PIN is reported with the tries left and the client asked again; the
 * last try needs an explicit confirmation; nothing is ever retried by the gateway.
 */
import { randomUUID, type X509Certificate } from 'node:crypto';
import { OnshiError, isOnshiError } from '../errors.js';
import { todayJst } from '../oqs/dates.js';
import { isReaderError, type ReaderManager } from '../reader/index.js';
import type { CentralClient } from '../sync/central-client.js';
import { checkCardCertificate, EXPIRED_GUIDANCE, type CertWarning } from './card-cert.js';
import { toInquiryResult, type InquiryResult } from './inquiry.js';
import type { PinBroker } from './pin-broker.js';

export interface CardInquiryDeps {
  reader: ReaderManager;
  central: CentralClient;
  institutionCode: string;
  jpkiCas: readonly X509Certificate[];
  pins: PinBroker;
  readerName?: string;
}

export interface CardInquiryInput {
  mode: 'pin' | 'visual';
  limitConsent: boolean;
  confirmationDate?: string;
  readerName?: string;
  inquiryId: string;
  connectionId: string;
  deadline: number;
  signal: AbortSignal;
  progress(event: Record<string, unknown>): void;
}

export type CardResult = InquiryResult & { warnings: CertWarning[] };

export async function inquireByCard(deps: CardInquiryDeps, input: CardInquiryInput): Promise<CardResult> {
  const { deadline, signal, progress } = input;
  const readerName = input.readerName ?? deps.readerName;
  progress({ type: 'inquiry.progress', stage: 'waiting_for_card' });
  return deps.reader.withSession(async (session) => {
    progress({ type: 'inquiry.progress', stage: 'card_inserted' });
    const { der, certificate } = await session.readAuthCertificate();
    const warnings = checkCardCertificate(certificate, deps.jpkiCas);
    progress({ type: 'inquiry.progress', stage: 'certificate_read', warnings });

    let proof: { challenge: string; signature: Buffer } | undefined;
    if (input.mode === 'pin') {
      // The challenge first: if central is out of reach, the patient is not asked for a PIN in vain.
      const challenge = await deps.central.cardChallenge({ deadline });
      proof = { challenge, signature: await askPinAndSign(session, Buffer.from(challenge, 'base64'), deps.pins, input) };
    }

    progress({ type: 'inquiry.progress', stage: 'checking' });
    let response;
    try {
      response = await deps.central.searchByCard({
        certificate: der,
        ...(proof ?? { visual: true }),
        confirmationDate: input.confirmationDate ?? todayJst(),
        institutionCode: deps.institutionCode,
        limitConsent: input.limitConsent ? '1' : '0',
      }, { deadline, idempotencyKey: randomUUID() });
    } catch (e) {
      throw cardRefusal(e);
    }
    const result = toInquiryResult(response);
    return { ...result, warnings };
  }, { deadline, signal, ...(readerName ? { readerName } : {}) });
}

type Session = Parameters<Parameters<ReaderManager['withSession']>[0]>[0];

async function askPinAndSign(session: Session, challenge: Buffer, pins: PinBroker, input: CardInquiryInput): Promise<Buffer> {
  for (;;) {
    const triesLeft = await session.triesLeft();
    if (triesLeft === 0) throw new OnshiError('CARD_PIN_BLOCKED', 'The PIN is blocked; it can only be reset at the municipal office. Use the 資格確認書 for today\'s check.', { details: { triesLeft: 0 } });
    input.progress({ type: 'pin.required', triesLeft, confirmRequired: triesLeft === 1 });
    const entry = await pins.wait(input.connectionId, input.inquiryId, input.signal);
    try {
      return (await session.authenticate(entry.pin, challenge, { confirmLastTry: entry.confirmLastTry })).signature;
    } catch (e) {
      entry.pin.fill(0);
      if (isReaderError(e, 'CARD_PIN_WRONG')) {
        const left = (e.details.triesLeft as number | undefined) ?? 0;
        if (left === 0) throw new OnshiError('CARD_PIN_BLOCKED', 'The PIN was wrong three times and is now blocked; it can only be reset at the municipal office. Use the 資格確認書 for today\'s check.', { details: { triesLeft: 0 } });
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
  if (code === 'CERT_REVOKED') return new OnshiError('CARD_CERT_REVOKED', `The card's certificate has been revoked (lost, stolen or reissued). ${EXPIRED_GUIDANCE}`, { cause: e });
  if (code === 'CERT_EXPIRED') return new OnshiError('CARD_CERT_EXPIRED', `Central refused the card's expired certificate. ${EXPIRED_GUIDANCE}`, { cause: e });
  if (code === 'CERT_UNTRUSTED') return new OnshiError('CARD_CERT_UNTRUSTED', 'Central does not trust the card\'s certificate.', { cause: e });
  if (code === 'SIGNATURE_INVALID') return new OnshiError('CARD_SIGNATURE_INVALID', 'The card\'s signature did not verify at central; try the check again.', { retryable: true, cause: e });
  return e;
}
