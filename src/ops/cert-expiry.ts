/**
 * Expiry check of the gateway's client certificate for the closed line (mutual TLS to central).
 * Pure: the caller reads the PEM, passes `now`, and logs / shows the result (health, admin page).
 * Central refuses an expired client certificate, so every check would fail at the counter: warn a
 * month ahead, while there is time to order the renewal.
 */
import { X509Certificate } from 'node:crypto';
import { OnshiError } from '../core/errors.js';

export const CERT_WARN_DAYS = 30;
const DAY = 86_400_000;

export type CertExpiryCode = 'CENTRAL_CERT_EXPIRING' | 'CENTRAL_CERT_EXPIRED' | 'CENTRAL_CERT_NOT_YET_VALID';

export interface CertExpiryResult {
  level: 'ok' | 'warning' | 'error';
  /** Set for warning and error. */
  code?: CertExpiryCode;
  message: string;
  notBefore: Date;
  notAfter: Date;
  /** Whole days until notAfter (negative once expired). */
  daysLeft: number;
  subject: string;
  serial: string;
}

/**
 * `pem`: the certificate file's content; with a chain, the first certificate is the gateway's.
 * Throws OnshiError CENTRAL_CERT_INVALID when it holds no readable certificate.
 */
export function checkCertExpiry(
  pem: string | Buffer,
  now = new Date(),
  opts: { warnDays?: number } = {},
): CertExpiryResult {
  const warnDays = opts.warnDays ?? CERT_WARN_DAYS;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(firstCertificate(pem));
  } catch (e) {
    throw new OnshiError('CENTRAL_CERT_INVALID', 'the client certificate file holds no readable X.509 certificate', {
      cause: e,
    });
  }
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  const t = now.getTime();
  const daysLeft = Math.floor((notAfter.getTime() - t) / DAY);
  const base = { notBefore, notAfter, daysLeft, subject: cert.subject.replace(/\n/g, ', '), serial: cert.serialNumber };
  const until = notAfter.toISOString();
  if (t > notAfter.getTime()) {
    return {
      ...base,
      level: 'error',
      code: 'CENTRAL_CERT_EXPIRED',
      message: `the client certificate for central expired on ${until}; central will refuse every check until it is renewed`,
    };
  }
  if (t < notBefore.getTime()) {
    return {
      ...base,
      level: 'error',
      code: 'CENTRAL_CERT_NOT_YET_VALID',
      message: `the client certificate for central is not valid before ${notBefore.toISOString()} (is the clock right?)`,
    };
  }
  if (notAfter.getTime() - t <= warnDays * DAY) {
    return {
      ...base,
      level: 'warning',
      code: 'CENTRAL_CERT_EXPIRING',
      message: `the client certificate for central expires on ${until} (${daysLeft} days left); renew it now`,
    };
  }
  return { ...base, level: 'ok', message: `the client certificate for central is valid until ${until}` };
}

function firstCertificate(pem: string | Buffer): string | Buffer {
  const text = typeof pem === 'string' ? pem : pem.toString('latin1');
  const m = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(text);
  if (m) return m[0];
  return pem; // maybe DER
}
