/**
 * The `line` section of the config: how this box reaches central. `ip-vpn`: the carrier's router
 * owns the tunnel and the gateway checks the path hop by hop. `ipsec`: the gateway drives strongSwan
 * through VICI. Secrets are never in the config: certificate, key and PSK are *file paths*, normally
 * systemd credentials ($CREDENTIALS_DIRECTORY/…). The lead folds LINE_CONFIG_SCHEMA into the config
 * schema (src/core/config.ts); this module has no other dependency on it.
 */

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

export const LINE_DEFAULTS = {
  mode: 'ip-vpn',
  vici: 'unix:///var/run/charon.vici',
  name: 'oqs',
  proposals: ['aes256-sha256-modp2048'],
  espProposals: ['aes256-sha256'],
  dpdDelaySeconds: 10,
  ikeRekeySeconds: 14_400,
  childRekeySeconds: 3_600,
} as const;

const stringList = { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 } as const;
const seconds = (min: number, def: number, description: string) =>
  ({ type: 'integer', minimum: min, maximum: 86_400 * 7, default: def, description }) as const;

/** A JSON Schema fragment (draft 2020-12 / Ajv) for `line`. */
export const LINE_CONFIG_SCHEMA = {
  type: 'object',
  description: 'How this box reaches central: the carrier IP-VPN router, or IPsec+IKE driven through strongSwan',
  properties: {
    mode: { enum: ['ip-vpn', 'ipsec'], default: LINE_DEFAULTS.mode },
    vici: { type: 'string', pattern: '^unix://', default: LINE_DEFAULTS.vici, description: "charon's VICI socket" },
    name: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,32}$', default: LINE_DEFAULTS.name },
    peer: { type: 'string', minLength: 1, description: "the OQS connection service's IKE address or name" },
    local: { type: 'string', minLength: 1, description: 'our outer address (default: any)' },
    localId: { type: 'string', minLength: 1, description: 'our IKE identity' },
    remoteId: { type: 'string', minLength: 1, description: "the peer's IKE identity" },
    proposals: { ...stringList, default: LINE_DEFAULTS.proposals },
    espProposals: { ...stringList, default: LINE_DEFAULTS.espProposals },
    dpdDelaySeconds: seconds(1, LINE_DEFAULTS.dpdDelaySeconds, 'dead peer detection interval'),
    ikeRekeySeconds: seconds(60, LINE_DEFAULTS.ikeRekeySeconds, 'IKE_SA rekey time'),
    childRekeySeconds: seconds(1, LINE_DEFAULTS.childRekeySeconds, 'CHILD_SA rekey time'),
    localTs: { ...stringList, description: "our side's traffic selectors (CIDR)" },
    remoteTs: { ...stringList, description: "central's networks (CIDR)" },
    auth: {
      oneOf: [
        {
          type: 'object',
          properties: {
            kind: { const: 'pubkey' },
            certFile: { type: 'string', minLength: 1 },
            keyFile: { type: 'string', minLength: 1 },
            caFile: { type: 'string', minLength: 1 },
          },
          required: ['kind', 'certFile', 'keyFile', 'caFile'],
          additionalProperties: false,
        },
        {
          type: 'object',
          properties: { kind: { const: 'psk' }, pskFile: { type: 'string', minLength: 1 } },
          required: ['kind', 'pskFile'],
          additionalProperties: false,
        },
      ],
      description: 'file paths only (systemd credentials); never a secret in the config',
    },
  },
  required: ['mode'],
  // ipsec needs its peer, identities, selectors and credentials (an if/then without the `then` key)
  anyOf: [
    { properties: { mode: { const: 'ip-vpn' } } },
    { required: ['peer', 'localId', 'remoteId', 'localTs', 'remoteTs', 'auth'] },
  ],
  additionalProperties: false,
} as const;
