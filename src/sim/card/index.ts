export { VirtualCard, DEFAULT_ATR, VPCD_BASE_PORT } from './virtual-card.js';
export type { VirtualCardOptions, ApduLogEntry, ApduHook, ApduHookAction, VirtualCardState } from './virtual-card.js';
export {
  ensureCardProfiles,
  loadCardProfiles,
  readCounters,
  resetCounters,
  resolveProfile,
  PROFILE_NAMES,
  HOSTILE_PROFILES,
  HOSTILE_PROFILE_NAMES,
  FAKE_MY_NUMBER,
  AUTH_PIN_MAX,
  SIGN_PIN_MAX,
} from './profiles.js';
export type { CardProfileInfo, CardProfileMaterial, CardCounters } from './profiles.js';
export {
  CardModel,
  JPKI_AID_HEX,
  KENHOJO_AID_HEX,
  KENKAKU_AID_HEX,
  FORBIDDEN_AIDS_HEX,
  commandKind,
  spoil,
} from './model.js';
export type { CommandKind, HostileAction, HostileRule } from './model.js';
export { startCardControl, cardControlClient } from './control.js';
export type { CardControl, CardControlClient } from './control.js';
export { ensureQuickAck, CARD_LOOPBACK } from './quickack.js';
export type { QuickAckResult } from './quickack.js';
export { VpcdDeframer, frame, VPCD_CTRL } from './vpcd.js';
