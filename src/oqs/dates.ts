/** OQS dates and timestamps are Japan time (JST, UTC+9, no DST): YYYYMMDD and YYYYMMDDHHmmss. */
const JST_OFFSET_MS = 9 * 3600_000;

export function todayJst(now = new Date()): string {
  return new Date(now.getTime() + JST_OFFSET_MS).toISOString().slice(0, 10).replace(/-/g, '');
}

export function timestampJst(now = new Date()): string {
  return new Date(now.getTime() + JST_OFFSET_MS).toISOString().slice(0, 19).replace(/[-T:]/g, '');
}
