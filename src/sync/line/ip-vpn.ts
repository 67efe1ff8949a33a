/**
 * IP-VPN mode: the carrier's router owns the tunnel, so the gateway checks the path to central hop
 * by hop (DNS where central is named, the route and its interface, the next hop's neighbour state,
 * the TLS handshake) and says which hop fails. Parsing of `ip -j` output is pure and apart from the
 * I/O; the handshake never logs in (no request is sent, so central spends no authentication).
 */
import { execFile } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { OnshiError } from '../../core/errors.js';

export type HopName = 'dns' | 'route' | 'next-hop' | 'tls';
export interface HopResult {
  hop: HopName;
  ok: boolean;
  detail: string;
}
export interface PathCheck {
  ok: boolean;
  /** the first hop that failed */
  failing?: HopName;
  hops: HopResult[];
}

export interface RouteInfo {
  dev: string;
  gateway?: string;
  src?: string;
  /** the route's own MTU metric, when set (strongSwan's clamp on routes into the tunnel) */
  mtu?: number;
}

/** `ip -j route get ADDR` → the interface, next hop and source address. */
export function parseRouteGet(json: string): RouteInfo {
  let rows: unknown;
  try {
    rows = JSON.parse(json);
  } catch {
    throw new OnshiError('LINE_ROUTE_UNPARSEABLE', 'ip route get printed no JSON');
  }
  const r = Array.isArray(rows) ? (rows[0] as Record<string, unknown> | undefined) : undefined;
  if (!r || typeof r['dev'] !== 'string') throw new OnshiError('LINE_ROUTE_UNPARSEABLE', 'ip route get gave no route');
  const metrics = Array.isArray(r['metrics']) ? (r['metrics'][0] as Record<string, unknown> | undefined) : undefined;
  return {
    dev: r['dev'],
    ...(typeof r['gateway'] === 'string' ? { gateway: r['gateway'] } : {}),
    ...(typeof r['prefsrc'] === 'string' ? { src: r['prefsrc'] } : {}),
    ...(typeof metrics?.['mtu'] === 'number' ? { mtu: metrics['mtu'] } : {}),
  };
}

/** Neighbour states that mean "seen recently or being checked", as opposed to FAILED/INCOMPLETE. */
const USABLE = new Set(['REACHABLE', 'STALE', 'DELAY', 'PROBE', 'PERMANENT', 'NOARP']);

/** `ip -j neigh show ADDR dev DEV` → the neighbour's states (empty when unknown). */
export function parseNeighbour(json: string, addr: string): { states: string[]; usable: boolean } {
  let rows: unknown;
  try {
    rows = JSON.parse(json);
  } catch {
    return { states: [], usable: false };
  }
  const row = Array.isArray(rows) ? (rows as Record<string, unknown>[]).find((x) => x['dst'] === addr) : undefined;
  const states = Array.isArray(row?.['state']) ? (row['state'] as unknown[]).map(String) : [];
  return { states, usable: states.some((s) => USABLE.has(s)) };
}

/** The hops in order and the first failure; hops after a failure are not tried. */
export function summarize(hops: HopResult[]): PathCheck {
  const bad = hops.find((h) => !h.ok);
  return { ok: bad === undefined, hops, ...(bad ? { failing: bad.hop } : {}) };
}

const ip = (args: string[]): Promise<string> =>
  new Promise((resolve, reject) =>
    execFile('ip', args, { timeout: 5000 }, (err, out, stderr) =>
      err ? reject(new Error(stderr.trim() || err.message)) : resolve(out),
    ),
  );

/** The route the kernel picks for `addr` (`ip -j route get`). */
export async function routeTo(addr: string): Promise<RouteInfo> {
  return parseRouteGet(await ip(['-j', 'route', 'get', addr]));
}

/** Checks the path to central's URL. `tls` holds the client certificate options as the central client uses them. */
export async function checkIpVpnPath(
  centralUrl: string,
  tls: ConnectionOptions = {},
  timeoutMs = 5000,
): Promise<PathCheck> {
  const url = new URL(centralUrl);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const hops: HopResult[] = [];
  let addr = host;
  if (!isIP(host)) {
    try {
      addr = (await lookup(host)).address;
      hops.push({ hop: 'dns', ok: true, detail: `${host} → ${addr}` });
    } catch (e) {
      hops.push({
        hop: 'dns',
        ok: false,
        detail: `${host}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      });
      return summarize(hops);
    }
  }
  let route: RouteInfo;
  try {
    route = await routeTo(addr);
    hops.push({
      hop: 'route',
      ok: true,
      detail: `via ${route.gateway ?? 'a direct link'} on ${route.dev}${route.src ? ` from ${route.src}` : ''}`,
    });
  } catch (e) {
    hops.push({ hop: 'route', ok: false, detail: `no route to ${addr}: ${(e as Error).message}` });
    return summarize(hops);
  }
  const neighbour = route.gateway ?? addr;
  const n = parseNeighbour(await ip(['-j', 'neigh', 'show', neighbour, 'dev', route.dev]).catch(() => '[]'), neighbour);
  // An unknown neighbour is not yet a failure: the TLS handshake below makes the kernel resolve it.
  hops.push({
    hop: 'next-hop',
    ok: n.usable || n.states.length === 0,
    detail: `${neighbour} on ${route.dev}: ${n.states.join(',') || 'not in the neighbour table yet'}`,
  });
  if (!hops.at(-1)!.ok) return summarize(hops);
  hops.push(await tlsHandshake(host, Number(url.port || 443), tls, timeoutMs));
  return summarize(hops);
}

/**
 * One TLS handshake with central, our client certificate offered, closed without a request: what the
 * link probe and the path check use, so neither costs central a login.
 */
export function tlsHandshake(
  host: string,
  port: number,
  opts: ConnectionOptions,
  timeoutMs: number,
): Promise<HopResult & { code?: string }> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host, port, ...(isIP(host) ? {} : { servername: host }), ...opts });
    const done = (r: HopResult & { code?: string }): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(
      () => done({ hop: 'tls', ok: false, detail: `no handshake within ${timeoutMs} ms`, code: 'ETIMEDOUT' }),
      Math.max(0, timeoutMs),
    );
    s.once('secureConnect', () =>
      s.authorized
        ? done({ hop: 'tls', ok: true, detail: `${s.getProtocol() ?? 'TLS'} with ${host}:${port}` })
        : done({ hop: 'tls', ok: false, detail: String(s.authorizationError), code: 'ERR_TLS_CERT' }),
    );
    s.once('error', (e: NodeJS.ErrnoException) =>
      done({ hop: 'tls', ok: false, detail: e.code ?? e.message, code: e.code ?? e.message }),
    );
  });
}
