/**
 * `onshi` — the command line: run the daemon, manage receipt-computer tokens, run a check.
 * (`onshi sim …` and `onshi sandbox` are dispatched by bin/onshi.js to src/sim/cli.ts, so that
 * production code never imports the simulators.)
 */
import { randomUUID } from 'node:crypto';
import { verifyAuditFile } from '../cache/index.js';
import { OnshiError } from '../core/errors.js';
import { ClientStore } from '../api/tokens.js';
import { GatewayClient, type RequestOf } from '../client/index.js';
import { parseCliArgs, type CliOptions } from './args.js';
import { loadConfig } from '../core/config.js';
import { effectiveScopes } from '../protocol/scopes.js';
import { startGateway } from '../daemon/index.js';
import { createLogger, type Logger } from '../core/logger.js';

/** The fields a check adds to its question, as the inquiry command collects them from its options. */
type CheckContextArgs = Pick<RequestOf<'inquiry.numbers'>, 'knownFacts' | 'changedInsurer' | 'consent' | 'nameTarget'>;

const DEFAULT_CONFIG = '/etc/onshi-gateway/config.json';

const USAGE = `usage: onshi <command> [options]

  start [--config FILE]                 run the gateway daemon
  clients add NAME [--scope S[,S…]] [--config FILE]
                                        create a receipt-computer client; prints its token once.
                                        Scopes: full (default), inquiry, batch, events:read, admin-ops
  clients list [--config FILE]          list clients and their scopes (never tokens)
  clients revoke ID|NAME [--config FILE]
  audit verify [--config FILE] [--json] check the audit log's hash chain (read-only); exit 1 if broken
  status [--json]                       reader, card, line, outbox, cache, clock, certificates, TLS
                                        fingerprint (exit 0 ready, 1 not ready, 3 not running)
  doctor [--json] [--credentials DIR]   check pcscd, the reader, the line and TLS to central, the
                                        clock, disk space and SD write latency; says what to do
  admin reset                           new initial admin secret (printed once); ends admin sessions
  backup [--out FILE] (--passphrase-file FILE | --no-encrypt)
                                        config, keys and clients (not the cache); 0600, encrypted
                                        with a passphrase (or $ONSHI_BACKUP_PASSPHRASE)
  restore FILE [--only config,state,credentials] [--dry-run] [--force] [--passphrase-file FILE]
  support-bundle [--out FILE]           config without secrets, status, versions, redacted logs
  inquiry --numbers INSURER,SYMBOL,NUMBER,BRANCH --birthdate YYYYMMDD
          [--limit-consent] [--date YYYYMMDD] [--deadline MS] [--ws URL] [--token TOKEN]
                                        one check by insurance numbers; prints the result as JSON
  inquiry --card [--visual] [--confirm-last-try] [--limit-consent] [--reader NAME] …
                                        one check by My Number card; the PIN is read from standard
                                        input (one line per attempt), never from an argument
          both: [--known-birthdate D] [--known-kana KANA] [--known-sex 1|2] [--changed-insurer]
          [--consent medication,healthCheck,treatment,surgery] [--name-target shift_jis|cp932]
  reconciliation [list [--all] | handle ID] [--json] [--ws URL] [--token TOKEN]
                                        outage checks whose re-verification changed the answer
  batch submit FILE [--now] [--date YYYYMMDD] [--json] [--ws URL] [--token TOKEN]
                                        a batch inquiry (一括照会) from a CSV or JSON file (each entry
                                        with its own arbitraryId); without --now it waits for the
                                        batch schedule; prints the batch ID
  batch status ID [--json]              progress of a batch
  batch results ID [--json]             one line (or JSON object) per entry, keyed by arbitraryId
  rechecks [list [--state scheduled|found|expired] | run] [--json] [--ws URL] [--token TOKEN]
                                        time-lag rechecks after a change of insurer; run = the
                                        daily job, now
  sim …, sandbox                        simulators and the sandbox (see onshi sim --help)

The config file defaults to $ONSHI_CONFIG or ${DEFAULT_CONFIG}; every setting can be overridden with
ONSHI_* environment variables (see README). inquiry, reconciliation and batch read --ws/--token or
ONSHI_WS/ONSHI_TOKEN.`;

/** Exit codes: 0 ok, 1 the operation failed (typed error on stderr), 2 usage. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'start':
        return await cmdStart(rest);
      case 'clients':
        return cmdClients(rest);
      case 'inquiry':
        return await cmdInquiry(rest);
      case 'audit':
        return cmdAudit(rest);
      // The other commands' modules are loaded only for them: the daemon (`start`) never needs them.
      case 'status':
        return await (await import('./status.js')).cmdStatus(rest, cliContext);
      case 'doctor':
        return await (await import('./doctor.js')).cmdDoctor(rest, cliContext);
      case 'admin':
        return await (await import('./admin.js')).cmdAdmin(rest, cliContext);
      case 'backup':
        return await (await import('./backup.js')).cmdBackup(rest, cliContext);
      case 'restore':
        return await (await import('./backup.js')).cmdRestore(rest, cliContext);
      case 'support-bundle':
        return await (await import('./backup.js')).cmdSupportBundle(rest, cliContext);
      case 'reconciliation':
        return await (await import('./reconciliation.js')).cmdReconciliation(rest, cliContext);
      case 'batch':
        return await (await import('./batch.js')).cmdBatch(rest, cliContext);
      case 'rechecks':
        return await (await import('./rechecks.js')).cmdRechecks(rest, cliContext);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE + '\n');
        return command === undefined ? 2 : 0;
      default:
        process.stderr.write(`onshi: unknown command "${command}"\n${USAGE}\n`);
        return 2;
    }
  } catch (e) {
    return fail(e);
  }
}

export function fail(e: unknown): number {
  if (e instanceof UsageError) {
    process.stderr.write(`onshi: ${e.message}\n`);
    return 2;
  }
  const body = e instanceof OnshiError ? e.toJSON() : { code: 'INTERNAL', message: (e as Error)?.message ?? String(e) };
  process.stderr.write(JSON.stringify({ error: body }) + '\n');
  return 1;
}

export class UsageError extends Error {}

function args<T extends CliOptions>(argv: string[], options: T, positionals = 0) {
  return parseCliArgs(argv, options, (m) => new UsageError(m), positionals);
}

function configFrom(file: string | undefined) {
  const explicit = file !== undefined || process.env.ONSHI_CONFIG !== undefined;
  return loadConfig({ file: file ?? process.env.ONSHI_CONFIG ?? DEFAULT_CONFIG, explicit });
}

/** What the subcommand modules (cli-*.ts) get instead of importing this file back. */
const cliContext = { config: configFrom, usage: (message: string): Error => new UsageError(message) };

async function cmdStart(argv: string[]): Promise<number> {
  const { values } = args(argv, { config: { type: 'string' } });
  const configFile = values.config ?? process.env.ONSHI_CONFIG ?? DEFAULT_CONFIG;
  const config = configFrom(values.config);
  const logger = createLogger({ level: config.log.level });
  const gateway = await startGateway(config, { logger, configFile });
  if (process.env.ONSHI_MEMORY_REPORT === '1') reportMemoryOnSignal(logger);
  return new Promise((resolve) => {
    const stop = (signal: string): void => {
      logger.info('signal received', { event: 'signal', signal });
      void gateway.close().then(() => resolve(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/**
 * For the footprint benchmark (bench/footprint.ts): with ONSHI_MEMORY_REPORT=1, SIGUSR2 logs the
 * process's memory as a `memory` event, after a full GC when node runs with --expose-gc, so heap
 * growth is measured without an inspector. Off by default: nothing listens for SIGUSR2.
 */
function reportMemoryOnSignal(logger: Logger): void {
  process.on('SIGUSR2', () => {
    (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    logger.info('memory', {
      event: 'memory',
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
    });
  });
}

function cmdClients(argv: string[]): number {
  const [sub, ...rest] = argv;
  const { values, positionals } = args(
    rest,
    { config: { type: 'string' }, json: { type: 'boolean' }, scope: { type: 'string', multiple: true } },
    1,
  );
  if (values.scope && sub !== 'add') throw new UsageError('--scope is for clients add');
  const store = new ClientStore(configFrom(values.config).stateDir);
  switch (sub) {
    case 'add': {
      if (!positionals[0]) throw new UsageError('clients add needs a NAME');
      const scopes = values.scope
        ?.flatMap((s) => s.split(','))
        .map((s) => s.trim())
        .filter(Boolean) ?? ['full'];
      const { client, token } = store.add(positionals[0], scopes);
      if (values.json)
        process.stdout.write(JSON.stringify({ id: client.id, name: client.name, scopes: client.scopes, token }) + '\n');
      else
        process.stdout.write(
          `client ${client.name} (${client.id}, scopes ${effectiveScopes(client.scopes).join(',')}) created. Its token, shown only now:\n${token}\n`,
        );
      return 0;
    }
    case 'list': {
      const list = store.list().map(({ hash: _hash, ...c }) => ({ ...c, scopes: effectiveScopes(c.scopes) }));
      process.stdout.write(
        values.json
          ? JSON.stringify(list) + '\n'
          : list
              .map(
                (c) =>
                  `${c.id}  ${c.name}  ${c.scopes.join(',')}  created ${c.createdAt}${c.revokedAt ? `  REVOKED ${c.revokedAt}` : ''}`,
              )
              .join('\n') + (list.length ? '\n' : 'no clients\n'),
      );
      return 0;
    }
    case 'revoke': {
      if (!positionals[0]) throw new UsageError('clients revoke needs an ID or NAME');
      const c = store.revoke(positionals[0]);
      process.stdout.write(`client ${c.name} (${c.id}) revoked\n`);
      return 0;
    }
    default:
      throw new UsageError('clients add|list|revoke');
  }
}

/** Read-only: safe while the daemon runs (run it as the gateway's user, which can read the key). */
function cmdAudit(argv: string[]): number {
  const [sub, ...rest] = argv;
  if (sub !== 'verify') throw new UsageError('audit verify [--config FILE] [--json]');
  const { values } = args(rest, { config: { type: 'string' }, json: { type: 'boolean' } });
  const r = verifyAuditFile({ dir: configFrom(values.config).stateDir });
  if (values.json) process.stdout.write(JSON.stringify(r) + '\n');
  else if (r.ok) process.stdout.write(`audit log OK: ${r.entries} entries, head ${r.head.seq} ${r.head.hash}\n`);
  else
    process.stdout.write(
      `audit log BROKEN at entry ${r.seq} (${r.reason}): ${r.message}; ${r.entries} entries verified before it\n`,
    );
  return r.ok ? 0 : 1;
}

async function cmdInquiry(argv: string[]): Promise<number> {
  const { values } = args(argv, {
    numbers: { type: 'string' },
    birthdate: { type: 'string' },
    'limit-consent': { type: 'boolean' },
    date: { type: 'string' },
    deadline: { type: 'string' },
    ws: { type: 'string' },
    token: { type: 'string' },
    card: { type: 'boolean' },
    visual: { type: 'boolean' },
    'confirm-last-try': { type: 'boolean' },
    reader: { type: 'string' },
    'known-birthdate': { type: 'string' },
    'known-kana': { type: 'string' },
    'known-sex': { type: 'string' },
    'changed-insurer': { type: 'boolean' },
    consent: { type: 'string' },
    'name-target': { type: 'string' },
  });
  // What the check adds to its question (the same on both flows). The gateway validates the values:
  // what the user typed goes as typed (the casts below), and a wrong one comes back INVALID_MESSAGE.
  const context: CheckContextArgs = {};
  const known: NonNullable<CheckContextArgs['knownFacts']> = {};
  if (values['known-birthdate']) known.birthdate = values['known-birthdate'];
  if (values['known-kana']) known.nameKana = values['known-kana'];
  if (values['known-sex']) known.sex = values['known-sex'] as '1' | '2' | '3';
  if (Object.keys(known).length > 0) context.knownFacts = known;
  if (values['changed-insurer']) context.changedInsurer = true;
  if (values.consent)
    context.consent = Object.fromEntries(
      values.consent
        .split(',')
        .filter(Boolean)
        .map((c) => [c.trim(), true]),
    ) as CheckContextArgs['consent'];
  if (values['name-target']) context.nameTarget = values['name-target'] as CheckContextArgs['nameTarget'];
  const url = values.ws ?? process.env.ONSHI_WS;
  const token = values.token ?? process.env.ONSHI_TOKEN;
  if (!url || !token) throw new UsageError('inquiry needs --ws and --token (or ONSHI_WS and ONSHI_TOKEN)');
  if (values.card) {
    if (values.numbers || values.birthdate) throw new UsageError('--card and --numbers are alternatives');
    const msg: RequestOf<'inquiry.card'> = {
      type: 'inquiry.card',
      mode: values.visual ? 'visual' : 'pin',
      limitConsent: values['limit-consent'] ?? false,
      ...context,
    };
    if (values.date) msg.confirmationDate = values.date;
    if (values.deadline) msg.deadlineMs = Number(values.deadline);
    if (values.reader) msg.readerName = values.reader;
    return cardInquiry(url, token, msg, values['confirm-last-try'] ?? false);
  }
  if (!values.numbers || !values.birthdate)
    throw new UsageError('inquiry needs --numbers INSURER,SYMBOL,NUMBER,BRANCH and --birthdate YYYYMMDD');
  const parts = values.numbers.split(',');
  if (parts.length !== 4)
    throw new UsageError(
      '--numbers is INSURER,SYMBOL,NUMBER,BRANCH (leave SYMBOL or BRANCH empty when the card has none)',
    );
  const [insurerNumber, symbol, number, branch] = parts as [string, string, string, string];
  const query: RequestOf<'inquiry.numbers'>['query'] = {
    insurerNumber,
    number,
    birthdate: values.birthdate,
    limitConsent: values['limit-consent'] ?? false,
  };
  if (symbol !== '') query.symbol = symbol;
  if (branch !== '') query.branch = branch;
  const msg: RequestOf<'inquiry.numbers'> = { type: 'inquiry.numbers', query, ...context };
  if (values.date) msg.confirmationDate = values.date;
  if (values.deadline) msg.deadlineMs = Number(values.deadline);
  const client = await GatewayClient.connect(url, token);
  try {
    const answer = await client.request(msg);
    process.stdout.write(JSON.stringify(answer.result, null, 2) + '\n');
    return 0;
  } finally {
    await client.close();
  }
}

/**
 * The card check from a terminal. Each line of standard input is one PIN attempt: a wrong PIN is
 * reported with the tries left and the next line is used only if there is one — the CLI never
 * sends the same PIN twice by itself. With one try left it stops unless --confirm-last-try.
 */
async function cardInquiry(
  url: string,
  token: string,
  msg: RequestOf<'inquiry.card'>,
  confirmLastTry: boolean,
): Promise<number> {
  const client = await GatewayClient.connect(url, token);
  const pins = pinLines();
  const id = randomUUID();
  let stopWith: OnshiError | undefined;
  const stop = (e: OnshiError): void => {
    stopWith = e;
    void client.request({ type: 'inquiry.cancel', inquiryId: id }).catch(() => {});
  };
  let lastWrong: number | undefined;
  try {
    const answer = await client.request(
      { ...msg, id },
      {
        onProgress: (m) => {
          if (m.type === 'inquiry.progress') process.stderr.write(`onshi: ${m.stage.replace(/_/g, ' ')}\n`);
          else if (m.type === 'pin.wrong') {
            lastWrong = m.triesLeft;
            process.stderr.write(`onshi: wrong PIN, ${lastWrong} ${lastWrong === 1 ? 'try' : 'tries'} left\n`);
          } else if (m.type === 'pin.refused') process.stderr.write(`onshi: ${String(m.message)}\n`);
          else if (m.type === 'pin.required') {
            const triesLeft = m.triesLeft;
            if (m.confirmRequired && !confirmLastTry) {
              return stop(
                new OnshiError(
                  'CARD_PIN_CONFIRM_REQUIRED',
                  'Only one try is left: a wrong PIN blocks the card. Run again with --confirm-last-try to use it.',
                  { details: { triesLeft } },
                ),
              );
            }
            void pins.next(`PIN (${triesLeft} ${triesLeft === 1 ? 'try' : 'tries'} left): `).then((pin) => {
              if (pin === undefined) {
                return stop(
                  lastWrong !== undefined
                    ? new OnshiError(
                        'CARD_PIN_WRONG',
                        `wrong PIN; ${lastWrong} ${lastWrong === 1 ? 'try' : 'tries'} left`,
                        { details: { triesLeft: lastWrong } },
                      )
                    : new OnshiError('CARD_PIN_MISSING', 'no PIN on standard input', { details: { triesLeft } }),
                );
              }
              return client
                .request({ type: 'pin.submit', inquiryId: id, pin, confirmLastTry })
                .catch((e: unknown) => stop(e as OnshiError));
            });
          }
        },
      },
    );
    process.stdout.write(JSON.stringify(answer.result, null, 2) + '\n');
    return 0;
  } catch (e) {
    if (stopWith) return fail(stopWith);
    throw e;
  } finally {
    pins.close();
    await client.close();
  }
}

/** PIN lines from standard input; on a terminal, typed without echo. */
function pinLines(): { next(prompt: string): Promise<string | undefined>; close(): void } {
  const stdin = process.stdin;
  const queue: string[] = [];
  const waiters: ((v: string | undefined) => void)[] = [];
  let ended = false;
  let buf = '';
  const push = (line: string | undefined): void => {
    const w = waiters.shift();
    if (w) w(line);
    else if (line !== undefined) queue.push(line);
  };
  const onData = (chunk: Buffer): void => {
    for (const ch of chunk.toString('utf8')) {
      if (ch === '\u0003') {
        process.stderr.write('\n');
        process.exit(130);
      }
      if (ch === '\r' || ch === '\n') {
        if (stdin.isTTY) process.stderr.write('\n');
        push(buf.trim());
        buf = '';
      } else if (ch === '\u007f' || ch === '\b') buf = buf.slice(0, -1);
      else buf += ch;
    }
  };
  const onEnd = (): void => {
    ended = true;
    if (buf.trim()) push(buf.trim());
    buf = '';
    while (waiters.length) waiters.shift()!(undefined);
  };
  if (stdin.isTTY) stdin.setRawMode(true);
  stdin.on('data', onData);
  stdin.on('end', onEnd);
  return {
    next(prompt) {
      if (queue.length) return Promise.resolve(queue.shift());
      if (ended) return Promise.resolve(undefined);
      if (stdin.isTTY) process.stderr.write(prompt);
      return new Promise((r) => waiters.push(r));
    },
    close() {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
    },
  };
}
