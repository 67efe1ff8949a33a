/**
 * The virtual My Number card as a vpcd client: pcscd's vpcd driver is the TCP server, the card
 * connects to it. Connecting = inserting the card, closing = pulling it out.
 */
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { CardModel } from './model.js';
import { VpcdDeframer, VPCD_CTRL, frame, type VpcdMessage } from './vpcd.js';
import {
  HOSTILE_PROFILE_NAMES,
  buildDfs,
  loadCardProfiles,
  readCounters,
  resetCounters,
  resolveProfile,
  writeCounters,
  type CardCounters,
  type CardProfileMaterial,
} from './profiles.js';
import { ensureQuickAck } from './quickack.js';

export const VPCD_BASE_PORT = 35963;
/** The contact ATR OpenSC's JPKI driver matches on (spec §2 "ATRs"). */
export const DEFAULT_ATR = Buffer.from('3BE000FF8131FE4514', 'hex');

export interface VirtualCardOptions {
  stateDir: string;
  profile: string;
  host?: string;
  /** vpcd port: 35963 for slot 0 ("Virtual PCD 00 00"), 35964 for slot 1. */
  port?: number;
  /** Use a quick-ACK loopback route when root (default true); see quickack.ts. */
  quickAck?: boolean;
  atr?: Buffer;
  /** SW for VERIFY on a blocked PIN: 6984 (default) or 6983. */
  blockedSw?: 0x6984 | 0x6983;
  /** Reconnect by itself when pcscd drops the connection (pcscd restart), as a card left in the reader would. Default true. */
  autoReconnect?: boolean;
  /** Reset the profile's retry counters to their initial values when the card is created. */
  resetCounters?: boolean;
}

export interface ApduLogEntry {
  ts: number;
  slot: number;
  profile: string;
  /** Command APDU, upper-case hex. VERIFY data is logged as-is: the card is fake, its PINs too. */
  command: string;
  /** Response data ‖ SW, upper-case hex; empty when the card was pulled or hung instead of answering. */
  response: string;
  sw: string;
  /** The command selected the 券面事項入力補助AP or the 券面事項確認AP. */
  forbidden: boolean;
  selectedDf?: string;
}

/** What to do with an incoming APDU, for fault-injection tests. */
export type ApduHookAction = 'remove' | 'hang' | 'remove-after' | undefined;
export type ApduHook = (apdu: Buffer, card: VirtualCard) => ApduHookAction;

export interface VirtualCardState {
  profile: string;
  inserted: boolean;
  authTriesLeft: number;
  signTriesLeft: number;
  slot: number;
}

export class VirtualCard extends EventEmitter {
  readonly apduLog: ApduLogEntry[] = [];
  readonly slot: number;
  private readonly opts: VirtualCardOptions;
  private readonly port: number;
  private host: string;
  private material!: CardProfileMaterial;
  private counters!: CardCounters;
  private model!: CardModel;
  private socket: Socket | undefined;
  private connected = false;
  private wantInserted = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private persist: Promise<void> = Promise.resolve();
  private hook: ApduHook | undefined;
  private closed = false;

  private constructor(opts: VirtualCardOptions, host: string) {
    super();
    this.opts = opts;
    this.port = opts.port ?? VPCD_BASE_PORT;
    this.slot = this.port - VPCD_BASE_PORT;
    this.host = host;
  }

  static async create(o: VirtualCardOptions): Promise<VirtualCard> {
    let host = o.host ?? '127.0.0.1';
    if (o.host === undefined && o.quickAck !== false) host = (await ensureQuickAck()).host;
    const card = new VirtualCard(o, host);
    await card.loadProfile(o.profile, o.resetCounters ?? false);
    return card;
  }

  get profile(): string {
    return this.material.name;
  }
  /** The profile's certificate, key and secrets (tests compare against them). */
  profileMaterial(): Readonly<CardProfileMaterial> {
    return this.material;
  }
  get connectHost(): string {
    return this.host;
  }

  /** Switches the profile; only while the card is out of the reader. */
  async setProfile(name: string, reset = false): Promise<void> {
    if (this.wantInserted) throw new Error('remove the card before changing its profile');
    await this.loadProfile(name, reset);
  }

  private async loadProfile(name: string, reset: boolean): Promise<void> {
    const all = await loadCardProfiles(this.opts.stateDir);
    const resolved = resolveProfile(all, name);
    if (!resolved)
      throw new Error(
        `unknown card profile ${name} (known: ${[...all.map((p) => p.name), ...HOSTILE_PROFILE_NAMES].join(', ')})`,
      );
    const m = resolved.material;
    this.material = m;
    this.counters = reset
      ? await resetCounters(this.opts.stateDir, name)
      : await readCounters(this.opts.stateDir, name);
    this.model = new CardModel({
      dfs: buildDfs(m, this.counters),
      blockedSw: this.opts.blockedSw ?? 0x6984,
      ...(resolved.hostile ? { hostile: resolved.hostile } : {}),
      onCounterChange: (df, fid, remaining) => {
        if (df !== 'jpki') return;
        if (fid === 0x0018) this.counters.authTriesLeft = remaining;
        else if (fid === 0x001b) this.counters.signTriesLeft = remaining;
        else return;
        this.persist = writeCounters(this.opts.stateDir, name, { ...this.counters });
      },
    });
  }

  /** Resets the retry counters of the current profile (in memory and on disk). */
  async resetCounters(): Promise<void> {
    await this.persist.catch(() => undefined);
    const was = this.wantInserted;
    if (was) throw new Error('remove the card before resetting its counters');
    await this.loadProfile(this.material.name, true);
  }

  /** Fault injection: decide per APDU whether to answer, hang, or be pulled out. */
  setHook(hook: ApduHook | undefined): void {
    this.hook = hook;
  }

  /** Pulls the card the next time an APDU matches. */
  removeOn(match: (apdu: Buffer) => boolean, when: 'before' | 'after' = 'before'): void {
    this.hook = (apdu) => {
      if (!match(apdu)) return undefined;
      this.hook = undefined;
      return when === 'before' ? 'remove' : 'remove-after';
    };
  }

  state(): VirtualCardState {
    return {
      profile: this.material.name,
      inserted: this.connected,
      authTriesLeft: this.counters.authTriesLeft,
      signTriesLeft: this.counters.signTriesLeft,
      slot: this.slot,
    };
  }

  forbiddenSelections(): ApduLogEntry[] {
    return this.apduLog.filter((e) => e.forbidden);
  }

  clearLog(): void {
    this.apduLog.length = 0;
  }

  /** Connects to vpcd; resolves once pcscd has polled the card (or shortly after connecting). */
  async insert(timeoutMs = 5000): Promise<void> {
    if (this.closed) throw new Error('card closed');
    this.wantInserted = true;
    if (this.connected) return;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await this.connectOnce(Math.max(200, deadline - Date.now()));
        return;
      } catch (e) {
        if (!this.wantInserted) throw new Error('insert cancelled');
        if (Date.now() + 200 >= deadline) {
          this.wantInserted = false;
          throw new Error(`cannot reach vpcd at ${this.host}:${this.port}: ${(e as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Closes the connection: pcscd sees the card removed at its next poll. */
  async remove(): Promise<void> {
    this.wantInserted = false;
    if (this.reconnectTimer) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
    }
    await this.dropSocket();
    await this.persist.catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.remove();
    this.removeAllListeners();
  }

  private dropSocket(): Promise<void> {
    const s = this.socket;
    if (!s || s.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      s.once('close', () => resolve());
      s.destroy();
    });
  }

  private connectOnce(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: this.host, port: this.port });
      s.setNoDelay(true);
      const deframer = new VpcdDeframer();
      let settled = false;
      let polled: NodeJS.Timeout | undefined;
      const timer = setTimeout(() => {
        if (!settled) {
          settled = true;
          s.destroy();
          reject(new Error('connect timeout'));
        }
      }, timeoutMs);
      const done = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (polled) clearTimeout(polled);
        resolve();
      };
      s.once('connect', () => {
        this.socket = s;
        this.connected = true;
        this.model.powerEvent();
        this.emit('inserted', this.slot);
        // pcscd normally polls within ~0.5 s; do not wait forever for it.
        polled = setTimeout(done, 1500);
      });
      s.on('data', (chunk: Buffer) => {
        for (const m of deframer.push(chunk)) {
          this.chain = this.chain
            .then(() => this.handle(s, m))
            .catch((e: unknown) => {
              this.emit('error', e);
            });
          if (m.type === 'control' && m.code === VPCD_CTRL.ATR) this.chain = this.chain.then(done);
        }
      });
      s.on('error', (e) => {
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          reject(e);
        }
      });
      s.on('close', () => {
        const was = this.socket === s && this.connected;
        if (this.socket === s) {
          this.socket = undefined;
          this.connected = false;
        }
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          reject(new Error('connection closed'));
        }
        if (was) {
          this.model.powerEvent(); // no power without the reader
          this.emit('removed', this.slot);
          this.scheduleReconnect();
        }
      });
    });
  }

  private scheduleReconnect(): void {
    if (!this.wantInserted || this.closed || this.opts.autoReconnect === false || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.wantInserted || this.connected) return;
      this.connectOnce(2000).catch(() => this.scheduleReconnect());
    }, 250);
  }

  private async handle(s: Socket, m: VpcdMessage): Promise<void> {
    if (s.destroyed) return;
    if (m.type === 'control') {
      if (m.code === VPCD_CTRL.ATR) s.write(frame(this.opts.atr ?? DEFAULT_ATR));
      else if (m.code === VPCD_CTRL.OFF || m.code === VPCD_CTRL.ON || m.code === VPCD_CTRL.RESET)
        this.model.powerEvent();
      this.emit('power', m.code);
      return;
    }
    const action = this.hook?.(m.apdu, this);
    const entry: ApduLogEntry = {
      ts: Date.now(),
      slot: this.slot,
      profile: this.material.name,
      command: m.apdu.toString('hex').toUpperCase(),
      response: '',
      sw: '',
      forbidden: false,
    };
    if (action === 'remove' || action === 'hang') {
      this.apduLog.push(entry);
      this.emit('apdu', entry);
      if (action === 'remove') {
        this.wantInserted = false;
        await this.dropSocket();
      }
      return;
    }
    const r = this.model.process(m.apdu);
    entry.response = r.response.toString('hex').toUpperCase();
    entry.sw = entry.response.slice(-4);
    entry.forbidden = r.forbidden;
    if (r.selectedDf) entry.selectedDf = r.selectedDf;
    this.apduLog.push(entry);
    this.emit('apdu', entry);
    // Like EEPROM on the real card: the counter is on disk before the answer leaves.
    await this.persist.catch((e: unknown) => this.emit('error', e));
    if (!s.destroyed) await new Promise<void>((resolve) => s.write(frame(r.response), () => resolve()));
    if (action === 'remove-after') {
      this.wantInserted = false;
      await this.dropSocket();
    }
  }
}
