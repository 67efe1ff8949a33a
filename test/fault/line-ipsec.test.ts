/**
 * Fault injection through a real IPsec tunnel: the gateway daemon in the lab's clinic namespace,
 * the central simulator in the central one (reachable only through the tunnel), a stream of checks
 * from the clinic LAN while each fault of issue 16 happens and is repaired. Figures printed
 * (FIGURES {…}, collected into docs/outage.md): time to detect, time from recovery to the first
 * replayed check, drain time; asserted: lost 0, duplicated 0 (central's own count, through the
 * simulator's control API), no answer past its deadline.
 *
 * Until the daemon drives the line (the sandbox's daemonTakesLine seam), the lab brings the tunnel
 * up and back with swanctl, and the gateway learns of an outage only from failing requests: the
 * time to detect below is therefore the request path's. The line's own detection is asserted in
 * `assertLineDetectedFirst`, which the lead enables when the daemon is wired (LINE_WIRED).
 */
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { DB_FILE } from '../../src/cache/index.js';
import type { InquiryResult } from '../../src/checks/result.js';
import { GatewayClient } from '../../src/client/index.js';
import type { PeopleRow } from '../../src/sim/central/population.js';
import type { IpsecLab } from '../../src/sim/line/ipsec/index.js';
import { daemonTakesLine, type IpsecSandbox, startIpsecSandbox } from '../../src/sim/sandbox-ipsec.js';
import { ipsecLabPrerequisites } from '../../src/sim/line/ipsec/index.js';
import { until } from '../helpers/ipsec-lab.js';
import { FAST_OUTAGE, queryOf } from '../helpers/outage.js';

t.setTimeout(1_200_000);

/**
 * Set by the lead once the daemon drives the line: then the gateway must see the CHILD_SA go down
 * before any request fails, and the tunnel comes back by itself (no `lab.restore()` initiate).
 */
const LINE_WIRED = daemonTakesLine();

const DEADLINE_MS = 3000;
const STREAM_GAP_MS = 250;

interface Answer {
  id: string;
  sentAt: number;
  ms: number;
  result?: InquiryResult;
  error?: string;
}

interface Fault {
  name: string;
  /** false: the fault must not cost a single check (rekeying, the MTU black hole behind the clamp) */
  outage: boolean;
  /**
   * How the gateway learns of it: `told` (central's DELETE reaches charon: the gateway must know
   * before any request fails), `silent` (nothing is said: charon's DPD, or the gateway's own rule
   * for probes failing through an installed tunnel, must take it down within the hold; time to down
   * recorded), none (it may never go down: flapping, an address change that MOBIKE rides out).
   */
  detect?: 'told' | 'silent';
  /** the tunnel must come back by itself, before the lab repairs anything */
  selfHeals?: boolean;
  apply(lab: IpsecLab): Promise<void>;
  /** how long the fault lasts before repair */
  holdMs: number;
}

// The lab's DPD: 2 s delay, then 3 retransmits from 1 s (×1.4): a dead peer is declared within ~10 s;
// with the outer link down charon defers DPD (no route), and the gateway's rule (LineService
// zombieAfterMs: 10 s of failing probes through an installed tunnel) takes it down instead.
const DPD_HOLD_MS = 15_000;

const FAULTS: Fault[] = [
  {
    name: 'central charon killed',
    outage: true,
    detect: 'silent',
    holdMs: DPD_HOLD_MS,
    apply: (lab) => lab.killCharon('central'),
  },
  {
    name: 'SA deleted by central',
    outage: true,
    detect: 'told',
    holdMs: 4000,
    apply: (lab) => lab.terminate('central'),
  },
  {
    name: 'rekeying every 2 s',
    outage: false,
    holdMs: 10_000,
    apply: async (lab) => void lab.startRekeying(2000),
  },
  {
    name: 'outer link down',
    outage: true,
    detect: 'silent',
    holdMs: DPD_HOLD_MS,
    apply: (lab) => lab.setOuterLink(false),
  },
  { name: 'outer link flapping', outage: true, holdMs: 8000, apply: async (lab) => lab.startFlapping(1000, 1000) },
  {
    name: "clinic's outer address changed",
    outage: true,
    selfHeals: true,
    holdMs: 6000,
    apply: async (lab) => void (await lab.readdressClinic()),
  },
  // The clinic's charon clamps routes into the tunnel to MTU 1040 (conf.ts ROUTE_CLAMP), so TCP fits.
  { name: 'MTU black hole (1200 B)', outage: false, holdMs: 8000, apply: (lab) => lab.setMtuBlackhole(1200) },
];

class Stream {
  readonly answers: Answer[] = [];
  private running = true;
  private done: Promise<void>;
  constructor(
    private readonly client: GatewayClient,
    private readonly rows: PeopleRow[],
  ) {
    this.done = this.loop();
  }
  private async loop(): Promise<void> {
    for (let i = 0; this.running; i++) {
      const row = this.rows[i % this.rows.length]!;
      const id = `s${Date.now().toString(36)}${i}`;
      const sentAt = Date.now();
      const a: Answer = { id, sentAt, ms: 0 };
      try {
        const r = (await this.client.request({
          type: 'inquiry.numbers',
          id,
          deadlineMs: DEADLINE_MS,
          query: queryOf(row),
        })) as { result: InquiryResult };
        a.result = r.result;
      } catch (e) {
        a.error = (e as { code?: string }).code ?? 'UNKNOWN';
      }
      a.ms = Date.now() - sentAt;
      this.answers.push(a);
      await new Promise((r) => setTimeout(r, STREAM_GAP_MS));
    }
  }
  async stop(): Promise<Answer[]> {
    this.running = false;
    await this.done;
    return this.answers;
  }
}

function outbox(sb: IpsecSandbox): Map<number, string> {
  const db = new Database(join(sb.ready.state!, 'gateway', DB_FILE), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT id, state FROM outbox').all() as { id: number; state: string }[];
    return new Map(rows.map((r) => [r.id, r.state]));
  } finally {
    db.close();
  }
}

async function centralStats(sb: IpsecSandbox): Promise<{ effectsByKey: Record<string, number> }> {
  const res = await fetch(new URL('/control/stats', sb.ready.control));
  return (await res.json()) as { effectsByKey: Record<string, number> };
}

/**
 * The line's own detection, per the fault's kind: told → the gateway recorded the tunnel down
 * before the first check fell back (detection from the line, not from a failing request);
 * silent → it recorded it within the hold.
 */
function assertLineDetected(
  t: Test,
  fault: Fault,
  downSeenAt: number | undefined,
  firstFail: number | undefined,
): void {
  if (!LINE_WIRED) {
    t.comment('line detection: not asserted until the daemon drives the line (LINE_WIRED)');
    return;
  }
  if (!fault.detect) return;
  t.ok(downSeenAt !== undefined, `the gateway saw the tunnel go down (${fault.detect})`);
  if (fault.detect === 'told' && firstFail !== undefined && downSeenAt !== undefined)
    t.ok(downSeenAt <= firstFail, 'the gateway knew the tunnel was down before any request failed');
}

/**
 * When the gateway itself recorded the tunnel down: the first `line.tunnel` event with `up: false`
 * stamped at or after `since`, by the gateway's clock (the same machine's). Read from the events the
 * client is subscribed to, so a slow poll cannot make the gateway look late.
 */
class TunnelWatch {
  private downs: number[] = [];
  constructor(client: GatewayClient) {
    client.onEvent('line', (e) => {
      if (e.event === 'line.tunnel' && (e.data as { up?: boolean }).up === false) this.downs.push(Date.parse(e.at));
    });
  }
  firstDownSince(since: number): number | undefined {
    return this.downs.find((at) => at >= since);
  }
}

t.test('faults through the IPsec tunnel', async (t) => {
  const missing = await ipsecLabPrerequisites();
  if (missing) {
    if (process.env.CI) t.fail(`the IPsec lab cannot run: ${missing}`);
    else t.plan(0, `the IPsec lab cannot run here: ${missing}`);
    return;
  }
  const state = mkdtempSync(join(tmpdir(), 'onshi-ipsec-fault-'));
  const sb = await startIpsecSandbox({
    stateDir: state,
    portBase: 0,
    card: false,
    gateway: {
      api: { defaultDeadlineMs: DEADLINE_MS },
      central: { timeoutMs: 2000 },
      outage: { ...FAST_OUTAGE },
    },
  });
  t.teardown(async () => {
    await sb.close();
    rmSync(state, { recursive: true, force: true });
  });
  const client = await GatewayClient.connect(sb.ready.ws!, sb.ready.token!, {
    ca: readFileSync(sb.ready.ca!),
    reconnect: true,
  });
  t.teardown(() => client.close());
  const tunnel = new TunnelWatch(client);
  if (LINE_WIRED) await client.subscribe(['line']);
  const rows = ((await (await fetch(new URL('/control/people', sb.ready.control))).json()) as PeopleRow[])
    .filter((r) => r.expectedValidity === '1')
    .slice(0, 6);

  // ONSHI_IPSEC_FAULTS=rekey,mtu runs only the faults whose names contain one of these words.
  const only = process.env.ONSHI_IPSEC_FAULTS?.split(',').filter(Boolean);
  for (const fault of FAULTS.filter((f) => !only || only.some((w) => f.name.includes(w)))) {
    await t.test(fault.name, async (t) => {
      // Warm: these patients were seen before the fault, so the cache can answer for them.
      const warm = new Stream(client, rows);
      await new Promise((r) => setTimeout(r, rows.length * (STREAM_GAP_MS + 200)));
      await warm.stop();

      const stream = new Stream(client, rows);
      const faultAt = Date.now();
      await fault.apply(sb.lab);
      await new Promise((r) => setTimeout(r, Math.max(0, faultAt + fault.holdMs - Date.now())));
      const downSeenAt = tunnel.firstDownSince(faultAt);
      if (fault.selfHeals && LINE_WIRED)
        t.ok(await sb.lab.installed('clinic'), 'the tunnel came back by itself, before any repair');
      const repairedAt = Date.now();
      const before = outbox(sb);
      await sb.lab.restore();
      await until('the tunnel up on both sides again', 60_000, async () =>
        (await sb.lab.installed('clinic')) && (await sb.lab.installed('central')) ? true : undefined,
      );
      // The first replay after the repair, then the outbox empty.
      let firstReplayMs: number | undefined;
      const drainMs = await until('the outbox to drain', 90_000, () => {
        const now = outbox(sb);
        if (firstReplayMs === undefined && [...now].some(([id, s]) => s === 'done' && before.get(id) !== 'done'))
          firstReplayMs = Date.now() - repairedAt;
        return [...now.values()].every((s) => s === 'done' || s === 'dead') ? Date.now() - repairedAt : undefined;
      });
      await new Promise((r) => setTimeout(r, 1000));
      const answers = await stream.stop();

      const fellBack = answers.filter((a) => a.sentAt >= faultAt && (a.error || a.result?.source !== 'central'));
      const firstFail = fellBack[0] ? fellBack[0].sentAt + fellBack[0].ms : undefined;
      const states = outbox(sb);
      const acked = answers.filter((a) => a.result?.recheck?.queued === true);
      const lost = acked.filter((a) => {
        const s = states.get((a.result!.recheck as { outboxId: number }).outboxId);
        return s !== 'done' && s !== 'dead';
      }).length;
      const duplicated = Object.values((await centralStats(sb)).effectsByKey).filter((n) => n > 1).length;
      const late = answers.filter((a) => a.ms > DEADLINE_MS + 100).length;
      const figures = {
        scenario: `ipsec: ${fault.name}`,
        checks: answers.length,
        fromCentral: answers.filter((a) => a.result?.source === 'central').length,
        fellBack: fellBack.length,
        errors: answers.filter((a) => a.error).length,
        acknowledged: acked.length,
        lost,
        duplicated,
        late,
        detectMs: firstFail === undefined ? null : firstFail - faultAt,
        detectedBy: LINE_WIRED ? 'line' : 'request',
        lineDetectMs: downSeenAt === undefined ? null : downSeenAt - faultAt,
        recoveryToFirstReplayMs: firstReplayMs ?? null,
        drainMs,
      };
      t.comment(`FIGURES ${JSON.stringify(figures)}`);

      t.equal(lost, 0, 'acknowledged-but-lost: 0');
      t.equal(duplicated, 0, 'checks central acted on twice: 0');
      t.equal(late, 0, `no answer past its deadline (${DEADLINE_MS} ms + 100)`);
      t.equal(figures.errors, 0, 'every check got an answer (from central, the cache, or an honest unavailable)');
      if (!fault.outage) t.equal(fellBack.length, 0, 'no check fell back because of the fault');
      else assertLineDetected(t, fault, downSeenAt, firstFail);
    });
  }
});
