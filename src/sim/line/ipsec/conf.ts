/**
 * The lab's strongSwan files, as text: one strongswan.conf per charon (its own VICI socket, its own
 * log, no reliance on the system's charon or /etc/swanctl) and a swanctl.conf for the central side.
 * Pure; the lab writes them.
 */

/**
 * Plugins the lab's charons load, and nothing else (load_modular would pull every plugin the system
 * has). kernel-libipsec does ESP in userspace over a TUN device, since the lab's kernel may have no
 * in-kernel ESP transforms; strongSwan 5.9.8 needs kdf besides for its PRF+ in that setup.
 */
export const LAB_PLUGINS = [
  'random',
  'nonce',
  'aes',
  'sha1',
  'sha2',
  'hmac',
  'kdf',
  'pem',
  'pkcs1',
  'pkcs8',
  'x509',
  'revocation',
  'constraints',
  'pubkey',
  'gmp',
  'curve25519',
  'kernel-libipsec',
  'kernel-netlink',
  'socket-default',
  'vici',
] as const;

/**
 * The clamp the installer writes for the gateway's charon (scripts/install.sh, install_ipsec_files):
 * routes into the tunnel carry MTU 1040 and advertise MSS 1000, so TCP through the tunnel fits a
 * path that silently drops packets over ~1130 bytes (ESP adds up to ~85). OQS messages are small,
 * so the cost is nil and an MTU black hole on the outer line no longer stalls TLS.
 */
export const ROUTE_CLAMP = { mtu: 1040, mss: 1000 } as const;

export function strongswanConf(o: { viciSocket: string; logFile: string; clamp?: boolean }): string {
  const clamp = o.clamp
    ? `    kernel-netlink {
      mtu = ${ROUTE_CLAMP.mtu}
      mss = ${ROUTE_CLAMP.mss}
    }
`
    : '';
  // charon-systemd reads its own section and falls back to `charon`; both point at the same text.
  const body = `  load = ${LAB_PLUGINS.join(' ')}
  # Short retransmits: the lab's faults should show within seconds, not charon's default minutes.
  retransmit_timeout = 1.0
  retransmit_tries = 3
  retransmit_base = 1.4
  filelog {
    lab {
      path = ${o.logFile}
      time_format = %T
      flush_line = yes
      default = 1
      ike = 2
      cfg = 2
    }
  }
  plugins {
    vici {
      socket = unix://${o.viciSocket}
    }
${clamp}  }
`;
  return `charon-systemd {\n${body}}\ncharon {\n${body}}\n`;
}

export interface LabConn {
  name: string;
  /** omitted: any of this side's addresses (the clinic's may change: see IpsecLab.readdressClinic) */
  localAddr?: string;
  /** `%any` for a responder that accepts a peer from wherever it comes */
  remoteAddr: string;
  localId: string;
  remoteId: string;
  /** file name inside swanctl/x509 */
  certFile: string;
  localTs: string;
  remoteTs: string;
  dpdDelay: number;
  childRekey: number;
}

/** One side's connection; the central side is a responder that accepts the clinic's certificate under the lab CA. */
export function swanctlConf(c: LabConn): string {
  return `connections {
  ${c.name} {
    version = 2
${c.localAddr ? `    local_addrs = ${c.localAddr}\n` : ''}    remote_addrs = ${c.remoteAddr}
    proposals = aes256-sha256-modp2048,aes128-sha256-x25519
    dpd_delay = ${c.dpdDelay}s
    local {
      auth = pubkey
      certs = ${c.certFile}
      id = ${c.localId}
    }
    remote {
      auth = pubkey
      id = ${c.remoteId}
    }
    children {
      ${c.name} {
        local_ts = ${c.localTs}
        remote_ts = ${c.remoteTs}
        esp_proposals = aes256-sha256,aes128-sha256
        rekey_time = ${c.childRekey}s
        dpd_action = clear
        start_action = none
      }
    }
  }
}
`;
}
