/** The security headers every answer carries, and the checks that keep requests on this site. */
import type { IncomingMessage } from 'node:http';

export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'strict-transport-security': 'max-age=31536000',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on form posts,
  // which the origin check (sameOrigin) would (rightly) refuse.
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), usb=(), payment=()',
  'cache-control': 'no-store',
};

/**
 * Every POST: the Origin (when the browser sends one) must be this site, and the form's token must
 * be the session's. SameSite=Strict already keeps other sites' requests cookie-less; this is the
 * second lock, and the one that holds for a browser that ignores SameSite.
 */
export function sameOrigin(raw: IncomingMessage): boolean {
  const origin = raw.headers.origin;
  return origin === undefined || origin === `https://${raw.headers.host ?? ''}`;
}

/** A path on this site to return to (never another origin). */
export const safeNext = (next: string | null): string => (next && /^\/(?!\/)[\w\-/.?=&%]*$/.test(next) ? next : '/');
