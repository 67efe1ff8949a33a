/**
 * Configuration: one JSON Schema is the single source of truth for the file format, the defaults,
 * the environment overrides (ONSHI_<PATH>, e.g. ONSHI_API_PORT) and the error messages.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { OnshiError } from './errors.js';

export const CONFIG_SCHEMA = {
  $id: 'onshi-gateway/config',
  type: 'object',
  additionalProperties: false,
  properties: {
    stateDir: {
      type: 'string',
      minLength: 1,
      default: '/var/lib/onshi-gateway',
      description: 'SQLite, keys, client tokens',
    },
    institutionCode: {
      type: 'string',
      pattern: '^[0-9]{10}$',
      default: '1319999996',
      description: '医療機関コード (10 digits; a check-digit mismatch is logged as a warning)',
    },
    log: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        level: { enum: ['error', 'warn', 'info', 'debug'], default: 'info' },
      },
    },
    api: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        host: {
          type: 'string',
          default: '127.0.0.1',
          description: 'address the WebSocket API listens on (a LAN address needs TLS: see api.tls)',
        },
        tls: {
          enum: ['auto', 'on', 'off'],
          default: 'auto',
          description:
            "wss:// with the gateway's own certificate: auto = on unless api.host is loopback; off is refused for a non-loopback host",
        },
        port: {
          type: 'integer',
          minimum: 0,
          maximum: 65535,
          default: 8765,
          description: 'WebSocket API port (0 = any free port, logged at start)',
        },
        maxPayloadBytes: {
          type: 'integer',
          minimum: 1024,
          maximum: 1048576,
          default: 65536,
          description: 'largest accepted frame; a larger one closes the connection with 1009',
        },
        heartbeatMs: {
          type: 'integer',
          minimum: 1000,
          maximum: 600000,
          default: 30000,
          description: 'ping interval; a client silent for two intervals is dropped',
        },
        maxConnections: {
          type: 'integer',
          minimum: 1,
          maximum: 10000,
          default: 512,
          description:
            'open WebSocket connections at most; one more is refused with 503 (a clinic has tens of receipt computers and displays)',
        },
        defaultDeadlineMs: {
          type: 'integer',
          minimum: 500,
          maximum: 300000,
          default: 15000,
          description: 'deadline of a request that names none',
        },
        shutdownGraceMs: {
          type: 'integer',
          minimum: 0,
          maximum: 120000,
          default: 10000,
          description: 'on SIGTERM, how long in-flight requests may take to answer',
        },
      },
    },
    central: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        url: {
          type: 'string',
          pattern: '^https://',
          default: 'https://127.0.0.1:18443',
          description: 'OQS Web API base URL (closed line)',
        },
        caFile: { type: 'string', default: '', description: 'PEM bundle that pins the central CA' },
        certFile: { type: 'string', default: '', description: "the gateway's client certificate (PEM)" },
        keyFile: {
          type: 'string',
          default: '',
          description: "the gateway's client key (PEM); prefer a systemd credential",
        },
        servername: {
          type: 'string',
          default: '',
          description: 'TLS server name to check, when it differs from the URL host',
        },
        userId: { type: 'string', default: 'sandbox', description: 'Web API login id' },
        passwordFile: { type: 'string', default: '', description: 'file holding the Web API password' },
        timeoutMs: {
          type: 'integer',
          minimum: 100,
          maximum: 120000,
          default: 10000,
          description: 'the longest one request to central may take',
        },
      },
    },
    reader: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: true, description: 'use the PC/SC card reader' },
        readerName: {
          type: 'string',
          default: '',
          description: 'substring of the PC/SC reader name to use; empty = first reader',
        },
        jpkiCaFile: {
          type: 'string',
          default: '',
          description: 'PEM bundle of the JPKI user-authentication CA certificates',
        },
      },
    },
    outage: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        cacheMaxAgeHours: {
          type: 'integer',
          minimum: 1,
          maximum: 8760,
          default: 744,
          description:
            'during an outage, answer from the cache only if central confirmed the answer at most this long ago (default 31 days)',
        },
        offlineReserveMs: {
          type: 'integer',
          minimum: 100,
          maximum: 10000,
          default: 1500,
          description:
            'of every deadline, keep this long for the outage path (cache lookup + durable outbox commit); central gets the rest',
        },
        outboxMax: {
          type: 'integer',
          minimum: 10,
          maximum: 1000000,
          default: 10000,
          description:
            'queued re-verifications above which new ones are refused (OUTBOX_FULL, never by dropping old ones); alert at 80 %',
        },
        outboxTtlHours: {
          type: 'integer',
          minimum: 1,
          maximum: 8760,
          default: 168,
          description: 'a queued re-verification older than this is reported as overdue (and still replayed)',
        },
        relayConcurrency: {
          type: 'integer',
          minimum: 1,
          maximum: 5,
          default: 5,
          description: 'replays in flight at once when the line is back',
        },
        retryBudgetRatio: {
          type: 'number',
          minimum: 0,
          maximum: 0.1,
          default: 0.1,
          description: 'retries may add at most this fraction of extra load toward central',
        },
        failureThreshold: {
          type: 'integer',
          minimum: 1,
          maximum: 20,
          default: 3,
          description: 'failures in a row that open the breaker (line down)',
        },
        slowMs: {
          type: 'integer',
          minimum: 100,
          maximum: 60000,
          default: 5000,
          description: 'an answer slower than this marks the line degraded',
        },
        probeIntervalMs: {
          type: 'integer',
          minimum: 1000,
          maximum: 600000,
          default: 30000,
          description: 'while the line is idle, probe central this often',
        },
        probeTimeoutMs: {
          type: 'integer',
          minimum: 200,
          maximum: 60000,
          default: 3000,
          description: 'how long one probe may take',
        },
        backoffBaseMs: {
          type: 'integer',
          minimum: 10,
          maximum: 60000,
          default: 1000,
          description: 'full-jitter backoff base for probes and replays',
        },
        backoffCapMs: {
          type: 'integer',
          minimum: 100,
          maximum: 600000,
          default: 30000,
          description: 'full-jitter backoff cap',
        },
        revocationSchedule: {
          type: 'string',
          minLength: 9,
          default: '17 */6 * * *',
          description: 'cron schedule (Asia/Tokyo) on which the JPKI revocation list is fetched; also fetched at start',
        },
        revocationMaxAgeHours: {
          type: 'integer',
          minimum: 1,
          maximum: 8760,
          default: 72,
          description: 'an offline card check with an older revocation list carries a warning',
        },
      },
    },
    batch: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        concurrency: {
          type: 'integer',
          minimum: 1,
          maximum: 8,
          default: 2,
          description: 'batch chunks worked on toward central at once (submitted and being fetched)',
        },
        chunkSize: {
          type: 'integer',
          minimum: 1,
          maximum: 2000,
          default: 1000,
          description:
            'entries per OQSmuquc01req; a larger batch is split (the JSON answer of ~2,800 entries hits the reader limit)',
        },
        pollMs: {
          type: 'integer',
          minimum: 100,
          maximum: 600000,
          default: 5000,
          description:
            'first wait before fetching a submitted chunk again while central says 処理中; doubles up to pollMaxMs',
        },
        pollMaxMs: {
          type: 'integer',
          minimum: 100,
          maximum: 3600000,
          default: 60000,
          description:
            'longest wait between two fetches of one chunk (also the retry cap when central cannot be reached)',
        },
        schedule: {
          type: 'string',
          minLength: 9,
          default: '30 6 * * *',
          description: 'cron schedule (Asia/Tokyo) on which batches submitted with run "scheduled" are started',
        },
        maxEntries: {
          type: 'integer',
          minimum: 1,
          maximum: 10000,
          default: 10000,
          description: 'largest batch a receipt computer may submit',
        },
        retentionDays: {
          type: 'integer',
          minimum: 1,
          maximum: 3650,
          default: 30,
          description:
            'a finished batch (its entries and results are personal data) is deleted this many days after it finished; checked on the batch schedule and at start',
        },
      },
    },
    rechecks: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: {
          type: 'boolean',
          default: true,
          description:
            "recheck 無効 / 無効（新しい資格あり） / 該当資格なし answers daily (the new insurer's registration lag) for patients the receipt computer flags changedInsurer",
        },
        all: { type: 'boolean', default: false, description: 'recheck every such answer, flagged or not' },
        windowDays: {
          type: 'integer',
          minimum: 1,
          maximum: 60,
          default: 10,
          description: "how many days a recheck goes on (the insurers' registration deadline is 10 days)",
        },
        schedule: {
          type: 'string',
          minLength: 9,
          default: '0 7 * * *',
          description: 'cron schedule (Asia/Tokyo) of the daily recheck job; `onshi rechecks run` runs it now',
        },
      },
    },
    tls: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        hostnames: {
          type: 'array',
          default: [],
          uniqueItems: true,
          maxItems: 32,
          items: {
            type: 'string',
            pattern: '^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$',
          },
          description:
            "host names in the gateway's own certificate (comma-separated in the environment); empty = this machine's name, NAME.local and localhost",
        },
        ips: {
          type: 'array',
          default: [],
          uniqueItems: true,
          maxItems: 32,
          items: { type: 'string', pattern: '^[0-9A-Fa-f:.]{2,45}$' },
          description: 'IP addresses in the certificate, besides 127.0.0.1 and ::1 (always included)',
        },
        validityDays: {
          type: 'integer',
          minimum: 30,
          maximum: 825,
          default: 825,
          description:
            'lifetime of a newly made certificate (the key is kept on renewal, so a pinned public key stays valid)',
        },
        renewDaysBefore: {
          type: 'integer',
          minimum: 1,
          maximum: 365,
          default: 30,
          description: 'renew the certificate at start when it expires within this many days',
        },
      },
    },
    admin: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: true, description: 'serve the admin page (HTTPS, login required)' },
        host: {
          type: 'string',
          default: '0.0.0.0',
          description: 'address the admin page listens on (the clinic LAN; it is TLS and login only)',
        },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 8443, description: 'admin page port (HTTPS)' },
        sessionIdleMinutes: {
          type: 'integer',
          minimum: 1,
          maximum: 1440,
          default: 30,
          description: 'an admin session ends after this long without a request',
        },
        sessionMaxHours: {
          type: 'integer',
          minimum: 1,
          maximum: 72,
          default: 12,
          description: 'an admin session ends this long after login, used or not',
        },
        loginMaxFailures: {
          type: 'integer',
          minimum: 1,
          maximum: 100,
          default: 5,
          description: 'failed logins from one address before it must wait',
        },
        loginLockoutSeconds: {
          type: 'integer',
          minimum: 1,
          maximum: 86400,
          default: 300,
          description:
            'how long an address waits after too many failed logins (doubles on each further lockout, up to a day)',
        },
      },
    },
    audit: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        retentionDays: {
          type: 'integer',
          minimum: 1,
          maximum: 3650,
          default: 90,
          description:
            "the audit log's personal fields (request ids, what identified the patient) are purged after this many days; the chained, non-personal fields stay",
        },
        purgeSchedule: {
          type: 'string',
          minLength: 9,
          default: '41 3 * * *',
          description: 'cron schedule (Asia/Tokyo) of the retention purge; it also runs at start',
        },
      },
    },
    fileExchange: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: {
          type: 'boolean',
          default: false,
          description:
            'answer the official file exchange (req/res folders) for receipt computers that talk to the 資格確認端末 that way',
        },
        reqDir: {
          type: 'string',
          default: '',
          description: 'the req folder the receipt computer drops OQS…req_*.xml into (must exist: never created)',
        },
        resDir: {
          type: 'string',
          default: '',
          description:
            'the res folder answers are written into (must exist; answers appear by rename from a hidden .tmp name)',
        },
        faceDir: {
          type: 'string',
          default: '',
          description:
            'folder for the face-reader style result of every card check (OQSsiquc01res_face_*); empty = resDir',
        },
        doneDir: {
          type: 'string',
          default: '',
          description:
            'move answered requests here instead of deleting them (must exist, same file system as reqDir); empty = delete',
        },
        encoding: {
          enum: ['request', 'UTF-8', 'Shift_JIS'],
          default: 'request',
          description:
            "answers' encoding and CharacterCodeIdentifier: that of the request, or fixed per site; face files use UTF-8 unless Shift_JIS is set",
        },
        faceFiles: {
          type: 'boolean',
          default: true,
          description: 'write a face-reader style result file for every card check made at the gateway',
        },
        pollMs: {
          type: 'integer',
          minimum: 100,
          maximum: 10000,
          default: 500,
          description:
            'the req folder is scanned this often besides file-system events (which some file systems do not deliver)',
        },
        settleMs: {
          type: 'integer',
          minimum: 0,
          maximum: 60000,
          default: 300,
          description:
            'a request is read only after its size and time have not changed for this long (it may still be being written)',
        },
        maxBytes: {
          type: 'integer',
          minimum: 1024,
          maximum: 16777216,
          default: 4194304,
          description: 'a larger request file gets an error answer without being parsed',
        },
        deadlineMs: {
          type: 'integer',
          minimum: 1000,
          maximum: 120000,
          default: 15000,
          description: 'deadline of one single check from a request file (outage answers included)',
        },
        batchWaitMs: {
          type: 'integer',
          minimum: 0,
          maximum: 600000,
          default: 60000,
          description:
            'an OQSmuquc02req waits up to this long for central to finish the batch before it is answered 処理中 (SegmentOfResult 2: send another 02req later)',
        },
        batchPollMs: {
          type: 'integer',
          minimum: 200,
          maximum: 60000,
          default: 5000,
          description: 'while waiting, ask central this often',
        },
        concurrency: {
          type: 'integer',
          minimum: 1,
          maximum: 32,
          default: 4,
          description: 'request files processed at once',
        },
        fileMode: {
          type: 'string',
          pattern: '^0?[0-7]{3}$',
          default: '640',
          description: "permissions (octal) of answer files: the receipt computer's account must be able to read them",
        },
        journalDays: {
          type: 'integer',
          minimum: 1,
          maximum: 365,
          default: 7,
          description: 'how long the record of an answered request is kept (it stops a restart answering twice)',
        },
      },
    },
    health: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: {
          type: 'boolean',
          default: true,
          description: 'serve /healthz, /readyz, /metrics and /status on 127.0.0.1 (never on another address)',
        },
        port: {
          type: 'integer',
          minimum: 0,
          maximum: 65535,
          default: 8766,
          description: 'loopback port of the health and metrics endpoints (`onshi status` reads it)',
        },
      },
    },
  },
} as const;

export interface GatewayConfig {
  stateDir: string;
  institutionCode: string;
  log: { level: 'error' | 'warn' | 'info' | 'debug' };
  api: {
    host: string;
    tls: 'auto' | 'on' | 'off';
    port: number;
    maxPayloadBytes: number;
    heartbeatMs: number;
    maxConnections: number;
    defaultDeadlineMs: number;
    shutdownGraceMs: number;
  };
  central: {
    url: string;
    caFile: string;
    certFile: string;
    keyFile: string;
    servername: string;
    userId: string;
    passwordFile: string;
    timeoutMs: number;
  };
  reader: { enabled: boolean; readerName: string; jpkiCaFile: string };
  outage: {
    cacheMaxAgeHours: number;
    offlineReserveMs: number;
    outboxMax: number;
    outboxTtlHours: number;
    relayConcurrency: number;
    retryBudgetRatio: number;
    failureThreshold: number;
    slowMs: number;
    probeIntervalMs: number;
    probeTimeoutMs: number;
    backoffBaseMs: number;
    backoffCapMs: number;
    revocationSchedule: string;
    revocationMaxAgeHours: number;
  };
  batch: {
    concurrency: number;
    chunkSize: number;
    pollMs: number;
    pollMaxMs: number;
    schedule: string;
    maxEntries: number;
    retentionDays: number;
  };
  rechecks: { enabled: boolean; all: boolean; windowDays: number; schedule: string };
  tls: { hostnames: string[]; ips: string[]; validityDays: number; renewDaysBefore: number };
  admin: {
    enabled: boolean;
    host: string;
    port: number;
    sessionIdleMinutes: number;
    sessionMaxHours: number;
    loginMaxFailures: number;
    loginLockoutSeconds: number;
  };
  audit: { retentionDays: number; purgeSchedule: string };
  health: { enabled: boolean; port: number };
  fileExchange: FileExchangeConfig;
}

export interface FileExchangeConfig {
  enabled: boolean;
  reqDir: string;
  resDir: string;
  faceDir: string;
  doneDir: string;
  encoding: 'request' | 'UTF-8' | 'Shift_JIS';
  faceFiles: boolean;
  pollMs: number;
  settleMs: number;
  maxBytes: number;
  deadlineMs: number;
  batchWaitMs: number;
  batchPollMs: number;
  concurrency: number;
  fileMode: string;
  journalDays: number;
}

export type ConfigErrorCode = 'CONFIG_INVALID' | 'CONFIG_UNREADABLE';

type SchemaNode = {
  type?: string;
  enum?: readonly string[];
  default?: unknown;
  description?: string;
  properties?: Record<string, SchemaNode>;
};

// Compiled per validation and then dropped: the config is validated once at start (and at an
// admin page save), so keeping the compiled validator and its Ajv alive would only hold memory.
const compileConfigValidator = () =>
  new Ajv({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true }).compile<GatewayConfig>(
    CONFIG_SCHEMA,
  );

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
    '<!-- generated from src/core/config.ts by `npm run docs`; do not edit by hand -->',
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

function applyEnv(target: Record<string, unknown>, env: NodeJS.ProcessEnv, origins: Map<string, string>): void {
  for (const leaf of configLeaves()) {
    const raw = env[leaf.env];
    if (raw === undefined) continue;
    let value: unknown = raw;
    if (leaf.type === 'integer') value = /^-?\d+$/.test(raw.trim()) ? Number(raw.trim()) : raw;
    else if (leaf.type === 'number') value = /^-?\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw.trim()) : raw;
    else if (leaf.type === 'array')
      value = raw
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== '');
    else if (leaf.type === 'boolean')
      value = raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw;
    let obj = target;
    for (const seg of leaf.path.slice(0, -1)) {
      const next = obj[seg];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) obj[seg] = {};
      obj = obj[seg] as Record<string, unknown>;
    }
    obj[leaf.path[leaf.path.length - 1]!] = value;
    origins.set('/' + leaf.path.join('/'), `environment ${leaf.env}`);
  }
}

function describe(err: ErrorObject, origins: Map<string, string>): string {
  let where = err.instancePath || '/';
  let why = err.message ?? 'is invalid';
  if (err.keyword === 'additionalProperties') {
    where = `${err.instancePath}/${String((err.params as { additionalProperty: string }).additionalProperty)}`;
    why = 'is not a known setting';
  } else if (err.keyword === 'enum') {
    why = `must be one of ${(err.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  const origin = origins.get(where);
  return `${where.replace(/^\//, '').replace(/\//g, '.') || '(root)'} ${why}${origin ? ` (from ${origin})` : ''}`;
}

/** Validates a config object (defaults filled in place). Throws CONFIG_INVALID naming every bad key. */
export function validateConfig(input: unknown, origins = new Map<string, string>()): GatewayConfig {
  const candidate = structuredClone(input ?? {});
  const validate = compileConfigValidator();
  if (!validate(candidate)) {
    const problems = (validate.errors ?? []).map((e) => describe(e, origins));
    throw new OnshiError<ConfigErrorCode>('CONFIG_INVALID', `invalid configuration: ${problems.join('; ')}`, {
      details: { problems },
    });
  }
  return candidate;
}

/**
 * Loads the config file (when given), then environment overrides, then validates.
 * A missing file is an error only when it was named explicitly.
 */
export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv; explicit?: boolean } = {}): GatewayConfig {
  const env = opts.env ?? process.env;
  const origins = new Map<string, string>();
  let base: Record<string, unknown> = {};
  if (opts.file) {
    let text: string | undefined;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' || opts.explicit) {
        throw new OnshiError<ConfigErrorCode>(
          'CONFIG_UNREADABLE',
          `cannot read config file ${opts.file}: ${code ?? String(e)}`,
          { details: { file: opts.file } },
        );
      }
    }
    if (text !== undefined) {
      try {
        const parsed: unknown = JSON.parse(text);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
          throw new Error('the top level must be a JSON object');
        base = parsed as Record<string, unknown>;
      } catch (e) {
        throw new OnshiError<ConfigErrorCode>(
          'CONFIG_INVALID',
          `config file ${opts.file} is not valid JSON: ${(e as Error).message}`,
          { details: { file: opts.file } },
        );
      }
      const mark = (obj: Record<string, unknown>, prefix: string): void => {
        for (const [k, v] of Object.entries(obj)) {
          origins.set(`${prefix}/${k}`, `file ${opts.file}`);
          if (typeof v === 'object' && v !== null && !Array.isArray(v))
            mark(v as Record<string, unknown>, `${prefix}/${k}`);
        }
      };
      mark(base, '');
    }
  }
  applyEnv(base, env, origins);
  return validateConfig(base, origins);
}
