/**
 * The wire schema of the `status` answer's `status`: the daemon's snapshot (ops/status.ts's
 * DaemonStatus, which a unit test keeps assignable to this). States, counts and times only: no
 * personal data.
 */
import { Dict, type Static, StringEnum, Type } from '../core/schema-kit.js';

const str = (description?: string) => Type.String(description ? { description } : {});
const int = () => Type.Integer();
const opt = Type.Optional;

const alert = Type.Object({
  code: str(),
  message: str(),
  details: opt(Dict(Type.Union([Type.String(), Type.Number(), Type.Boolean()]))),
});

const JOB = Type.Object({
  name: str(),
  schedule: str('cron expression (Asia/Tokyo)'),
  running: Type.Boolean(),
  nextRunAt: opt(str()),
  lastResult: opt(
    Type.Object({
      at: str(),
      ok: Type.Boolean(),
      code: opt(str('the error code, when it failed')),
      durationMs: Type.Number(),
    }),
  ),
});

export const STATUS_SCHEMA = Type.Object(
  {
    version: str(),
    startedAt: str(),
    now: str("the gateway's clock when the snapshot was taken"),
    ready: Type.Boolean({ description: 'every entry in checks is true' }),
    checks: Dict(Type.Boolean()),
    reader: Type.Object({
      enabled: Type.Boolean(),
      state: StringEnum(['ready', 'no_reader', 'pcscd_down', 'disabled', 'unknown']),
      readers: Type.Array(Type.Object({ name: str(), cardPresent: Type.Boolean() })),
    }),
    card: Type.Object({ present: Type.Boolean(), stage: opt(str('e.g. idle, reading, pin, signing')) }),
    line: Type.Object({
      state: StringEnum(['up', 'degraded', 'down', 'unknown']),
      since: opt(str()),
      lastOkAt: opt(str()),
      lastError: opt(str('an error code, never a message with data in it')),
      mode: opt(StringEnum(['ip-vpn', 'ipsec'])),
      failingHop: opt(str('the first hop that failed: ike-sa, child-sa, dns, route, next-hop, tls')),
      hops: opt(Type.Array(Type.Object({ hop: str(), ok: Type.Boolean(), detail: str() }))),
      checkedAt: opt(str()),
      tunnel: opt(
        Type.Object(
          {
            ike: StringEnum(['down', 'connecting', 'established', 'rekeying', 'deleting']),
            child: StringEnum(['down', 'installing', 'installed', 'rekeying', 'deleting']),
            up: Type.Boolean(),
            since: str(),
            rekeys: int(),
            bytesIn: int(),
            bytesOut: int(),
            packetsIn: int(),
            packetsOut: int(),
            lastDpd: opt(str('the last sign of life from the peer')),
            reason: opt(str("strongSwan's words for the last change")),
          },
          { description: 'ipsec mode: the tunnel as strongSwan reports it' },
        ),
      ),
    }),
    outbox: Type.Object({
      depth: int(),
      oldestAt: opt(str()),
      dead: int(),
      fillRatio: Type.Number(),
      max: int(),
      inFlight: int(),
      overdue: int(),
    }),
    cache: Type.Object({ entries: int(), bytes: opt(int()) }),
    clock: Type.Object({ skewMs: opt(Type.Number()), checkedAt: opt(str()) }),
    certificates: Type.Array(Type.Object({ name: str(), notAfter: str(), fingerprint: opt(str()) })),
    tls: opt(Type.Object({ fingerprint: str(), spkiSha256: str(), notAfter: str() })),
    alerts: Type.Array(alert, { description: 'what staff must see (certificate expiring, store moved aside…)' }),
    api: Type.Object({
      listening: Type.Boolean(),
      port: opt(int()),
      tls: opt(Type.Boolean()),
      connections: int(),
      droppedEvents: opt(int()),
      overflowCloses: opt(int()),
    }),
    link: Type.Object(
      {
        state: StringEnum(['up', 'degraded', 'down']),
        since: str(),
        reason: str(),
        consecutiveFailures: int(),
        lastSuccessAt: opt(str()),
        lastFailureAt: opt(str()),
        lastFailureCode: opt(str()),
        lastLatencyMs: opt(Type.Number()),
        retryAfterUntil: opt(str()),
        nextProbeAt: opt(str()),
      },
      { description: "the line monitor's full view" },
    ),
    reconciliation: Type.Object({ open: int() }),
    revocation: Type.Object({
      ageMs: opt(Type.Number()),
      fetchedAt: opt(str()),
      state: StringEnum(['none', 'current', 'stale', 'expired'] as const),
      thisUpdate: opt(str()),
      nextUpdate: opt(str()),
      refuseAfter: opt(str()),
      staleForMs: opt(Type.Number()),
    }),
    retryBudget: Type.Object({ requests: int(), retries: int(), refused: int(), tokens: Type.Number() }),
    jobs: Type.Array(JOB, { description: 'the scheduled jobs: schedule, next run, last result' }),
  },
  { description: "the gateway's state: line, outbox, reader, certificates, alerts, API" },
);

export type StatusWire = Static<typeof STATUS_SCHEMA>;
