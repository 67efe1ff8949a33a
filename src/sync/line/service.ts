/**
 * The line as the daemon sees it, in either mode: in ipsec mode the IpsecLine service (strongSwan
 * over VICI) and the tunnel's up/down edges with strongSwan's reason; in both modes the path check
 * that names the failing hop when the link probe fails. What it learns feeds the LinkMonitor
 * (daemon/check-parts.ts), the status, the metrics, the events, the audit and the admin page.
 */
import { EventEmitter } from 'node:events';
import type { ConnectionOptions } from 'node:tls';
import type { Service } from '../../core/service.js';
import { ipsecLineConfig, type LineMode, type LineSettings } from './config.js';
import { checkIpVpnPath, type HopResult, type PathCheck } from './ip-vpn.js';
import { IpsecLine } from './ipsec.js';
import type { TunnelState } from './sa-state.js';
import type { LinkMonitor } from '../link.js';

/** The tunnel's figures as the status shows them: strongSwan's state, and whether it carries traffic. */
export type TunnelView = TunnelState & { up: boolean };

/** One up or down of the tunnel, for the admin page's history. */
export interface TunnelChange {
  at: string;
  up: boolean;
  reason: string;
}

export interface LineReport {
  mode: LineMode;
  /** the first hop that failed at the last check (ipsec: ike-sa / child-sa while the tunnel is down) */
  failingHop?: string;
  /** the hops of the last path check, when one ran */
  hops?: HopResult[];
  checkedAt?: string;
  tunnel?: TunnelView;
}

export interface LineServiceEvents {
  /** the tunnel came up or went down (not every counter or state change) */
  tunnel: [change: TunnelChange, state: TunnelState];
  /** a path check finished */
  path: [check: PathCheck];
}

/** The parts of IpsecLine the service uses (a fake in unit tests). */
export type TunnelSource = Pick<IpsecLine, 'state' | 'start' | 'stop' | 'on' | 'reestablish'>;

export interface LineServiceOptions {
  settings: LineSettings;
  centralUrl: string;
  /** the TLS options of the central client (the path check's handshake uses them) */
  tls: ConnectionOptions;
  /** tests: the tunnel source instead of a real IpsecLine */
  tunnel?: TunnelSource;
  /** tests: the path check */
  checkPath?: (url: string, tls: ConnectionOptions) => Promise<PathCheck>;
  historySize?: number;
  /** tests: the clock */
  now?: () => number;
}

/**
 * While probes keep failing and nothing changed (no success, no tunnel edge), the path check that
 * a failed probe runs — two `ip` processes and a TLS handshake — runs again at most this often;
 * the report keeps the last one's hops and time meanwhile.
 */
export const PATH_RECHECK_MS = 60_000;

/** A CHILD_SA being rekeyed still carries traffic. */
export const tunnelUp = (s: Pick<TunnelState, 'child'>): boolean => s.child === 'installed' || s.child === 'rekeying';

export class LineService extends EventEmitter<LineServiceEvents> implements Service {
  readonly name = 'line';
  readonly mode: LineMode;
  readonly tunnel: TunnelSource | undefined;
  private last: PathCheck | undefined;
  private checkedAt: Date | undefined;
  private checking: Promise<PathCheck> | undefined;
  private up: boolean | undefined;
  private readonly changes: TunnelChange[] = [];
  /** since when link probes have failed while charon holds the tunnel as installed */
  private failingSince: number | undefined;
  private reestablishedAt = 0;
  /** when a failed probe last ran the path check; undefined after a success or a tunnel edge */
  private pathCheckedOnFailureAt: number | undefined;

  constructor(private readonly o: LineServiceOptions) {
    super();
    this.mode = o.settings.mode;
    // ipsec settings are checked here, at construction: a missing one stops the start before anything runs
    this.tunnel = this.mode === 'ipsec' ? (o.tunnel ?? new IpsecLine(ipsecLineConfig(o.settings))) : undefined;
    this.tunnel?.on('state', (s) => this.onTunnel(s));
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  async start(): Promise<void> {
    await this.tunnel?.start();
  }

  async stop(): Promise<void> {
    await this.checking?.catch(() => undefined);
    await this.tunnel?.stop();
  }

  /** Whether the tunnel carries traffic; undefined in ip-vpn mode (the carrier's router owns it). */
  get tunnelIsUp(): boolean | undefined {
    return this.tunnel ? tunnelUp(this.tunnel.state()) : undefined;
  }

  /** The last ups and downs of the tunnel, oldest first. */
  history(): TunnelChange[] {
    return [...this.changes];
  }

  /**
   * Lets the tunnel drive the link: down at once when the CHILD_SA goes (before any request fails),
   * and a probe when it is back (whose success closes the breaker, and the relay replays). A tunnel
   * not up when this is called (the start) marks the link down until it comes up.
   */
  drive(link: Pick<LinkMonitor, 'lineUp' | 'lineDown'>): void {
    if (!this.tunnel) return;
    this.on('tunnel', (c) => (c.up ? link.lineUp(c.reason) : link.lineDown(c.reason)));
    const now = this.tunnel.state();
    if (!tunnelUp(now)) link.lineDown(now.reason ?? 'the tunnel is not up yet');
  }

  /**
   * The link probe as the monitor runs it: a success clears the last failed path check; a failure
   * runs the path check (to name the failing hop; again only after PATH_RECHECK_MS while nothing
   * changed) and still fails.
   */
  guardProbe(probe: (deadline: number) => Promise<void>): (deadline: number) => Promise<void> {
    return async (deadline) => {
      try {
        await probe(deadline);
        this.pathOk();
        this.failingSince = undefined;
        this.pathCheckedOnFailureAt = undefined;
      } catch (e) {
        const now = this.now();
        if (this.pathCheckedOnFailureAt === undefined || now - this.pathCheckedOnFailureAt >= PATH_RECHECK_MS) {
          this.pathCheckedOnFailureAt = now;
          void this.checkPath().catch(() => undefined);
        }
        this.unstickTunnel();
        throw e;
      }
    };
  }

  /**
   * How long probes may fail through an installed tunnel before it counts as dead: twice the DPD
   * delay, at least 10 s (a slow central is not a dead tunnel).
   */
  get zombieAfterMs(): number {
    return Math.max(10_000, 2000 * this.o.settings.dpdDelaySeconds);
  }

  /**
   * Probes keep failing while charon says the CHILD_SA is installed: after an outer outage the peer
   * may have dropped the SA while ours waits on MOBIKE path probing (~30 s in strongSwan 5.9). The
   * gateway re-establishes it instead of waiting, at most once per zombieAfterMs.
   */
  private unstickTunnel(): void {
    const t = this.tunnel;
    if (!t || !tunnelUp(t.state())) {
      this.failingSince = undefined;
      return;
    }
    const now = this.now();
    this.failingSince ??= now;
    const after = this.zombieAfterMs;
    if (now - this.failingSince < after || now - this.reestablishedAt < after) return;
    this.reestablishedAt = now;
    this.failingSince = undefined;
    void t.reestablish(`central unreachable through the installed tunnel for ${Math.round(after / 1000)} s`);
  }

  /** Checks the path to central hop by hop (one check at a time; callers share a running one). */
  checkPath(): Promise<PathCheck> {
    this.checking ??= (this.o.checkPath ?? checkIpVpnPath)(this.o.centralUrl, this.o.tls)
      .then((c) => {
        this.last = c;
        this.checkedAt = new Date();
        this.emit('path', c);
        return c;
      })
      .finally(() => {
        this.checking = undefined;
      });
    return this.checking;
  }

  /** The link probe succeeded: the path works, whatever the last check said. */
  pathOk(): void {
    if (this.last && !this.last.ok) this.last = undefined;
  }

  report(): LineReport {
    const t = this.tunnel?.state();
    const failingHop = t && !tunnelUp(t) ? (t.ike === 'established' ? 'child-sa' : 'ike-sa') : this.last?.failing;
    return {
      mode: this.mode,
      ...(failingHop ? { failingHop } : {}),
      ...(this.last ? { hops: this.last.hops } : {}),
      ...(this.checkedAt ? { checkedAt: this.checkedAt.toISOString() } : {}),
      ...(t ? { tunnel: viewOf(t) } : {}),
    };
  }

  private onTunnel(s: TunnelState): void {
    const up = tunnelUp(s);
    // The first state counts as an edge: a tunnel that is not up at start marks the link down.
    if (up === this.up) return;
    this.up = up;
    this.pathCheckedOnFailureAt = undefined; // the next failed probe looks at the path afresh
    const change = { at: new Date().toISOString(), up, reason: s.reason ?? (up ? 'CHILD_SA installed' : 'down') };
    this.changes.push(change);
    if (this.changes.length > (this.o.historySize ?? 50)) this.changes.shift();
    this.emit('tunnel', change, s);
  }
}

function viewOf(t: TunnelState): TunnelView {
  return { ...t, up: tunnelUp(t) };
}
