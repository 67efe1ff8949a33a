/**
 * The IPsec line as a service: loads the connection and its credentials into charon over VICI,
 * initiates the CHILD_SA, follows ike/child updown and rekey events, reads counters with list-sas,
 * and emits 'state' on every change with strongSwan's account of it. It owns reconnection: the
 * connection is loaded with dpd_action = clear and close_action = none, and a CHILD_SA that goes
 * down is initiated again with backoff, so charon never races the gateway with a second SA.
 * After charon restarts (the VICI socket comes back) everything is loaded again.
 */
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { fullJitter, type BackoffOptions } from '../../core/backoff.js';
import { OnshiError } from '../../core/errors.js';
import type { IpsecLineConfig } from './config.js';
import {
  childRekeyOf,
  childStateOf,
  ikeStateOf,
  type SaSnapshot,
  snapshotOf,
  type TunnelState,
  updownOf,
} from './sa-state.js';
import { assertSuccess, ViciClient } from './vici/client.js';
import type { ViciInput, ViciMessage } from './vici/codec.js';

export const LINE_EVENTS = ['ike-updown', 'child-updown', 'ike-rekey', 'child-rekey'] as const;

export interface IpsecLineEvents {
  /** every change of ike/child state (not counter updates); `reason` says why */
  state: [state: TunnelState];
  /** a load or initiate that failed (the service keeps trying) */
  error: [error: OnshiError];
}

export interface IpsecLineOptions {
  /** counters are read this often while up (default 10 s) */
  pollMs?: number;
  /** re-initiate backoff (default 1 s .. 10 s: an IKE_SA_INIT costs the peer little, a clinic waits) */
  retry?: BackoffOptions;
  /** how long one initiate may take (default 15 s) */
  initiateTimeoutMs?: number;
  now?: () => Date;
  client?: ViciClient;
}

const secs = (n: number): string => `${n}s`;

/** The load-conn message for a line config (credentials go separately, see loadCredentials). */
export function connMessage(cfg: IpsecLineConfig, caPem?: string, certPem?: string): ViciInput {
  const pubkey = cfg.auth.kind === 'pubkey';
  return {
    [cfg.name]: {
      version: 2,
      ...(cfg.local ? { local_addrs: [cfg.local] } : {}),
      remote_addrs: [cfg.peer],
      proposals: cfg.proposals,
      dpd_delay: secs(cfg.dpdDelaySeconds),
      rekey_time: secs(cfg.ikeRekeySeconds),
      // One tunnel to one peer: replace a stale SA of ours instead of keeping two.
      unique: 'replace',
      local: { auth: pubkey ? 'pubkey' : 'psk', id: cfg.localId, ...(certPem ? { certs: [certPem] } : {}) },
      remote: { auth: pubkey ? 'pubkey' : 'psk', id: cfg.remoteId, ...(caPem ? { cacerts: [caPem] } : {}) },
      children: {
        [cfg.name]: {
          local_ts: cfg.localTs,
          remote_ts: cfg.remoteTs,
          esp_proposals: cfg.espProposals,
          rekey_time: secs(cfg.childRekeySeconds),
          dpd_action: 'clear',
          close_action: 'none',
          start_action: 'none',
        },
      },
    },
  };
}

export class IpsecLine extends EventEmitter<IpsecLineEvents> {
  readonly client: ViciClient;
  private readonly now: () => Date;
  private readonly pollMs: number;
  private readonly retry: BackoffOptions;
  private readonly initiateTimeoutMs: number;
  private current: TunnelState;
  /** counters of CHILD_SAs rekeyed away, so totals keep rising across rekeys */
  private carried = { bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0 };
  private running = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private initiating: Promise<void> | undefined;
  /** charon's uniqueid of the CHILD_SA in use: a down for another one (rekeyed away, a duplicate) is not ours */
  private childId: string | undefined;

  constructor(
    private readonly cfg: IpsecLineConfig,
    opts: IpsecLineOptions = {},
  ) {
    super();
    this.now = opts.now ?? (() => new Date());
    this.pollMs = opts.pollMs ?? 10_000;
    this.retry = opts.retry ?? { baseMs: 1000, capMs: 10_000 };
    this.initiateTimeoutMs = opts.initiateTimeoutMs ?? 15_000;
    this.client = opts.client ?? new ViciClient({ socket: cfg.vici });
    this.current = this.blank('not started');
    this.client.on('event', (name, message) => this.onEvent(name, message));
    this.client.on('connected', () => void this.bringUp());
    this.client.on('disconnected', (e) => {
      if (this.running) this.change({ ike: 'down', child: 'down' }, `charon unreachable: ${e.message}`);
    });
  }

  state(): TunnelState {
    return { ...this.current };
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.client.subscribe(LINE_EVENTS);
    await this.client.start();
    this.pollTimer = setInterval(() => void this.refresh().catch(() => undefined), this.pollMs);
    this.pollTimer.unref();
  }

  /** Stops following the line; the tunnel itself is left to charon (terminate() takes it down). */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.retryTimer);
    clearInterval(this.pollTimer);
    await this.initiating?.catch(() => undefined);
    await this.client.stop();
  }

  /** Takes the tunnel down from our side (the admin's "disconnect"; tests). */
  async terminate(): Promise<void> {
    assertSuccess(
      'terminate',
      await this.client.request('terminate', { ike: this.cfg.name, timeout: 5000 }, { timeoutMs: 10_000 }),
    );
  }

  /**
   * Drops our IKE SA without waiting for the peer (`force`) and initiates afresh: for a tunnel that
   * charon still holds as installed while nothing crosses it (the peer forgot it during an outer
   * outage, and MOBIKE path probing would take half a minute to give up).
   */
  async reestablish(reason: string): Promise<void> {
    if (!this.running || !this.client.isConnected) return;
    this.attempt = 0;
    await this.client
      .request('terminate', { ike: this.cfg.name, force: 'yes', timeout: 0 }, { timeoutMs: 5000 })
      .catch((e: unknown) => this.fail(e));
    this.change({ ike: 'down', child: 'down' }, reason);
    this.scheduleInitiate(0);
  }

  /** Reads our SA with list-sas and updates the counters (and the states, if an event was missed). */
  async refresh(): Promise<TunnelState> {
    const { events } = await this.client.stream('list-sas', 'list-sa', { ike: this.cfg.name, noblock: 'yes' });
    this.apply(snapshotOf(events, this.cfg.name, this.cfg.name));
    return this.state();
  }

  // ---------------------------------------------------------------------------------------------

  private blank(reason: string): TunnelState {
    return {
      ike: 'down',
      child: 'down',
      since: this.now().toISOString(),
      rekeys: 0,
      bytesIn: 0,
      bytesOut: 0,
      packetsIn: 0,
      packetsOut: 0,
      reason,
    };
  }

  /** After every (re)connect to charon: credentials, the connection, then the CHILD_SA. */
  private async bringUp(): Promise<void> {
    try {
      await this.loadCredentials();
      assertSuccess('load-conn', await this.client.request('load-conn', connMessage(this.cfg, ...(await this.pems()))));
      await this.refresh();
      if (this.current.child !== 'installed') this.scheduleInitiate(0);
    } catch (e) {
      this.fail(e);
    }
  }

  private async pems(): Promise<[string?, string?]> {
    const a = this.cfg.auth;
    if (a.kind !== 'pubkey') return [];
    return [await this.readSecretFile(a.caFile), await this.readSecretFile(a.certFile)];
  }

  private async readSecretFile(path: string): Promise<string> {
    try {
      return await readFile(path, 'utf8');
    } catch (e) {
      throw new OnshiError('LINE_CREDENTIAL_UNREADABLE', `cannot read the line credential ${path}`, {
        details: { path, errno: (e as NodeJS.ErrnoException).code },
      });
    }
  }

  private async loadCredentials(): Promise<void> {
    const a = this.cfg.auth;
    if (a.kind === 'pubkey') {
      assertSuccess(
        'load-key',
        await this.client.request('load-key', { type: 'any', data: await this.readSecretFile(a.keyFile) }),
      );
      return;
    }
    const secret = (await this.readSecretFile(a.pskFile)).trim();
    assertSuccess(
      'load-shared',
      await this.client.request('load-shared', {
        id: `${this.cfg.name}-psk`,
        type: 'IKE',
        data: secret,
        owners: [this.cfg.localId, this.cfg.remoteId],
      }),
    );
  }

  private scheduleInitiate(delayMs: number): void {
    if (!this.running || this.initiating) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.initiating = this.initiate().then((again) => {
        this.initiating = undefined;
        // Scheduled only now: while `initiating` is set, scheduleInitiate refuses (one at a time).
        if (again && this.current.child !== 'installed')
          this.scheduleInitiate(Math.max(200, fullJitter(this.attempt++, this.retry)));
      });
    }, delayMs);
  }

  /** One initiate; true when it failed and another try is due. */
  private async initiate(): Promise<boolean> {
    if (!this.running || !this.client.isConnected) return false;
    if (this.current.ike === 'down') this.change({ ike: 'connecting' }, 'initiating');
    try {
      assertSuccess(
        'initiate',
        await this.client.request(
          'initiate',
          { child: this.cfg.name, ike: this.cfg.name, timeout: this.initiateTimeoutMs, 'init-limits': 'no' },
          { timeoutMs: this.initiateTimeoutMs + 5000 },
        ),
      );
      this.attempt = 0;
      await this.refresh();
      return false;
    } catch (e) {
      this.fail(e);
      return this.running;
    }
  }

  private fail(e: unknown): void {
    const err = e instanceof OnshiError ? e : new OnshiError('LINE_IPSEC_FAILED', (e as Error).message);
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private onEvent(name: string, message: ViciMessage): void {
    const { name: conn } = this.cfg;
    if (name === 'ike-updown' || name === 'child-updown') {
      const ev = updownOf(name, message, conn, conn);
      if (!ev) return;
      if (ev.kind === 'ike') {
        if (ev.up) this.change({ ike: 'established' }, ev.reason);
        else this.change({ ike: 'down', child: 'down' }, ev.reason);
      } else if (ev.up) {
        this.childId = ev.counters?.uniqueId;
        this.change({ ike: 'established', child: 'installed' }, ev.reason, true);
      } else {
        const id = ev.counters?.uniqueId;
        if (this.childId !== undefined && id !== undefined && id !== this.childId) return;
        // Its last counters stay in the totals; the next CHILD_SA starts from 0.
        this.carry(ev.counters);
        this.change({ child: 'down' }, ev.reason, true);
      }
      if (this.current.child === 'down') this.scheduleInitiate(Math.max(200, fullJitter(this.attempt++, this.retry)));
      void this.refresh().catch(() => undefined);
      return;
    }
    if (name === 'ike-rekey' && message[conn] !== undefined) {
      this.current = { ...this.current, rekeys: this.current.rekeys + 1 };
      return;
    }
    if (name === 'child-rekey') {
      const rekey = childRekeyOf(message, conn, conn);
      if (rekey === null) return;
      this.carry(rekey.old);
      this.childId = rekey.new.uniqueId;
      this.current = { ...this.current, rekeys: this.current.rekeys + 1 };
      void this.refresh().catch(() => undefined);
    }
  }

  private apply(snap: SaSnapshot | undefined): void {
    // noblock skips an IKE_SA that is busy (being initiated, rekeyed): no snapshot is no news, and
    // downs arrive as events (or as the VICI connection closing) anyway.
    if (!snap) return;
    if (snap.child?.state === 'INSTALLED' && snap.child.uniqueId) this.childId = snap.child.uniqueId;
    const ike = ikeStateOf(snap?.ikeState);
    const child = childStateOf(snap?.child?.state);
    const c = snap?.child;
    const at = this.now().getTime();
    this.current = {
      ...this.current,
      bytesIn: this.carried.bytesIn + (c?.bytesIn ?? 0),
      bytesOut: this.carried.bytesOut + (c?.bytesOut ?? 0),
      packetsIn: this.carried.packetsIn + (c?.packetsIn ?? 0),
      packetsOut: this.carried.packetsOut + (c?.packetsOut ?? 0),
      ...(c?.useIn !== undefined ? { lastDpd: new Date(at - c.useIn * 1000).toISOString() } : {}),
    };
    if (ike !== this.current.ike || child !== this.current.child)
      this.change({ ike, child }, `list-sas: IKE_SA ${snap.ikeState}, CHILD_SA ${c?.state ?? 'none'}`);
  }

  private change(to: Partial<Pick<TunnelState, 'ike' | 'child'>>, reason: string, childEdge = false): void {
    const next = { ...this.current, ...to };
    const childChanged = next.child !== this.current.child;
    const ikeChanged = next.ike !== this.current.ike;
    if (!childChanged && !ikeChanged && !childEdge) return;
    if (childChanged && next.child === 'installed') this.attempt = 0;
    this.current = { ...next, reason, ...(childChanged ? { since: this.now().toISOString() } : {}) };
    this.emit('state', this.state());
  }

  private carry(c: SaSnapshot['child'] | undefined): void {
    if (!c) return;
    this.carried = {
      bytesIn: this.carried.bytesIn + c.bytesIn,
      bytesOut: this.carried.bytesOut + c.bytesOut,
      packetsIn: this.carried.packetsIn + c.packetsIn,
      packetsOut: this.carried.packetsOut + c.packetsOut,
    };
  }
}
