/**
 * The `line` section of the config: how this box reaches central. `ip-vpn`: the carrier's router
 * owns the tunnel and the gateway checks the path hop by hop. `ipsec`: the gateway drives strongSwan
 * through VICI. Secrets are never in the config: certificate, key and PSK are *file paths*, normally
 * systemd credentials ($CREDENTIALS_DIRECTORY/…). The settings are defined with the rest of the config
 * (src/core/config.ts, `line`); this module turns them into what the IPsec line service takes.
 */
import type { ConfigErrorCode, GatewayConfig } from '../../core/config.js';
import { OnshiError } from '../../core/errors.js';

export type LineMode = 'ip-vpn' | 'ipsec';

export type IpsecAuth =
  /** certificate authentication: our certificate and key, and the CA that signs the peer's */
  | { kind: 'pubkey'; certFile: string; keyFile: string; caFile: string }
  /** a pre-shared key read from a file (whitespace at the ends is dropped) */
  | { kind: 'psk'; pskFile: string };

export interface IpsecLineConfig {
  mode: 'ipsec';
  /** charon's VICI socket (`unix://PATH`) */
  vici: string;
  /** the connection's and CHILD_SA's name in charon */
  name: string;
  /** the peer's (the OQS connection service's) IKE address or name */
  peer: string;
  /** our outer address; omitted = any */
  local?: string;
  localId: string;
  remoteId: string;
  /** IKE proposals, strongSwan syntax (e.g. aes256-sha256-modp2048) */
  proposals: string[];
  /** ESP proposals */
  espProposals: string[];
  dpdDelaySeconds: number;
  ikeRekeySeconds: number;
  childRekeySeconds: number;
  /** traffic selectors: our side (the gateway's inner address) and central's networks */
  localTs: string[];
  remoteTs: string[];
  auth: IpsecAuth;
}

export interface IpVpnLineConfig {
  mode: 'ip-vpn';
}

export type LineConfig = IpsecLineConfig | IpVpnLineConfig;

/** The `line` section as the config file holds it (src/core/config.ts: flat, every setting defaulted). */
export type LineSettings = GatewayConfig['line'];

const REQUIRED = ['peer', 'localId', 'remoteId', 'localTs', 'remoteTs'] as const;
const REQUIRED_AUTH = { pubkey: ['certFile', 'keyFile', 'caFile'], psk: ['pskFile'] } as const;

/**
 * The IPsec line's settings, checked for what ipsec mode needs (the schema cannot say "required
 * when mode is ipsec" and keep every setting defaulted for the environment overrides).
 * CONFIG_INVALID names every missing setting.
 */
export function ipsecLineConfig(l: LineSettings): IpsecLineConfig {
  const a = l.auth;
  const missing = [
    ...REQUIRED.filter((k) => l[k].length === 0),
    ...REQUIRED_AUTH[a.kind].filter((k) => a[k] === '').map((k) => `auth.${k}`),
  ];
  if (missing.length > 0) {
    const problems = missing.map((k) => `line.${k} is required when line.mode is ipsec`);
    throw new OnshiError<ConfigErrorCode>('CONFIG_INVALID', `invalid configuration: ${problems.join('; ')}`, {
      details: { problems },
    });
  }
  return {
    mode: 'ipsec',
    vici: l.vici,
    name: l.name,
    peer: l.peer,
    ...(l.local ? { local: l.local } : {}),
    localId: l.localId,
    remoteId: l.remoteId,
    proposals: l.proposals,
    espProposals: l.espProposals,
    dpdDelaySeconds: l.dpdDelaySeconds,
    ikeRekeySeconds: l.ikeRekeySeconds,
    childRekeySeconds: l.childRekeySeconds,
    localTs: l.localTs,
    remoteTs: l.remoteTs,
    auth:
      a.kind === 'pubkey'
        ? { kind: 'pubkey', certFile: a.certFile, keyFile: a.keyFile, caFile: a.caFile }
        : { kind: 'psk', pskFile: a.pskFile },
  };
}
