/**
 * Loads @peculiar/x509 once, with Node's webcrypto as its provider. Shared by the production CRL
 * reader (sync/crl.ts) and the simulators' PKI.
 */
import { webcrypto } from 'node:crypto';
import type * as X509Types from '@peculiar/x509';

export type X509Module = typeof X509Types;

// @peculiar/x509 pulls in tsyringe, which refuses to load without a Reflect metadata API. The library
// only registers parameterless classes, so a minimal WeakMap-backed shim is enough and spares the
// project a runtime dependency. It is installed only when no real polyfill is present.
let x509Promise: Promise<typeof X509Types> | undefined;
export function loadX509(): Promise<typeof X509Types> {
  x509Promise ??= (async () => {
    installReflectShim();
    const mod = await import('@peculiar/x509');
    mod.cryptoProvider.set(webcrypto as unknown as Crypto);
    return mod;
  })();
  return x509Promise;
}

type MetaStore = WeakMap<object, Map<unknown, unknown>>;
function installReflectShim(): void {
  const r = Reflect as unknown as Record<string, unknown>;
  if (typeof r['getMetadata'] === 'function') return;
  const store: MetaStore = new WeakMap();
  const own = (target: object, create: boolean): Map<unknown, unknown> | undefined => {
    let m = store.get(target);
    if (!m && create) {
      m = new Map();
      store.set(target, m);
    }
    return m;
  };
  r['defineMetadata'] = (key: unknown, value: unknown, target: object) => {
    own(target, true)!.set(key, value);
  };
  r['getOwnMetadata'] = (key: unknown, target: object) => own(target, false)?.get(key);
  r['getMetadata'] = (key: unknown, target: object) => {
    for (let t: object | null = target; t; t = Object.getPrototypeOf(t) as object | null) {
      const m = own(t, false);
      if (m?.has(key)) return m.get(key);
    }
    return undefined;
  };
  r['hasMetadata'] = (key: unknown, target: object) =>
    (r['getMetadata'] as (k: unknown, t: object) => unknown)(key, target) !== undefined;
  r['metadata'] = (key: unknown, value: unknown) => (target: object) => {
    own(target, true)!.set(key, value);
  };
}

type Crypto = typeof globalThis extends { crypto: infer C } ? C : never;
