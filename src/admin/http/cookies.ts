/** The admin page's cookies: all `__Host-`, Secure, HttpOnly, SameSite=Strict, Path=/. */

export const SESSION_COOKIE = '__Host-onshi_session';
/** the login form's double-submit CSRF token */
export const LOGIN_COOKIE = '__Host-onshi_login';
export const LANG_COOKIE = '__Host-onshi_lang';

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), decodeURIComponent(part.slice(i + 1).trim()));
  }
  return out;
}

/** A Set-Cookie value; `maxAge` 0 deletes the cookie, none makes it a session cookie. */
export const cookie = (name: string, value: string, maxAge?: number): string =>
  `${name}=${encodeURIComponent(value)}; Path=/; Secure; HttpOnly; SameSite=Strict${maxAge !== undefined ? `; Max-Age=${maxAge}` : ''}`;
