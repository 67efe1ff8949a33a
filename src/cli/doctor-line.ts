/**
 * `onshi doctor`'s line checks, hop by hop: in ipsec mode the IKE SA and the CHILD SA as charon
 * reports them over VICI; in both modes DNS, the route to central (through the tunnel in ipsec
 * mode) and its next hop; then the path MTU: a ping at the route's MTU with DF set and a small one,
 * which tells an MTU black hole (big lost, small through) from a dead path — through the tunnel to
 * central, and in ipsec mode on the outer line to the IKE peer, where a black hole hides behind the
 * tunnel's route clamp (scripts/install.sh). TLS to central and the clock follow in doctor.ts. The verdicts are pure; the probes are thin I/O around them.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { lookup } from 'node:dns/promises';
import { isIP, isIPv6 } from 'node:net';
import type { GatewayConfig } from '../core/config.js';
import { checkIpVpnPath, type PathCheck, routeTo } from '../sync/line/ip-vpn.js';
import { childStateOf, ikeStateOf, type SaSnapshot, snapshotOf } from '../sync/line/sa-state.js';
import { ViciClient } from '../sync/line/vici/client.js';
import type { DoctorCheck } from './doctor-check.js';

/** The IKE SA and CHILD SA checks from charon's list-sas (undefined: no SA of ours). */
export function saChecks(snap: SaSnapshot | undefined, name: string): DoctorCheck[] {
  const ike = ikeStateOf(snap?.ikeState);
  const child = childStateOf(snap?.child?.state);
  const ikeOk = ike === 'established' || ike === 'rekeying';
  const childOk = child === 'installed' || child === 'rekeying';
  return [
    ikeOk
      ? { name: 'IKE SA', status: 'ok', detail: `${name}: ${snap?.ikeState}` }
      : {
          name: 'IKE SA',
          status: 'fail',
          detail: snap ? `${name}: ${snap.ikeState}` : `no IKE SA named ${name}`,
          fix: 'the tunnel is not up: is the gateway running (it initiates it)? check the peer address, identities and certificates in line.*, and `journalctl -u strongswan`',
        },
    childOk
      ? {
          name: 'CHILD SA',
          status: 'ok',
          detail: `${name}: ${snap?.child?.state}, ${snap?.child?.packetsIn ?? 0} packets in / ${snap?.child?.packetsOut ?? 0} out`,
        }
      : {
          name: 'CHILD SA',
          status: 'fail',
          detail: snap?.child ? `${name}: ${snap.child.state}` : `no CHILD SA named ${name}`,
          fix: ikeOk
            ? 'IKE is up but no CHILD SA: check line.localTs/remoteTs and espProposals against the peer'
            : 'comes up after the IKE SA',
        },
  ];
}

/** The path MTU from two pings: at the tunnel's MTU with DF set, and a small one. */
export function mtuVerdict(big: boolean, small: boolean, size: number, addr: string): DoctorCheck {
  const name = 'path MTU';
  if (big) return { name, status: 'ok', detail: `${size}-byte packets with DF reach ${addr}` };
  if (small)
    return {
      name,
      status: 'fail',
      detail: `small packets reach ${addr}, ${size}-byte ones with DF are lost: an MTU black hole`,
      fix: 'something on the line drops large packets without saying so (ICMP "fragmentation needed" filtered): lower the MTU of the tunnel or the outer link, or ask the line provider to pass ICMP',
    };
  return {
    name,
    status: 'warn',
    detail: `no ping reached ${addr} at ${size} bytes nor small (a dead path, or central does not answer ping)`,
    fix: 'if TLS to central below fails too, the path is dead; if it works, central only filters ping',
  };
}

/**
 * The outer line's MTU from two pings to the IKE peer. A black hole there is a warning, not a
 * failure, while the tunnel's own probe passes: the route clamp keeps TCP under it.
 */
export function lineMtuVerdict(
  big: boolean,
  small: boolean,
  size: number,
  peer: string,
  tunnel: DoctorCheck | undefined,
): DoctorCheck {
  const name = 'line MTU';
  if (big) return { name, status: 'ok', detail: `${size}-byte packets with DF reach the IKE peer ${peer}` };
  if (!small)
    return { name, status: 'skip', detail: `the IKE peer ${peer} does not answer ping (many filter it): not judged` };
  const detail = `small packets reach the IKE peer ${peer}, ${size}-byte ones with DF are lost: an MTU black hole on the line`;
  return tunnel?.status === 'ok'
    ? {
        name,
        status: 'warn',
        detail: `${detail}; the tunnel's routes are clamped (${tunnel.detail}), so checks get through`,
        fix: 'ask the line provider to pass ICMP "fragmentation needed" or raise the path MTU; keep the clamp in /etc/strongswan.d/onshi-gateway.conf',
      }
    : {
        name,
        status: 'fail',
        detail,
        fix: 'lower the MTU of the routes into the tunnel (kernel-netlink mtu/mss in /etc/strongswan.d/onshi-gateway.conf) below the line\'s, or ask the line provider to pass ICMP "fragmentation needed"',
      };
}

/**
 * ICMP payload for a packet of `mtu` bytes: minus the IP and ICMP headers. An IP packet holds at
 * most 65,535 bytes, whatever the device says (loopback's MTU is 65,536).
 */
export const pingSize = (mtu: number, v6: boolean): number => Math.min(mtu, 65_535) - (v6 ? 48 : 28);

export interface LineDoctorOptions {
  /** tests: instead of charon's list-sas */
  listSa?: () => Promise<SaSnapshot | undefined>;
  /** tests: instead of checkIpVpnPath */
  checkPath?: (url: string) => Promise<PathCheck>;
  /** tests: instead of `ping` (true when an answer came; undefined when ping cannot run here) */
  ping?: (addr: string, size: number) => Promise<boolean | undefined>;
  /** tests: the MTU a packet to `addr` gets (the route's MTU metric, else its device's) */
  pathMtu?: (addr: string) => Promise<number | undefined>;
}

export async function lineChecks(cfg: GatewayConfig, o: LineDoctorOptions = {}): Promise<DoctorCheck[]> {
  const out: DoctorCheck[] = [];
  const l = cfg.line;
  if (l.mode === 'ipsec') {
    try {
      out.push(...saChecks(await (o.listSa ?? (() => listSa(l.vici, l.name)))(), l.name));
    } catch (e) {
      out.push({
        name: 'IKE SA',
        status: 'fail',
        detail: `cannot ask charon at ${l.vici}: ${(e as Error).message}`,
        fix: 'is strongSwan running (systemctl status strongswan) and may the gateway user use its VICI socket (the group)?',
      });
    }
  }
  // DNS, the route (through the tunnel in ipsec mode) and the next hop; TLS is doctor.ts's own check.
  const path = await (o.checkPath ?? ((url) => checkIpVpnPath(url, {}, 3000)))(cfg.central.url);
  const via = l.mode === 'ipsec' ? ' through the tunnel' : '';
  for (const h of path.hops.filter((x) => x.hop !== 'tls')) {
    out.push({
      name: h.hop === 'route' ? `route${via}` : h.hop,
      status: h.ok ? 'ok' : 'fail',
      detail: h.detail,
      ...(h.ok
        ? {}
        : {
            fix:
              h.hop === 'dns'
                ? "central's name does not resolve: check the DNS server the line provider gave"
                : h.hop === 'route'
                  ? l.mode === 'ipsec'
                    ? 'no route to central: the CHILD SA installs it (see above)'
                    : "no route to central: check the carrier router's address and the static route"
                  : "the next hop does not answer ARP: is the carrier's router on and cabled?",
          }),
    });
  }
  const host = new URL(cfg.central.url).hostname.replace(/^\[|\]$/g, '');
  if (!path.hops.every((h) => h.hop === 'tls' || h.ok)) return out;
  const probe = async (addr: string | undefined) => {
    const mtu = addr ? await (o.pathMtu ?? routeMtu)(addr).catch(() => undefined) : undefined;
    if (!addr || !mtu) return undefined;
    const ping = o.ping ?? pingDf;
    const big = await ping(addr, pingSize(mtu, isIPv6(addr)));
    const small = big === true || (await ping(addr, 56));
    return big === undefined || small === undefined ? ('no ping' as const) : { addr, mtu, big, small };
  };
  const noPing = (name: string): DoctorCheck => ({
    name,
    status: 'skip',
    detail: 'ping is not installed (apt-get install iputils-ping)',
  });
  const t = await probe(await addressOf(host));
  const tunnel = t === 'no ping' ? noPing('path MTU') : t && mtuVerdict(t.big, t.small, t.mtu, t.addr);
  if (tunnel) out.push(tunnel);
  if (l.mode === 'ipsec' && l.peer) {
    const p = await probe(await addressOf(l.peer));
    if (p) out.push(p === 'no ping' ? noPing('line MTU') : lineMtuVerdict(p.big, p.small, p.mtu, p.addr, tunnel));
  }
  return out;
}

async function listSa(vici: string, name: string): Promise<SaSnapshot | undefined> {
  const client = new ViciClient({ socket: vici, timeoutMs: 3000 });
  await client.start();
  try {
    await client.whenConnected(3000);
    const { events } = await client.stream('list-sas', 'list-sa', { ike: name, noblock: 'yes' });
    return snapshotOf(events, name, name);
  } finally {
    await client.stop();
  }
}

const addressOf = async (host: string): Promise<string | undefined> =>
  isIP(host) ? host : (await lookup(host).catch(() => undefined))?.address;

/** What a packet to `addr` may weigh: the route's MTU metric if it has one, else its device's MTU. */
async function routeMtu(addr: string): Promise<number> {
  const r = await routeTo(addr);
  return r.mtu ?? Number((await readFile(`/sys/class/net/${r.dev}/mtu`, 'utf8')).trim());
}

/** One ping with DF set (`-M do`): true when an answer came within a second; undefined without ping. */
function pingDf(addr: string, size: number): Promise<boolean | undefined> {
  return new Promise((resolve) =>
    execFile('ping', ['-M', 'do', '-s', String(size), '-c', '1', '-W', '1', addr], { timeout: 3000 }, (err) =>
      resolve(err && (err as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : !err),
    ),
  );
}
