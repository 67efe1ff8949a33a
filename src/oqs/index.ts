/** The OQS domain and wire format. Pure: no I/O. */
export type * from './types.js';
export * from './errors.js';
export * from './codes.js';
export * from './identifiers.js';
export * from './xml.js';
export * from './messages.js';
