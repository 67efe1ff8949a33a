/**
 * The configuration's one definition: the schema is the single source of truth for the file format,
 * the defaults, the environment overrides (ONSHI_<PATH>, e.g. ONSHI_API_PORT), the error messages,
 * docs/configuration.md and, by `Parsed`, the GatewayConfig type. config.ts loads and validates.
 */
import type { Options } from 'ajv';
import {
  Closed,
  Defaulted,
  type Parsed,
  type Static,
  StringEnum,
  type TObject,
  type TProperties,
  type TSchema,
  Type,
} from './schema-kit.js';

const described = (description: string | undefined) => (description ? { description } : {});
const int = (value: number, minimum: number, maximum: number, description?: string) =>
  Defaulted(value, Type.Integer({ minimum, maximum, ...described(description) }));
const num = (value: number, minimum: number, maximum: number, description?: string) =>
  Defaulted(value, Type.Number({ minimum, maximum, ...described(description) }));
const bool = (value: boolean, description?: string) => Defaulted(value, Type.Boolean(described(description)));
const str = (value: string, description?: string, rule: { pattern?: string; minLength?: number } = {}) =>
  Defaulted(value, Type.String({ ...rule, ...described(description) }));
const oneOf = <const V extends readonly string[]>(values: V, value: V[number], description?: string) =>
  Defaulted(value, StringEnum(values, described(description)));
const list = <I extends TSchema>(items: I, maxItems: number, description: string) =>
  Defaulted([], Type.Array(items, { uniqueItems: true, maxItems, description }));
const section = <P extends TProperties>(properties: P) => Defaulted({} as Static<TObject<P>>, Closed(properties));

export const CONFIG_SCHEMA = Closed(
  {
    stateDir: str('/var/lib/onshi-gateway', 'SQLite, keys, client tokens', { minLength: 1 }),
    institutionCode: str('1319999996', '医療機関コード (10 digits; a check-digit mismatch is logged as a warning)', {
      pattern: '^[0-9]{10}$',
    }),
    log: section({
      level: oneOf(['error', 'warn', 'info', 'debug'], 'info'),
    }),
    api: section({
      host: str('127.0.0.1', 'address the WebSocket API listens on (a LAN address needs TLS: see api.tls)'),
      tls: oneOf(
        ['auto', 'on', 'off'],
        'auto',
        "wss:// with the gateway's own certificate: auto = on unless api.host is loopback; off is refused for a non-loopback host",
      ),
      port: int(8765, 0, 65535, 'WebSocket API port (0 = any free port, logged at start)'),
      maxPayloadBytes: int(
        65536,
        1024,
        1048576,
        'largest accepted frame; a larger one closes the connection with 1009',
      ),
      heartbeatMs: int(30000, 1000, 600000, 'ping interval; a client silent for two intervals is dropped'),
      maxConnections: int(
        512,
        1,
        10000,
        'open WebSocket connections at most; one more is refused with 503 (a clinic has tens of receipt computers and displays)',
      ),
      defaultDeadlineMs: int(15000, 500, 300000, 'deadline of a request that names none'),
      shutdownGraceMs: int(10000, 0, 120000, 'on SIGTERM, how long in-flight requests may take to answer'),
    }),
    central: section({
      url: str('https://127.0.0.1:18443', 'OQS Web API base URL (closed line)', { pattern: '^https://' }),
      caFile: str('', 'PEM bundle that pins the central CA'),
      certFile: str('', "the gateway's client certificate (PEM)"),
      keyFile: str('', "the gateway's client key (PEM); prefer a systemd credential"),
      servername: str('', 'TLS server name to check, when it differs from the URL host'),
      userId: str('sandbox', 'Web API login id'),
      passwordFile: str('', 'file holding the Web API password'),
      timeoutMs: int(10000, 100, 120000, 'the longest one request to central may take'),
    }),
    reader: section({
      enabled: bool(true, 'use the PC/SC card reader'),
      readerName: str('', 'substring of the PC/SC reader name to use; empty = first reader'),
      jpkiCaFile: str('', 'PEM bundle of the JPKI user-authentication CA certificates'),
    }),
    outage: section({
      cacheMaxAgeHours: int(
        744,
        1,
        8760,
        'during an outage, answer from the cache only if central confirmed the answer at most this long ago (default 31 days)',
      ),
      offlineReserveMs: int(
        1500,
        100,
        10000,
        'of every deadline, keep this long for the outage path (cache lookup + durable outbox commit); central gets the rest',
      ),
      outboxMax: int(
        10000,
        10,
        1000000,
        'queued re-verifications above which new ones are refused (OUTBOX_FULL, never by dropping old ones); alert at 80 %',
      ),
      outboxTtlHours: int(
        168,
        1,
        8760,
        'a queued re-verification older than this is reported as overdue (and still replayed)',
      ),
      relayConcurrency: int(5, 1, 5, 'replays in flight at once when the line is back'),
      retryBudgetRatio: num(0.1, 0, 0.1, 'retries may add at most this fraction of extra load toward central'),
      failureThreshold: int(3, 1, 20, 'failures in a row that open the breaker (line down)'),
      slowMs: int(5000, 100, 60000, 'an answer slower than this marks the line degraded'),
      probeIntervalMs: int(30000, 1000, 600000, 'while the line is idle, probe central this often'),
      probeTimeoutMs: int(3000, 200, 60000, 'how long one probe may take'),
      backoffBaseMs: int(1000, 10, 60000, 'full-jitter backoff base for probes and replays'),
      backoffCapMs: int(30000, 100, 600000, 'full-jitter backoff cap'),
      revocationSchedule: str(
        '17 */6 * * *',
        'cron schedule (Asia/Tokyo) on which the JPKI revocation list is fetched; also fetched at start',
        { minLength: 9 },
      ),
      revocationMaxAgeHours: int(72, 1, 8760, 'an offline card check with an older revocation list carries a warning'),
      revocationGraceHours: int(
        72,
        0,
        8760,
        "past the revocation list's nextUpdate, offline card proofs are still made this long (with a notice), then refused",
      ),
    }),
    batch: section({
      concurrency: int(2, 1, 8, 'batch chunks worked on toward central at once (submitted and being fetched)'),
      chunkSize: int(
        1000,
        1,
        2000,
        'entries per OQSmuquc01req; a larger batch is split (the JSON answer of ~2,800 entries hits the reader limit)',
      ),
      pollMs: int(
        5000,
        100,
        600000,
        'first wait before fetching a submitted chunk again while central says 処理中; doubles up to pollMaxMs',
      ),
      pollMaxMs: int(
        60000,
        100,
        3600000,
        'longest wait between two fetches of one chunk (also the retry cap when central cannot be reached)',
      ),
      schedule: str(
        '30 6 * * *',
        'cron schedule (Asia/Tokyo) on which batches submitted with run "scheduled" are started',
        { minLength: 9 },
      ),
      maxEntries: int(10000, 1, 10000, 'largest batch a receipt computer may submit'),
      retentionDays: int(
        30,
        1,
        3650,
        'a finished batch (its entries and results are personal data) is deleted this many days after it finished; checked on the batch schedule and at start',
      ),
    }),
    rechecks: section({
      enabled: bool(
        true,
        "recheck 無効 / 無効（新しい資格あり） / 該当資格なし answers daily (the new insurer's registration lag) for patients the receipt computer flags changedInsurer",
      ),
      all: bool(false, 'recheck every such answer, flagged or not'),
      windowDays: int(10, 1, 60, "how many days a recheck goes on (the insurers' registration deadline is 10 days)"),
      schedule: str(
        '0 7 * * *',
        'cron schedule (Asia/Tokyo) of the daily recheck job; `onshi rechecks run` runs it now',
        { minLength: 9 },
      ),
    }),
    tls: section({
      hostnames: list(
        Type.String({
          pattern: '^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$',
        }),
        32,
        "host names in the gateway's own certificate (comma-separated in the environment); empty = this machine's name, NAME.local and localhost",
      ),
      ips: list(
        Type.String({ pattern: '^[0-9A-Fa-f:.]{2,45}$' }),
        32,
        'IP addresses in the certificate, besides 127.0.0.1 and ::1 (always included)',
      ),
      validityDays: int(
        825,
        30,
        825,
        'lifetime of a newly made certificate (the key is kept on renewal, so a pinned public key stays valid)',
      ),
      renewDaysBefore: int(30, 1, 365, 'renew the certificate at start when it expires within this many days'),
    }),
    admin: section({
      enabled: bool(true, 'serve the admin page (HTTPS, login required)'),
      host: str(
        '127.0.0.1',
        'address the admin page listens on: loopback, or the clinic LAN address set explicitly (never every address: nothing of the box may listen on the line; ipsec mode refuses it)',
      ),
      port: int(8443, 0, 65535, 'admin page port (HTTPS)'),
      sessionIdleMinutes: int(30, 1, 1440, 'an admin session ends after this long without a request'),
      sessionMaxHours: int(12, 1, 72, 'an admin session ends this long after login, used or not'),
      loginMaxFailures: int(5, 1, 100, 'failed logins from one address before it must wait'),
      loginLockoutSeconds: int(
        300,
        1,
        86400,
        'how long an address waits after too many failed logins (doubles on each further lockout, up to a day)',
      ),
    }),
    kiosk: section({
      enabled: bool(false, 'serve the patient kiosk page (HTTPS, its own port; docs/kiosk.md)'),
      host: str('0.0.0.0', 'address the kiosk page listens on (the tablet must reach it; TLS only)'),
      port: int(8444, 0, 65535, 'kiosk page port (HTTPS, the gateway certificate)'),
      idleSeconds: int(60, 10, 600, 'a kiosk check without a touch for this long ends and the page starts over'),
    }),
    audit: section({
      retentionDays: int(
        90,
        1,
        3650,
        "the audit log's personal fields (request ids, what identified the patient) are purged after this many days; the chained, non-personal fields stay",
      ),
      purgeSchedule: str('41 3 * * *', 'cron schedule (Asia/Tokyo) of the retention purge; it also runs at start', {
        minLength: 9,
      }),
    }),
    fileExchange: section({
      enabled: bool(
        false,
        'answer the official file exchange (req/res folders) for receipt computers that talk to the 資格確認端末 that way',
      ),
      reqDir: str('', 'the req folder the receipt computer drops OQS…req_*.xml into (must exist: never created)'),
      resDir: str(
        '',
        'the res folder answers are written into (must exist; answers appear by rename from a hidden .tmp name)',
      ),
      faceDir: str(
        '',
        'folder for the face-reader style result of every card check (OQSsiquc01res_face_*); empty = resDir',
      ),
      doneDir: str(
        '',
        'move answered requests here instead of deleting them (must exist, same file system as reqDir); empty = delete',
      ),
      encoding: oneOf(
        ['request', 'UTF-8', 'Shift_JIS'],
        'request',
        "answers' encoding and CharacterCodeIdentifier: that of the request, or fixed per site; face files use UTF-8 unless Shift_JIS is set",
      ),
      faceFiles: bool(true, 'write a face-reader style result file for every card check made at the gateway'),
      pollMs: int(
        500,
        100,
        10000,
        'the req folder is scanned this often besides file-system events (which some file systems do not deliver)',
      ),
      settleMs: int(
        300,
        0,
        60000,
        'a request is read only after its size and time have not changed for this long (it may still be being written)',
      ),
      maxBytes: int(4194304, 1024, 16777216, 'a larger request file gets an error answer without being parsed'),
      deadlineMs: int(
        15000,
        1000,
        120000,
        'deadline of one single check from a request file (outage answers included)',
      ),
      batchWaitMs: int(
        60000,
        0,
        600000,
        'an OQSmuquc02req waits up to this long for central to finish the batch before it is answered 処理中 (SegmentOfResult 2: send another 02req later)',
      ),
      batchPollMs: int(5000, 200, 60000, 'while waiting, ask central this often'),
      concurrency: int(4, 1, 32, 'request files processed at once'),
      fileMode: str(
        '640',
        "permissions (octal) of answer files: the receipt computer's account must be able to read them",
        { pattern: '^0?[0-7]{3}$' },
      ),
      journalDays: int(
        7,
        1,
        365,
        'how long the record of an answered request is kept (it stops a restart answering twice)',
      ),
    }),
    line: section({
      mode: oneOf(
        ['ip-vpn', 'ipsec'],
        'ip-vpn',
        "how this box reaches central: ip-vpn = the carrier's router owns the tunnel (the gateway checks the path hop by hop); ipsec = the gateway drives strongSwan through VICI (see docs/line.md)",
      ),
      vici: str('unix:///var/run/charon.vici', "ipsec: charon's VICI socket", { pattern: '^unix://' }),
      name: str('oqs', "ipsec: the connection's and CHILD_SA's name in charon", { pattern: '^[A-Za-z0-9_-]{1,32}$' }),
      peer: str('', "ipsec (required): the OQS connection service's IKE address or name"),
      local: str('', 'ipsec: our outer address; empty = any'),
      localId: str('', 'ipsec (required): our IKE identity'),
      remoteId: str('', "ipsec (required): the peer's IKE identity"),
      proposals: Defaulted(
        ['aes256-sha256-modp2048'],
        Type.Array(Type.String({ minLength: 1 }), {
          minItems: 1,
          maxItems: 16,
          description: 'ipsec: IKE proposals, strongSwan syntax (comma-separated in the environment)',
        }),
      ),
      espProposals: Defaulted(
        ['aes256-sha256'],
        Type.Array(Type.String({ minLength: 1 }), {
          minItems: 1,
          maxItems: 16,
          description: 'ipsec: ESP proposals, strongSwan syntax',
        }),
      ),
      dpdDelaySeconds: int(10, 1, 604800, 'ipsec: dead peer detection interval'),
      ikeRekeySeconds: int(14400, 60, 604800, 'ipsec: IKE_SA rekey time'),
      childRekeySeconds: int(3600, 1, 604800, 'ipsec: CHILD_SA rekey time'),
      localTs: list(
        Type.String({ minLength: 1 }),
        16,
        "ipsec (required): our side's traffic selectors (CIDR; the gateway's inner address). Nothing of the box may listen there",
      ),
      remoteTs: list(Type.String({ minLength: 1 }), 16, "ipsec (required): central's networks (CIDR)"),
      auth: section({
        kind: oneOf(
          ['pubkey', 'psk'],
          'pubkey',
          'ipsec: certificates (certFile, keyFile, caFile) or a pre-shared key (pskFile)',
        ),
        certFile: str('', 'ipsec pubkey: our IKE certificate (PEM file path, normally a systemd credential)'),
        keyFile: str('', 'ipsec pubkey: its private key (file path only; never the key in the config)'),
        caFile: str('', "ipsec pubkey: the CA that signs the peer's certificate (file path)"),
        pskFile: str(
          '',
          'ipsec psk: the file holding the pre-shared key (file path only; never the key in the config)',
        ),
      }),
    }),
    health: section({
      enabled: bool(true, 'serve /healthz, /readyz, /metrics and /status on 127.0.0.1 (never on another address)'),
      port: int(8766, 0, 65535, 'loopback port of the health and metrics endpoints (`onshi status` reads it)'),
    }),
  },
  { $id: 'onshi-gateway/config' },
);

/** The configuration after validation: every setting present (the schema's defaults filled in). */
export type GatewayConfig = Parsed<typeof CONFIG_SCHEMA>;
export type FileExchangeConfig = GatewayConfig['fileExchange'];

type SchemaNode = {
  type?: string;
  enum?: readonly string[];
  default?: unknown;
  description?: string;
  properties?: Record<string, SchemaNode>;
};
/**
 * The options the config is validated with. The validator itself is generated from the schema with
 * these (src/core/config-validator.generated.ts, by `npm run docs`), so that no start compiles it.
 */
export const CONFIG_VALIDATOR_OPTIONS = {
  allErrors: true,
  useDefaults: true,
  strict: true,
  allowUnionTypes: true,
} as const satisfies Options;

/** ONSHI_API_PORT ← api.port; ONSHI_CENTRAL_CA_FILE ← central.caFile. */
export function envNameFor(path: readonly string[]): string {
  return 'ONSHI_' + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

/** Every leaf of the schema with its environment variable name, for docs and `onshi config`. */
export interface ConfigLeaf {
  path: string[];
  env: string;
  type: string;
  default: unknown;
  description: string;
}

export function configLeaves(
  node: SchemaNode = CONFIG_SCHEMA as unknown as SchemaNode,
  path: string[] = [],
): ConfigLeaf[] {
  if (!node.properties) {
    const description = node.description ?? (node.enum ? `one of ${node.enum.join(', ')}` : '');
    return [{ path, env: envNameFor(path), type: node.type ?? 'string', default: node.default, description }];
  }
  return Object.entries(node.properties).flatMap(([k, child]) => configLeaves(child, [...path, k]));
}

/** docs/configuration.md, generated from the schema (npm run docs; a test keeps it in sync). */
export function configMarkdown(): string {
  const rows = configLeaves().map(
    (l) => `| \`${l.path.join('.')}\` | \`${l.env}\` | \`${JSON.stringify(l.default)}\` | ${l.description} |`,
  );
  return [
    '# Configuration',
    '',
    '<!-- generated from src/core/config-schema.ts by `npm run docs`; do not edit by hand -->',
    '',
    'One JSON file (default `/etc/onshi-gateway/config.json`, or `--config FILE`, or `$ONSHI_CONFIG`),',
    'validated against one JSON Schema. Every setting has a default and can be overridden by an',
    'environment variable. An invalid value stops the daemon with `CONFIG_INVALID` naming each bad key,',
    'why, and whether it came from the file or the environment.',
    '',
    '| setting | environment | default | meaning |',
    '|---|---|---|---|',
    ...rows,
    '',
    'Secrets: `central.keyFile` may be left empty when the key is passed as the systemd credential',
    '`central-client.key` (likewise `central-client.pem` and `central-ca.pem`).',
    '',
  ].join('\n');
}
