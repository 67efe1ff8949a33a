/** The IPsec lab for tests: a lab or, without its prerequisites, a skip (a failure under CI). */
import type { Test } from 'tap';
import { IpsecLab, type IpsecLabOptions, ipsecLabPrerequisites } from '../../src/sim/line/ipsec/index.js';
import type { IpsecLineConfig } from '../../src/sync/line/config.js';

/** A lab torn down with the test; undefined (the test skipped, or failed under CI) when it cannot run here. */
export async function ipsecLab(t: Test, opts: IpsecLabOptions = {}): Promise<IpsecLab | undefined> {
  const missing = await ipsecLabPrerequisites();
  if (missing) {
    if (process.env.CI) t.fail(`the IPsec lab cannot run: ${missing}`);
    else t.plan(0, `the IPsec lab cannot run here: ${missing}`);
    return undefined;
  }
  const lab = await IpsecLab.create(opts);
  t.teardown(() => lab.close());
  return lab;
}

/** The clinic side of a lab as the gateway's line config. */
export function clinicLineConfig(lab: IpsecLab, over: Partial<IpsecLineConfig> = {}): IpsecLineConfig {
  return {
    mode: 'ipsec',
    vici: lab.clinic.viciUri,
    name: 'oqs',
    peer: lab.central.outer,
    local: lab.clinic.outer,
    localId: lab.clinic.id,
    remoteId: lab.central.id,
    proposals: ['aes256-sha256-modp2048'],
    espProposals: ['aes256-sha256'],
    dpdDelaySeconds: lab.dpdDelaySeconds,
    ikeRekeySeconds: 14_400,
    childRekeySeconds: 3600,
    localTs: [`${lab.clinic.inner}/32`],
    remoteTs: [`${lab.central.inner}/32`],
    auth: { kind: 'pubkey', certFile: lab.clinic.certFile, keyFile: lab.clinic.keyFile, caFile: lab.caFile },
    ...over,
  };
}

/** Resolves with the first value for which `pick` returns something, or rejects after `ms`. */
export function until<T>(what: string, ms: number, poll: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = async (): Promise<void> => {
      try {
        const v = await poll();
        if (v !== undefined) return resolve(v);
      } catch {
        /* try again */
      }
      if (Date.now() > end) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(() => void tick(), 100);
    };
    void tick();
  });
}
