export { ReaderManager } from './manager.js';
export type {
  ReaderManagerOptions,
  ReaderManagerStatus,
  ReaderInfo,
  SessionStats,
  WaitForCardOptions,
  WithSessionOptions,
  ReaderManagerEvents,
} from './manager.js';
export { CardSession } from './session.js';
export type { CardSessionOptions, AuthCertificate, AuthenticateResult, SessionCounters } from './session.js';
export { PinAttempt, runPinVerify } from './pin.js';
export type { PinOptions, PinIo, PinState, PinVerifyResult } from './pin.js';
export { allowlistedCard, smartcardBackend, mapPcscError } from './pcsc.js';
export type { PcscBackend, PcscContext, PcscCard, ReaderSnapshot, ShareMode } from './pcsc.js';
export { ReaderError, isReaderError, errorFromSw, swHex, READER_ERROR_CODES } from './errors.js';
export type { ReaderErrorCode, SwContext } from './errors.js';
export * as apdu from './apdu.js';
