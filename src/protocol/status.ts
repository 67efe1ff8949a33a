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
  },
  { description: "the gateway's state: line, outbox, reader, certificates, alerts, API" },
);

export type StatusWire = Static<typeof STATUS_SCHEMA>;
