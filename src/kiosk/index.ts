/** The patient kiosk (docs/kiosk.md): what the daemon wires in. */
export { KioskDesk, type KioskCheckRow, type FaceWait } from './desk.js';
export { KioskFlows, type Screen } from './flow.js';
export { KioskPairing, PAIRING_TTL_MS } from './pairing.js';
export { KioskServer, KIOSK_COOKIE, type KioskServerOptions } from './server.js';
