/** The OQS domain and wire format. Pure: no I/O. */
export type * from './types.js';
export * from './errors.js';
export * from './codes.js';
export * from './identifiers.js';
export * from './xml.js';
// messages.ts also exports its tree reader and block codecs for batch.ts: only the codecs are API.
export {
  requestToTree,
  requestFromTree,
  responseToTree,
  responseFromTree,
  encodeRequestXml,
  decodeRequestXml,
  encodeResponseXml,
  decodeResponseXml,
  toJsonForm,
  fromJsonForm,
  encodeRequestJson,
  decodeRequestJson,
  encodeResponseJson,
  decodeResponseJson,
} from './messages.js';
export * from './batch.js';
export * from './advice.js';
export * from './file-exchange.js';
