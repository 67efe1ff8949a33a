import { invalidMessage } from './errors.js';
import type { NumbersQuery } from './types.js';

/**
 * Identifier rules (spec §9). Pure string functions; failures are OQS_MESSAGE_INVALID with
 * `details.path` naming the NumbersQuery field and `details.reason`.
 */

/** Modulus-10 check digit: weights 2,1,2,1… from the rightmost digit, adding the digits of each product. */
function mod10CheckDigit(digits: string): number {
  let sum = 0;
  for (let i = digits.length - 1, w = 2; i >= 0; i--, w = w === 2 ? 1 : 2) {
    const p = (digits.charCodeAt(i) - 48) * w;
    sum += p >= 10 ? p - 9 : p; // digit sum of a product ≤ 18
  }
  return (10 - (sum % 10)) % 10;
}

const INSURER_RE = /^(?:\d{6}|\d{8})$/;

/**
 * Trimmed insurer number for comparing. A zero-padded 6-digit 国保 number ("00139998", as some
 * Web API clients send it) is folded to the 6-digit form: 法別番号 00 does not exist, so an
 * 8-digit number starting with 00 can only be a padded 国保 number, and the check digit is the
 * same either way (zeros add nothing).
 */
export function normalizeInsurerNumber(n: string): string {
  const t = n.trim();
  return /^00\d{6}$/.test(t) ? t.slice(2) : t;
}

/** spec §9: 6 digits (国保) or 8 digits, after trim; the last digit checks the others. */
export function insurerCheckDigitOk(insurerNumber: string): boolean {
  const t = insurerNumber.trim();
  if (!INSURER_RE.test(t)) return false;
  return mod10CheckDigit(t.slice(0, -1)) === t.charCodeAt(t.length - 1) - 48;
}

/** The wire form: 6 or 8 digits right-aligned in 8 chars with spaces ("  139998"); never zero-padded. */
export function padInsurerNumber(n: string): string {
  const t = normalizeInsurerNumber(n);
  if (!INSURER_RE.test(t)) throw invalidMessage('insurerNumber', 'format', 'insurer number must be 6 or 8 digits');
  return t.padStart(8, ' ');
}

/** YYYYMMDD that names a real Gregorian calendar day (20230229 is not). */
export function isValidDate(yyyymmdd: string): boolean {
  if (!/^\d{8}$/.test(yyyymmdd)) return false;
  const y = Number(yyyymmdd.slice(0, 4));
  const m = Number(yyyymmdd.slice(4, 6));
  const d = Number(yyyymmdd.slice(6, 8));
  if (y < 1 || m < 1 || m > 12 || d < 1) return false;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1] ?? 0;
  return d <= days;
}

// C0/C1 controls and unpaired surrogates have no place in a printed card field.
const BAD_CHARS_RE =
  /[\u0000-\u001F\u007F-\u009F]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function checkCardField(path: string, v: string, required: boolean): void {
  if (v.trim() === '') {
    if (required) throw invalidMessage(path, 'missing');
    return;
  }
  if ([...v].length > 20) throw invalidMessage(path, 'too-long', `${path}: more than 20 characters`);
  if (BAD_CHARS_RE.test(v)) throw invalidMessage(path, 'control-char');
}

/**
 * Checks a check-by-numbers query and returns it normalized: insurer number space-padded to 8,
 * branch two digits ("1" → "01"), an empty symbol/branch dropped. Symbol and number are kept
 * exactly as printed (full-width allowed, ≤20 chars). Throws OQS_MESSAGE_INVALID.
 */
export function validateNumbersQuery(q: NumbersQuery): NumbersQuery {
  const t = normalizeInsurerNumber(q.insurerNumber ?? '');
  if (!INSURER_RE.test(t)) throw invalidMessage('insurerNumber', 'format', 'insurer number must be 6 or 8 digits');
  if (!insurerCheckDigitOk(t))
    throw invalidMessage('insurerNumber', 'check-digit', 'insurer number check digit mismatch');
  const out: NumbersQuery = {
    insurerNumber: t.padStart(8, ' '),
    number: q.number,
    birthdate: q.birthdate,
    limitConsent: q.limitConsent,
  };
  if (typeof q.number !== 'string') throw invalidMessage('number', 'missing');
  checkCardField('number', q.number, true);
  if (q.symbol !== undefined && q.symbol !== '') {
    checkCardField('symbol', q.symbol, false);
    if (q.symbol.trim() !== '') out.symbol = q.symbol;
  }
  if (q.branch !== undefined && q.branch !== '') {
    if (!/^\d{1,2}$/.test(q.branch)) throw invalidMessage('branch', 'format', 'branch must be 00–99');
    out.branch = q.branch.padStart(2, '0');
  }
  if (typeof q.birthdate !== 'string' || !isValidDate(q.birthdate)) {
    throw invalidMessage('birthdate', 'date', 'birthdate must be a real YYYYMMDD date');
  }
  if (q.limitConsent !== '0' && q.limitConsent !== '1') throw invalidMessage('limitConsent', 'code');
  if (q.arbitraryId !== undefined) {
    if (BAD_CHARS_RE.test(q.arbitraryId)) throw invalidMessage('arbitraryId', 'control-char');
    if (q.arbitraryId !== '') out.arbitraryId = q.arbitraryId;
  }
  return out;
}

/**
 * 医療機関コード: 都道府県(2) + 点数表(1) + 郡市区(2) + 番号(4) + 検証(1). Not 10 digits → throws.
 * The check digit rule is only believed to be mod-10 over 郡市区+番号 (spec §9 [?]), so a
 * mismatch or an unusual 点数表 digit is returned as a warning, never rejected.
 */
export function institutionCodeWarning(code: string): string | undefined {
  if (typeof code !== 'string' || !/^\d{10}$/.test(code)) {
    throw invalidMessage('institutionCode', 'format', 'medical institution code must be 10 digits');
  }
  const warnings: string[] = [];
  if (!'134'.includes(code.charAt(2)))
    warnings.push(`点数表 digit ${code.charAt(2)} is not 1 (医科), 3 (歯科) or 4 (調剤)`);
  if (mod10CheckDigit(code.slice(3, 9)) !== Number(code.charAt(9))) {
    warnings.push('check digit does not match (rule unconfirmed; verify the code with the terminal)');
  }
  return warnings.length > 0 ? `医療機関コード: ${warnings.join('; ')}` : undefined;
}
