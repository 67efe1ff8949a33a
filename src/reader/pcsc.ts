/**
 * Our PC/SC interface and its implementation over the `smartcard` N-API binding. Nothing else in
 * src/reader imports `smartcard`, so sessions and the manager run against fakes in unit tests.
 * Every method throws ReaderError only; native error strings are mapped here.
 */
import { ApduAllowlist } from './apdu.js';
import { ReaderError, type ReaderErrorCode } from './errors.js';

export type ShareMode = 'shared' | 'exclusive';

export interface ReaderSnapshot {
  name: string;
  /** Raw SCARD_STATE_* flags (without CHANGED), passed back to waitForChange. */
  state: number;
  present: boolean;
  atr?: Buffer;
}

export interface PcscCard {
  transmit(apdu: Buffer): Promise<Buffer>;
  /** Locks the card against other PC/SC clients until endTransaction. */
  beginTransaction(): Promise<void>;
  endTransaction(): Promise<void>;
  /** Present + ATR, or throws READER_CARD_REMOVED. */
  status(): { present: boolean; atr?: Buffer };
  /** 'reset' drops any verified PIN state on the card. Never throws. */
  disconnect(disposition?: 'leave' | 'reset'): Promise<void>;
}

export interface PcscContext {
  listReaders(): ReaderSnapshot[];
  connect(readerName: string, mode: ShareMode): Promise<PcscCard>;
  /** Resolves with fresh snapshots on a change, 'timeout', or 'cancelled'. */
  waitForChange(current: ReaderSnapshot[], timeoutMs: number): Promise<ReaderSnapshot[] | 'timeout' | 'cancelled'>;
  cancel(): void;
  close(): void;
}

export interface PcscBackend {
  /** Opens a PC/SC context; throws READER_PCSC_UNAVAILABLE when pcscd is not there. */
  establish(): Promise<PcscContext>;
}

/**
 * The card behind the JPKI allowlist (apdu.ts): an APDU outside it is refused with
 * READER_APDU_REFUSED before it reaches `card` (pcscd, or a test's fake). Both the production
 * backend and the manager put every card they hand out behind it.
 */
export function allowlistedCard(card: PcscCard): PcscCard {
  const allow = new ApduAllowlist();
  return {
    async transmit(apdu: Buffer): Promise<Buffer> {
      allow.check(apdu);
      let response: Buffer | undefined;
      try {
        response = await card.transmit(apdu);
        return response;
      } finally {
        allow.answered(apdu, response);
      }
    },
    beginTransaction: () => card.beginTransaction(),
    endTransaction: () => card.endTransaction(),
    status: () => card.status(),
    disconnect: (disposition) => card.disconnect(disposition),
  };
}

type Op = 'context' | 'connect' | 'card';

/** What the counter is told for each PC/SC failure: our words, never the driver's text. */
const PCSC_MESSAGES: Partial<Record<ReaderErrorCode, string>> = {
  READER_PCSC_UNAVAILABLE: 'The PC/SC service (pcscd) is not available',
  READER_NO_CARD: 'There is no card in the reader',
  READER_CARD_REMOVED: 'The card was removed during the check',
  READER_CARD_RESET: 'The card was reset by another application during the check; try again',
  READER_NO_READER: 'The card reader is not available',
  READER_BUSY: 'Another application is using the card',
  READER_TIMEOUT: 'The card reader did not answer in time',
  READER_IO: 'The card reader reported an error; try again',
};

/**
 * Maps the binding's error strings (pcsc_errors.h) to our codes, with our own message. The
 * driver's text stays in `cause` (for the log), never in the message or details a client sees.
 */
export function mapPcscError(e: unknown, op: Op): ReaderError {
  if (e instanceof ReaderError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const m = msg.toLowerCase();
  let code: ReaderErrorCode = 'READER_IO';
  if (/service not running|service not available|service stopped|no service/.test(m)) code = 'READER_PCSC_UNAVAILABLE';
  else if (/card was removed|no smart card present|card is unpowered/.test(m))
    code = op === 'connect' ? 'READER_NO_CARD' : 'READER_CARD_REMOVED';
  // SCARD_W_RESET_CARD: the card is still there; someone reset it under this connection.
  else if (/card was reset/.test(m)) code = 'READER_CARD_RESET';
  else if (/unknown reader|reader unavailable|no readers available/.test(m))
    code = op === 'card' ? 'READER_CARD_REMOVED' : 'READER_NO_READER';
  else if (/sharing violation/.test(m)) code = 'READER_BUSY';
  else if (/timed out/.test(m)) code = 'READER_TIMEOUT';
  else if (/invalid handle|communication error|context is not valid/.test(m))
    code = op === 'card' ? 'READER_CARD_REMOVED' : 'READER_PCSC_UNAVAILABLE';
  else if (/card is not connected/.test(m)) code = 'READER_CARD_REMOVED';
  else if (/unresponsive|transaction failed/.test(m)) code = op === 'card' ? 'READER_CARD_REMOVED' : 'READER_IO';
  return new ReaderError(code, PCSC_MESSAGES[code] ?? PCSC_MESSAGES.READER_IO!, { cause: e, details: { op } });
}

// The binding's own types, narrowed to what we use (kept local so the rest of src/reader never sees them).
interface NativeCard {
  transmit(cmd: Buffer, opts?: { maxRecvLength?: number }): Promise<Buffer>;
  getStatus(): { state: number; protocol: number; atr: Buffer };
  disconnect(disposition?: number): void;
  reconnect(shareMode?: number, protocol?: number, init?: number): Promise<number>;
}
interface NativeReader {
  readonly name: string;
  readonly state: number;
  readonly atr: Buffer | null;
  connect(share?: number, proto?: number): Promise<NativeCard>;
}
interface NativeContext {
  listReaders(): NativeReader[];
  waitForChange(
    readers?: Array<{ name: string; state: number }>,
    timeout?: number,
  ): Promise<Array<{ name: string; state: number; changed: boolean; atr: Buffer | null }> | null>;
  cancel(): void;
  close(): void;
}
interface NativeModule {
  Context: new () => NativeContext;
  SCARD_SHARE_SHARED: number;
  SCARD_SHARE_EXCLUSIVE: number;
  SCARD_PROTOCOL_T0: number;
  SCARD_PROTOCOL_T1: number;
  SCARD_LEAVE_CARD: number;
  SCARD_RESET_CARD: number;
  SCARD_STATE_PRESENT: number;
  SCARD_STATE_CHANGED: number;
  SCARD_STATE_MUTE: number;
}

let nativePromise: Promise<NativeModule> | undefined;
async function loadNative(): Promise<NativeModule> {
  nativePromise ??= import('smartcard').then(
    (m) => (m as unknown as { default?: NativeModule }).default ?? (m as unknown as NativeModule),
  );
  try {
    return await nativePromise;
  } catch (e) {
    nativePromise = undefined;
    throw new ReaderError(
      'READER_PCSC_UNAVAILABLE',
      'The PC/SC binding could not be loaded (is libpcsclite installed?)',
      { cause: e },
    );
  }
}

class SmartcardCard implements PcscCard {
  private inTransaction = false;
  constructor(
    private readonly n: NativeModule,
    private readonly card: NativeCard,
    private readonly mode: ShareMode,
  ) {}

  async transmit(apdu: Buffer): Promise<Buffer> {
    try {
      return await this.card.transmit(apdu, { maxRecvLength: 258 });
    } catch (e) {
      throw mapPcscError(e, 'card');
    }
  }

  // The binding has no SCardBeginTransaction; SCardReconnect to exclusive mode (LEAVE_CARD, so the
  // card is neither reset nor powered down) gives the same guarantee: no other client can send an
  // APDU between our SELECT, VERIFY and SIGN.
  async beginTransaction(): Promise<void> {
    if (this.mode === 'exclusive' || this.inTransaction) {
      this.inTransaction = true;
      return;
    }
    try {
      await this.card.reconnect(
        this.n.SCARD_SHARE_EXCLUSIVE,
        this.n.SCARD_PROTOCOL_T0 | this.n.SCARD_PROTOCOL_T1,
        this.n.SCARD_LEAVE_CARD,
      );
      this.inTransaction = true;
    } catch (e) {
      throw mapPcscError(e, 'card');
    }
  }

  async endTransaction(): Promise<void> {
    if (!this.inTransaction) return;
    this.inTransaction = false;
    if (this.mode === 'exclusive') return;
    try {
      await this.card.reconnect(
        this.n.SCARD_SHARE_SHARED,
        this.n.SCARD_PROTOCOL_T0 | this.n.SCARD_PROTOCOL_T1,
        this.n.SCARD_LEAVE_CARD,
      );
    } catch (e) {
      throw mapPcscError(e, 'card');
    }
  }

  status(): { present: boolean; atr?: Buffer } {
    try {
      const s = this.card.getStatus();
      return { present: (s.state & this.n.SCARD_STATE_PRESENT) !== 0 || s.atr.length > 0, atr: s.atr };
    } catch (e) {
      throw mapPcscError(e, 'card');
    }
  }

  // SCardDisconnect is synchronous in the binding: with RESET_CARD it would block the event loop
  // for the whole card reset (and deadlock against an in-process virtual card). So the reset goes
  // through the asynchronous SCardReconnect, and the final disconnect leaves the card alone.
  async disconnect(disposition: 'leave' | 'reset' = 'leave'): Promise<void> {
    if (disposition === 'reset') {
      try {
        await this.card.reconnect(
          this.n.SCARD_SHARE_SHARED,
          this.n.SCARD_PROTOCOL_T0 | this.n.SCARD_PROTOCOL_T1,
          this.n.SCARD_RESET_CARD,
        );
      } catch {
        // Card pulled or pcscd gone: there is no state left to reset.
      }
    }
    try {
      this.card.disconnect(this.n.SCARD_LEAVE_CARD);
    } catch {
      // Already gone (card pulled, pcscd restarted): nothing left to release.
    }
  }
}

class SmartcardContext implements PcscContext {
  constructor(
    private readonly n: NativeModule,
    private readonly ctx: NativeContext,
  ) {}

  private snap(name: string, state: number, atr: Buffer | null): ReaderSnapshot {
    const clean = state & ~this.n.SCARD_STATE_CHANGED;
    const present = (state & this.n.SCARD_STATE_PRESENT) !== 0 && (state & this.n.SCARD_STATE_MUTE) === 0;
    return atr && atr.length > 0 && present ? { name, state: clean, present, atr } : { name, state: clean, present };
  }

  listReaders(): ReaderSnapshot[] {
    try {
      return this.ctx.listReaders().map((r) => this.snap(r.name, r.state, r.atr));
    } catch (e) {
      throw mapPcscError(e, 'context');
    }
  }

  async connect(readerName: string, mode: ShareMode): Promise<PcscCard> {
    let readers: NativeReader[];
    try {
      readers = this.ctx.listReaders();
    } catch (e) {
      throw mapPcscError(e, 'context');
    }
    const r = readers.find((x) => x.name === readerName);
    if (!r)
      throw new ReaderError('READER_NO_READER', `Reader not found: ${readerName}`, { details: { reader: readerName } });
    try {
      const share = mode === 'exclusive' ? this.n.SCARD_SHARE_EXCLUSIVE : this.n.SCARD_SHARE_SHARED;
      const card = await r.connect(share, this.n.SCARD_PROTOCOL_T0 | this.n.SCARD_PROTOCOL_T1);
      return allowlistedCard(new SmartcardCard(this.n, card, mode));
    } catch (e) {
      throw mapPcscError(e, 'connect');
    }
  }

  async waitForChange(
    current: ReaderSnapshot[],
    timeoutMs: number,
  ): Promise<ReaderSnapshot[] | 'timeout' | 'cancelled'> {
    if (current.length === 0) {
      // Nothing to watch: SCardGetStatusChange would need the PnP pseudo-reader, which some
      // pcsc-lite versions answer at once (a busy loop). A plain sleep is enough to re-list.
      await new Promise((r) => setTimeout(r, timeoutMs));
      return 'timeout';
    }
    try {
      const res = await this.ctx.waitForChange(
        current.map((r) => ({ name: r.name, state: r.state })),
        timeoutMs,
      );
      if (res === null) return 'cancelled';
      if (res.length === 0) return 'timeout';
      return res.map((r) => this.snap(r.name, r.state, r.atr));
    } catch (e) {
      const err = mapPcscError(e, 'context');
      if (err.code === 'READER_TIMEOUT') return 'timeout';
      if (/cancel/i.test(e instanceof Error ? e.message : String(e))) return 'cancelled';
      throw err;
    }
  }

  cancel(): void {
    try {
      this.ctx.cancel();
    } catch {
      /* context already invalid */
    }
  }
  close(): void {
    try {
      this.ctx.close();
    } catch {
      /* already closed */
    }
  }
}

/** The production backend over the `smartcard` binding (loaded lazily). */
export function smartcardBackend(): PcscBackend {
  return {
    async establish(): Promise<PcscContext> {
      const n = await loadNative();
      let ctx: NativeContext;
      try {
        ctx = new n.Context();
      } catch (e) {
        const err = mapPcscError(e, 'context');
        throw err.code === 'READER_IO' ? new ReaderError('READER_PCSC_UNAVAILABLE', err.message, { cause: e }) : err;
      }
      return new SmartcardContext(n, ctx);
    },
  };
}
