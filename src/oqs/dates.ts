/** OQS dates and timestamps are Japan time (JST, UTC+9, no DST): YYYYMMDD and YYYYMMDDHHmmss. */
const JST_OFFSET_MS = 9 * 3600_000;

export function todayJst(now = new Date()): string {
  return new Date(now.getTime() + JST_OFFSET_MS).toISOString().slice(0, 10).replace(/-/g, '');
}

export function timestampJst(now = new Date()): string {
  return new Date(now.getTime() + JST_OFFSET_MS).toISOString().slice(0, 19).replace(/[-T:]/g, '');
}

/**
 * A user-authentication certificate stays usable for the check until 3 months after it expired
 * (with a warning to renew); after that the patient uses the 資格確認書.
 */
export function certificateGraceEnd(validTo: Date): Date {
  const end = new Date(validTo.getTime());
  end.setUTCMonth(end.getUTCMonth() + 3);
  return end;
}
