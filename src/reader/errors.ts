/**
 * Typed reader/card errors. Codes are stable: the gateway maps them to WebSocket error events.
 * Details never carry a PIN or card content, only counters and status words.
 */
import { OnshiError } from '../core/errors.js';

export const READER_ERROR_CODES = [
  'READER_NO_READER',
  'READER_NO_CARD',
  'READER_CARD_REMOVED',
  'READER_CARD_RESET',
  'READER_PCSC_UNAVAILABLE',
  'READER_TIMEOUT',
  'READER_BUSY',
  'READER_ABORTED',
  'READER_IO',
  'READER_APDU_REFUSED',
  'CARD_NOT_JPKI',
  'CARD_FILE_NOT_FOUND',
  'CARD_SECURITY_STATUS',
  'CARD_PIN_WRONG',
  'CARD_PIN_BLOCKED',
  'CARD_PIN_FORMAT',
  'CARD_PIN_CONFIRM_REQUIRED',
  'CARD_CONDITIONS_NOT_SATISFIED',
  'CARD_NO_CURRENT_EF',
  'CARD_COMMAND_NOT_ALLOWED',
  'CARD_REFERENCE_NOT_FOUND',
  'CARD_WRONG_PARAMETERS',
  'CARD_WRONG_LENGTH',
  'CARD_OFFSET_OUT_OF_RANGE',
  'CARD_INS_NOT_SUPPORTED',
  'CARD_CLA_NOT_SUPPORTED',
  'CARD_CHANNEL_NOT_SUPPORTED',
  'CARD_SM_NOT_SUPPORTED',
  'CARD_BAD_RESPONSE',
  'CARD_BAD_CERTIFICATE',
  'CARD_UNEXPECTED_SW',
] as const;
export type ReaderErrorCode = (typeof READER_ERROR_CODES)[number];

/** Transient conditions a caller may retry (after user action or a short wait). */
const RETRYABLE: ReadonlySet<ReaderErrorCode> = new Set<ReaderErrorCode>([
  'READER_NO_READER',
  'READER_NO_CARD',
  'READER_CARD_REMOVED',
  'READER_CARD_RESET',
  'READER_PCSC_UNAVAILABLE',
  'READER_TIMEOUT',
  'READER_BUSY',
  'READER_IO',
]);

export class ReaderError extends OnshiError<ReaderErrorCode> {
  constructor(
    code: ReaderErrorCode,
    message: string,
    opts: { details?: Record<string, unknown>; cause?: unknown; retryable?: boolean } = {},
  ) {
    super(code, message, {
      retryable: opts.retryable ?? RETRYABLE.has(code),
      details: opts.details,
      cause: opts.cause,
    });
    this.name = 'ReaderError';
  }
}

export function isReaderError(e: unknown, code?: ReaderErrorCode): e is ReaderError {
  return e instanceof ReaderError && (code === undefined || e.code === code);
}

export function swHex(sw: number): string {
  return sw.toString(16).toUpperCase().padStart(4, '0');
}

/** What the command was, so that 6A82 after SELECT AP can say "not a My Number card". */
export type SwContext = 'select-ap' | 'select-ef' | 'read' | 'verify' | 'sign' | 'other';

/**
 * Maps a non-9000 status word to a ReaderError. Every SW of the JPKI spec's table is covered;
 * anything else becomes CARD_UNEXPECTED_SW with the raw SW in details.
 */
export function errorFromSw(sw: number, ctx: SwContext = 'other'): ReaderError {
  const d = { sw: swHex(sw), op: ctx };
  const sw1 = sw >> 8;
  if ((sw & 0xfff0) === 0x63c0) {
    const triesLeft = sw & 0x0f;
    return triesLeft === 0
      ? new ReaderError('CARD_PIN_BLOCKED', 'The PIN is blocked; it can only be reset at the municipal office', {
          details: { ...d, triesLeft: 0 },
        })
      : new ReaderError('CARD_PIN_WRONG', `Wrong PIN; ${triesLeft} tries left`, { details: { ...d, triesLeft } });
  }
  switch (sw) {
    case 0x6983:
    case 0x6984:
      return new ReaderError('CARD_PIN_BLOCKED', 'The PIN is blocked; it can only be reset at the municipal office', {
        details: { ...d, triesLeft: 0 },
      });
    case 0x6982:
      return new ReaderError('CARD_SECURITY_STATUS', 'Security status not satisfied (PIN not verified)', {
        details: d,
      });
    case 0x6985:
      return new ReaderError('CARD_CONDITIONS_NOT_SATISFIED', 'Conditions of use not satisfied', { details: d });
    case 0x6986:
      return new ReaderError('CARD_NO_CURRENT_EF', 'Command not allowed: no current EF', { details: d });
    case 0x6981:
      return new ReaderError('CARD_COMMAND_NOT_ALLOWED', 'Command incompatible with the file structure', {
        details: d,
      });
    case 0x6a88:
      return new ReaderError('CARD_REFERENCE_NOT_FOUND', 'Referenced data not found', { details: d });
    case 0x6a82:
      return ctx === 'select-ap'
        ? new ReaderError('CARD_NOT_JPKI', 'The card has no JPKI application (not a My Number card?)', { details: d })
        : new ReaderError('CARD_FILE_NOT_FOUND', 'File or application not found on the card', { details: d });
    case 0x6a86:
      return new ReaderError('CARD_WRONG_PARAMETERS', 'Wrong P1/P2', { details: d });
    case 0x6700:
      return new ReaderError('CARD_WRONG_LENGTH', 'Wrong length', { details: d });
    case 0x6b00:
      return new ReaderError('CARD_OFFSET_OUT_OF_RANGE', 'Offset beyond the end of the file', { details: d });
    case 0x6d00:
      return new ReaderError('CARD_INS_NOT_SUPPORTED', 'Instruction not supported by the card', { details: d });
    case 0x6e00:
      return new ReaderError('CARD_CLA_NOT_SUPPORTED', 'Class not supported by the card', { details: d });
    case 0x6881:
      return new ReaderError('CARD_CHANNEL_NOT_SUPPORTED', 'Logical channel not supported', { details: d });
    case 0x6882:
      return new ReaderError('CARD_SM_NOT_SUPPORTED', 'Secure messaging not supported', { details: d });
    default:
      // 61xx / 6Cxx (T=0 leftovers) and anything else: surface the raw SW.
      return new ReaderError(
        'CARD_UNEXPECTED_SW',
        `Unexpected status word ${swHex(sw)}${sw1 === 0x61 || sw1 === 0x6c ? ' (T=0 response not expected from this card)' : ''}`,
        { details: d },
      );
  }
}
