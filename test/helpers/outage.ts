/**
 * Fault-injection harness: the central simulator behind the line fault proxy, a real gateway
 * (in-process) using a real SQLite file, and helpers to count what was acknowledged, what central
 * did, and how long detection and draining took.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CentralSim } from '../../src/sim/central/server.js';
import { peopleRows, type PeopleRow } from '../../src/sim/central/population.js';
import { FaultProxy, type LineMode } from '../../src/sim/line/index.js';
import { REVOKED_CARD_SERIAL } from '../../src/sim/pki.js';
import { ClientStore } from '../../src/api/tokens.js';
import { validateConfig, type GatewayConfig } from '../../src/core/config.js';
import { startGateway, type Gateway } from '../../src/daemon/index.js';
import { GatewayClient } from '../../src/client/index.js';
import type { InquiryResult } from '../../src/checks/result.js';
import { captureLogger } from './logger.js';
import { todayJst } from '../../src/oqs/dates.js';
import { DB_FILE } from '../../src/cache/index.js';
import { CentralClient } from '../../src/sync/central-client.js';
import { pkiFiles, sharedPki, waitFor } from './gateway.js';
import { stopwatch } from './timing.js';

export const queryOf = (r: Pick<PeopleRow, 'insurerNumber' | 'symbol' | 'number' | 'branch' | 'birthdate'>) => ({
  insurerNumber: r.insurerNumber,
  number: r.number,
  birthdate: r.birthdate,
  ...(r.symbol ? { symbol: r.symbol } : {}),
  ...(r.branch ? { branch: r.branch } : {}),
});

/** Fast-moving settings so a scenario takes seconds: the defaults (1 s … 30 s) are for clinics. */
export const FAST_OUTAGE = {
  offlineReserveMs: 500,
  probeTimeoutMs: 500,
  probeIntervalMs: 1000,
  backoffBaseMs: 50,
  backoffCapMs: 500,
  failureThreshold: 2,
} as const;

/** A gateway config for the outage tests, with FAST_OUTAGE (`patch` over it). */
export function outageConfig(
  stateDir: string,
  centralUrl: string,
  patch: Record<string, unknown> = {},
  reader: Record<string, unknown> = { enabled: false },
): GatewayConfig {
  const f = pkiFiles();
  return validateConfig({
    stateDir,
    log: { level: 'info' },
    api: { host: '127.0.0.1', port: 0, defaultDeadlineMs: 3000 },
    central: { url: centralUrl, caFile: f.caFile, certFile: f.certFile, keyFile: f.keyFile, timeoutMs: 2000 },
    reader: { jpkiCaFile: f.jpkiCaFile, ...reader },
    admin: { enabled: false },
    health: { enabled: false },
    outage: { ...FAST_OUTAGE, ...patch },
  });
}

export interface Answer {
  id: string;
  ms: number;
  deadlineMs: number;
  /** The deadline + 100 ms + 3 × the event-loop lag seen meanwhile (timing.ts): later than this is late. */
  allowedMs: number;
  result?: InquiryResult;
  error?: { code: string };
}

export class OutageHarness {
  readonly logs: string[] = [];
  client!: GatewayClient;
  gateway!: Gateway;
  private constructor(
    readonly central: CentralSim,
    readonly proxy: FaultProxy,
    readonly stateDir: string,
    readonly token: string,
    private readonly patch: Record<string, unknown>,
    private readonly reader?: Record<string, unknown>,
  ) {}

  /** `stateDir`: use this (e.g. a small tmpfs) instead of a fresh temporary directory. */
  static async start(
    patch: Record<string, unknown> = {},
    opts: { stateDir?: string; reader?: Record<string, unknown> } = {},
  ): Promise<OutageHarness> {
    const pki = await sharedPki();
    const central = await CentralSim.start({ pki, revokedSerials: [REVOKED_CARD_SERIAL] });
    const proxy = await FaultProxy.start({ targetHost: '127.0.0.1', targetPort: Number(new URL(central.url).port) });
    const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), 'onshi-fault-'));
    const { token } = new ClientStore(stateDir).add('fault-test');
    const h = new OutageHarness(central, proxy, stateDir, token, patch, opts.reader);
    await h.startGateway();
    return h;
  }

  /** A client of our own, straight to central (past the proxy), as another terminal would be. */
  static async centralClientFor(h: OutageHarness): Promise<CentralClient> {
    const pki = await sharedPki();
    return new CentralClient({
      url: h.central.url,
      ca: pki.centralCa.certPem,
      cert: pki.gatewayClient.certPem,
      key: pki.gatewayClient.keyPem,
      userId: 'sandbox',
      timeoutMs: 5000,
    });
  }

  get config(): GatewayConfig {
    return outageConfig(this.stateDir, `https://127.0.0.1:${this.proxy.port}`, this.patch, this.reader);
  }

  async startGateway(): Promise<void> {
    const { logger } = captureLogger('info', this.logs);
    this.gateway = await startGateway(this.config, { logger });
    this.client = await GatewayClient.connect(`ws://127.0.0.1:${this.gateway.wsPort}/v1`, this.token);
  }

  async restartGateway(): Promise<void> {
    await this.client.close().catch(() => {});
    await this.gateway.close();
    await this.startGateway();
  }

  rows(): PeopleRow[] {
    return peopleRows(this.central.people, todayJst());
  }

  setLine(mode: LineMode): void {
    this.proxy.setMode(mode);
  }

  /** One check by numbers with a deadline; never throws (errors are answers too). */
  async check(row: PeopleRow, deadlineMs = 2000): Promise<Answer> {
    const clock = stopwatch();
    const id = `q${Math.random().toString(36).slice(2)}`;
    const timing = () => ({ id, ms: clock.ms(), deadlineMs, allowedMs: clock.allowance(deadlineMs) });
    try {
      const a = (await this.client.request({ type: 'inquiry.numbers', id, deadlineMs, query: queryOf(row) })) as {
        result: InquiryResult;
      };
      return { ...timing(), result: a.result };
    } catch (e) {
      return { ...timing(), error: { code: (e as { code?: string }).code ?? 'UNKNOWN' } };
    }
  }

  /** The outbox as it is on disk, read through a separate connection. */
  outboxRows(): { id: number; idempotency_key: string; state: string; attempts: number }[] {
    const db = new Database(join(this.stateDir, DB_FILE), { readonly: true, fileMustExist: true });
    try {
      return db.prepare('SELECT id, idempotency_key, state, attempts FROM outbox ORDER BY id').all() as never;
    } finally {
      db.close();
    }
  }

  async waitDrained(timeoutMs = 30_000): Promise<number> {
    const started = Date.now();
    await waitFor(
      () => this.gateway.store.outbox.stats().depth === 0 && this.gateway.relay.inFlight === 0,
      'the outbox to drain',
      timeoutMs,
    );
    return Date.now() - started;
  }

  async waitLink(state: 'up' | 'degraded' | 'down', timeoutMs = 15_000): Promise<number> {
    const started = Date.now();
    await waitFor(() => this.gateway.link.state === state, `the line to be ${state}`, timeoutMs);
    return Date.now() - started;
  }

  /**
   * The figures the issue asks for. acknowledged = answers that said `recheck.queued: true`;
   * lost = acknowledged entries missing from the outbox or never settled; duplicates = keys central
   * acted on more than once.
   */
  figures(answers: Answer[]): {
    attempted: number;
    answered: number;
    acknowledged: number;
    lost: number;
    dead: number;
    duplicateEffects: number;
    late: number;
  } {
    const rows = new Map(this.outboxRows().map((r) => [r.id, r]));
    const acked = answers.filter((a) => a.result?.recheck?.queued === true);
    const lost = acked.filter((a) => {
      const r = rows.get((a.result!.recheck as { outboxId: number }).outboxId);
      return !r || (r.state !== 'done' && r.state !== 'dead');
    }).length;
    const dead = acked.filter(
      (a) => rows.get((a.result!.recheck as { outboxId: number }).outboxId)?.state === 'dead',
    ).length;
    const duplicateEffects = Object.values(this.central.stats.effectsByKey).filter((n) => n > 1).length;
    const late = answers.filter((a) => a.ms > a.allowedMs).length;
    return {
      attempted: answers.length,
      answered: answers.filter((a) => a.result).length,
      acknowledged: acked.length,
      lost,
      dead,
      duplicateEffects,
      late,
    };
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => {});
    await this.gateway.close();
    await this.proxy.close();
    await this.central.close();
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}
