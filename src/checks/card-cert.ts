/**
 * Local checks on the card's user-authentication certificate, before anything goes to central:
 * it chains to a JPKI CA we trust, and it is within its validity — a certificate that expired less
 * than 3 months ago is still usable, with a warning to renew; an older one is refused with the
 * alternatives the clinic can use.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { OnshiError } from '../core/errors.js';
import { certificateGraceEnd } from '../oqs/dates.js';

export type CardCertErrorCode =
  | 'CARD_CERT_UNTRUSTED'
  | 'CARD_CERT_EXPIRED'
  | 'CARD_CERT_NOT_YET_VALID'
  | 'CARD_CERT_REVOKED';

export interface CertWarning {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/** What the patient can use today instead of a card that cannot be used (typed, for the receipt computer). */
export const CARD_ALTERNATIVES = ['資格確認書', 'マイナポータル 資格情報のお知らせ (PDF)'] as const;

export const EXPIRED_GUIDANCE =
  "Use the 資格確認書, or the マイナポータル 資格情報のお知らせ (PDF), for today's check; the patient renews the certificate at the municipal office.";

/** Loads every certificate in a PEM bundle (JPKI has several CA generations under one DN). */
export function loadCaBundle(file: string): X509Certificate[] {
  if (!file) return [];
  const pem = readFileSync(file, 'utf8');
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (p) => new X509Certificate(p),
  );
}

function threeMonthsBefore(d: Date): Date {
  const r = new Date(d.getTime());
  r.setUTCMonth(r.getUTCMonth() - 3);
  return r;
}

export function checkCardCertificate(
  cert: X509Certificate,
  cas: readonly X509Certificate[],
  now = new Date(),
): CertWarning[] {
  const warnings: CertWarning[] = [];
  // Match the CA by signature, not by name: all JPKI generations share one DN.
  if (cas.length > 0 && !cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey))) {
    throw new OnshiError<CardCertErrorCode>(
      'CARD_CERT_UNTRUSTED',
      "The card's certificate was not issued by a trusted JPKI CA: the card may be counterfeit.",
    );
  }
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  if (now < from)
    throw new OnshiError<CardCertErrorCode>(
      'CARD_CERT_NOT_YET_VALID',
      "The card's certificate is not valid yet; check the box's clock.",
      { details: { validFrom: from.toISOString() } },
    );
  const graceEnd = certificateGraceEnd(to);
  if (now > to) {
    if (now > graceEnd) {
      throw new OnshiError<CardCertErrorCode>(
        'CARD_CERT_EXPIRED',
        `The card's certificate expired more than 3 months ago (${to.toISOString().slice(0, 10)}). ${EXPIRED_GUIDANCE}`,
        {
          details: {
            validTo: to.toISOString(),
            graceEnd: graceEnd.toISOString(),
            alternatives: [...CARD_ALTERNATIVES],
          },
        },
      );
    }
    warnings.push({
      code: 'CARD_CERT_EXPIRED_GRACE',
      details: { validTo: to.toISOString(), graceEnd: graceEnd.toISOString() },
      message: `The card's certificate expired on ${to.toISOString().slice(0, 10)}; it can be used until ${graceEnd.toISOString().slice(0, 10)}. Ask the patient to renew it at the municipal office.`,
    });
  } else if (now > threeMonthsBefore(to)) {
    warnings.push({
      code: 'CARD_CERT_EXPIRES_SOON',
      message: `The card's certificate expires on ${to.toISOString().slice(0, 10)}; ask the patient to renew it.`,
    });
  }
  return warnings;
}
