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
import { DEFAULT_REVOCATION_GRACE_MS, revocationFreshness, type RevocationListInfo } from '../sync/crl.js';

export type CardCertErrorCode =
  | 'CARD_CERT_UNTRUSTED'
  | 'CARD_CERT_EXPIRED'
  | 'CARD_CERT_NOT_YET_VALID'
  | 'CARD_CERT_REVOKED'
  | 'CARD_REVOCATION_LIST_EXPIRED';

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

/** The synced revocation list as the offline card proof sees it. */
export interface RevocationView {
  isRevoked(serial: string): boolean;
  /** since the list was fetched; undefined: never */
  revocationAge(): number | undefined;
  /** older than this (since fetched), a notice says so */
  maxAgeMs: number;
  /** the held list's dates and number; without them only the fetch age is judged */
  listInfo?(): RevocationListInfo | undefined;
  /** how long past its nextUpdate the list still backs an offline proof (default 72 h) */
  graceMs?: number;
}

const day = (iso: string | undefined): string => (iso ?? '').slice(0, 16).replace('T', ' ');

/**
 * What the synced revocation list says about a card during an outage: CARD_CERT_REVOKED when the
 * certificate is on it; CARD_REVOCATION_LIST_EXPIRED when the list is past its nextUpdate by more
 * than the grace (an old list could miss a card revoked since); otherwise notices for the counter
 * (never fetched, stale past nextUpdate, older than maxAgeMs since fetched).
 */
export function revocationNotices(rev: RevocationView | undefined, cert: X509Certificate, now = new Date()): string[] {
  if (rev?.isRevoked(cert.serialNumber)) {
    throw new OnshiError<CardCertErrorCode>(
      'CARD_CERT_REVOKED',
      `The card's certificate is on the revocation list (lost, stolen or reissued). ${EXPIRED_GUIDANCE}`,
    );
  }
  const age = rev?.revocationAge();
  if (age === undefined)
    return [
      '失効リストを未取得のため、カードの失効は確認できていません。 The revocation list has never been fetched: revocation was not checked.',
    ];
  const notices: string[] = [];
  const fresh = revocationFreshness(rev!.listInfo?.(), now, rev!.graceMs ?? DEFAULT_REVOCATION_GRACE_MS);
  if (fresh.state === 'expired')
    throw new OnshiError<CardCertErrorCode>(
      'CARD_REVOCATION_LIST_EXPIRED',
      `The revocation list expired on ${day(fresh.nextUpdate)} UTC and could not be renewed, so the card cannot be checked without central. ${EXPIRED_GUIDANCE}`,
      { details: { revocation: fresh, alternatives: [...CARD_ALTERNATIVES] } },
    );
  if (fresh.state === 'stale')
    notices.push(
      `失効リストは更新期限 (${day(fresh.nextUpdate)} UTC) を過ぎています。 The revocation list is stale: past its nextUpdate (${day(fresh.nextUpdate)} UTC); offline card checks are refused after ${day(fresh.refuseAfter)} UTC.`,
    );
  const hours = Math.round(age / 3600_000);
  if (age > rev!.maxAgeMs)
    notices.push(`失効リストは ${hours} 時間前のものです。 The revocation list is ${hours} h old.`);
  return notices;
}
