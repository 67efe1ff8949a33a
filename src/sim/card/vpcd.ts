/**
 * vpcd framing (spec/jpki-card.md §4): every message is a 2-byte big-endian length and a payload.
 * A 1-byte payload is a control byte (00 off, 01 on, 02 reset, 04 send ATR); anything longer is
 * a command APDU. TCP may split or merge frames, so incoming bytes are buffered and re-framed.
 */
export const VPCD_CTRL = { OFF: 0x00, ON: 0x01, RESET: 0x02, ATR: 0x04 } as const;

export type VpcdMessage = { type: 'control'; code: number } | { type: 'apdu'; apdu: Buffer };

export class VpcdDeframer {
  private buf: Buffer = Buffer.alloc(0);

  /** Feeds raw TCP bytes; returns every complete message, in order. */
  push(chunk: Buffer): VpcdMessage[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: VpcdMessage[] = [];
    while (this.buf.length >= 2) {
      const len = this.buf.readUInt16BE(0);
      if (this.buf.length < 2 + len) break;
      const payload = Buffer.from(this.buf.subarray(2, 2 + len));
      this.buf = this.buf.subarray(2 + len);
      if (len === 1) out.push({ type: 'control', code: payload[0]! });
      else if (len > 1) out.push({ type: 'apdu', apdu: payload });
      // A zero-length frame carries nothing: ignore it.
    }
    return out;
  }

  get pending(): number {
    return this.buf.length;
  }
}

export function frame(payload: Buffer): Buffer {
  if (payload.length > 0xffff) throw new RangeError('vpcd frame too large');
  const h = Buffer.alloc(2);
  h.writeUInt16BE(payload.length, 0);
  return Buffer.concat([h, payload]);
}
