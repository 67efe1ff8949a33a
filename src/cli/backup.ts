/**
 * `onshi backup`, `onshi restore` and `onshi support-bundle`. Run as root on the appliance: the
 * credentials are root's. Archives and bundles are written 0600.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { parseCliArgs } from './args.js';
import { writeFileAtomic } from '../core/atomic-file.js';
import {
  type BackupArea,
  backupFileName,
  collectBackupFiles,
  isEncryptedBackup,
  packBackup,
  restoreFiles,
  unpackBackup,
} from '../ops/backup.js';
import { type CliContext, daemonStatus, DEFAULT_CREDENTIALS_DIR, fetchLocal, healthPortOf } from './status.js';
import { buildSupportBundle, versions } from '../ops/support-bundle.js';

const DEFAULT_CONFIG = '/etc/onshi-gateway/config.json';
const PASS_ENV = 'ONSHI_BACKUP_PASSPHRASE';

type Opts = Record<string, { type: 'string' | 'boolean'; short?: string }>;

function parse(
  argv: string[],
  options: Opts,
  ctx: CliContext,
  positionals = 0,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const r = parseCliArgs(argv, options, (m) => ctx.usage(m), positionals);
  return { values: r.values as Record<string, string | boolean | undefined>, positionals: r.positionals };
}

/** From --passphrase-file or $ONSHI_BACKUP_PASSPHRASE; never from an argument (it would show in ps). */
function passphrase(file: string | undefined): string | undefined {
  if (file) return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  return process.env[PASS_ENV] || undefined;
}

const configPath = (given: string | undefined): string => given ?? process.env.ONSHI_CONFIG ?? DEFAULT_CONFIG;

export async function cmdBackup(argv: string[], ctx: CliContext): Promise<number> {
  const out = ctx.out ?? ((s: string) => void process.stdout.write(s));
  const { values } = parse(
    argv,
    {
      config: { type: 'string' },
      out: { type: 'string', short: 'o' },
      credentials: { type: 'string' },
      'passphrase-file': { type: 'string' },
      'no-encrypt': { type: 'boolean' },
    },
    ctx,
  );
  const pass = passphrase(values['passphrase-file'] as string | undefined);
  if (!pass && !values['no-encrypt']) {
    throw ctx.usage(
      `backup holds private keys: give --passphrase-file FILE or set ${PASS_ENV}, or pass --no-encrypt to write it unencrypted (0600)`,
    );
  }
  const cfgFile = configPath(values.config as string | undefined);
  const config = ctx.config(values.config as string | undefined);
  const { files, skipped } = collectBackupFiles({
    configFile: cfgFile,
    stateDir: config.stateDir,
    credentialsDir: (values.credentials as string | undefined) ?? DEFAULT_CREDENTIALS_DIR,
  });
  const target = (values.out as string | undefined) ?? backupFileName();
  writeFileAtomic(target, await packBackup(files, pass), 0o600);
  out(
    `backup written to ${target} (${pass ? 'encrypted' : 'NOT encrypted'}, mode 0600): ${files.map((f) => `${f.area}/${f.name}`).join(', ')}\n`,
  );
  for (const s of skipped) out(`  skipped ${s.path}: ${s.reason}${s.reason === 'EACCES' ? ' (run as root)' : ''}\n`);
  return skipped.length ? 1 : 0;
}

export async function cmdRestore(argv: string[], ctx: CliContext): Promise<number> {
  const out = ctx.out ?? ((s: string) => void process.stdout.write(s));
  const { values, positionals } = parse(
    argv,
    {
      config: { type: 'string' },
      credentials: { type: 'string' },
      'passphrase-file': { type: 'string' },
      only: { type: 'string' },
      'dry-run': { type: 'boolean' },
      force: { type: 'boolean' },
    },
    ctx,
    1,
  );
  if (!positionals[0]) throw ctx.usage('restore needs the backup FILE');
  const data = readFileSync(positionals[0]);
  const areas = values.only ? (values.only as string).split(',').map((s) => s.trim()) : undefined;
  if (areas && !areas.every((a) => a === 'config' || a === 'state' || a === 'credentials'))
    throw ctx.usage('--only takes config,state,credentials');
  const config = ctx.config(values.config as string | undefined);
  if (
    !values['dry-run'] &&
    !values.force &&
    config.health.enabled &&
    healthPortOf(config) !== undefined &&
    (await fetchLocal(healthPortOf(config)!, '/healthz'))
  ) {
    throw ctx.usage('the gateway is running: stop it first (sudo systemctl stop onshi-gateway), or pass --force');
  }
  const pass = passphrase(values['passphrase-file'] as string | undefined);
  if (isEncryptedBackup(data) && !pass)
    throw ctx.usage(`this backup is encrypted: give --passphrase-file FILE or set ${PASS_ENV}`);
  const archive = await unpackBackup(data, pass);
  const r = restoreFiles(
    archive,
    {
      configFile: configPath(values.config as string | undefined),
      stateDir: config.stateDir,
      credentialsDir: (values.credentials as string | undefined) ?? DEFAULT_CREDENTIALS_DIR,
    },
    { ...(areas ? { areas: areas as BackupArea[] } : {}), dryRun: Boolean(values['dry-run']) },
  );
  out(
    `${values['dry-run'] ? 'would restore' : 'restored'} from ${archive.host} (${archive.createdAt}):\n${r.restored.map((p) => `  ${p}\n`).join('')}`,
  );
  for (const s of r.skipped) out(`  skipped ${s.name}: ${s.reason}\n`);
  if (!values['dry-run'] && r.restored.length) out('start the gateway again: sudo systemctl start onshi-gateway\n');
  return r.skipped.some((s) => s.reason !== 'not selected') ? 1 : 0;
}

function tryRun(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 20_000,
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch {
    return undefined;
  }
}

export async function cmdSupportBundle(argv: string[], ctx: CliContext): Promise<number> {
  const out = ctx.out ?? ((s: string) => void process.stdout.write(s));
  const { values } = parse(
    argv,
    { config: { type: 'string' }, out: { type: 'string', short: 'o' }, lines: { type: 'string' } },
    ctx,
  );
  const config = ctx.config(values.config as string | undefined);
  const status = await daemonStatus(config);
  const lines = Number(values.lines ?? 5000);
  // The journal needs root (or the adm group); without it the bundle says so instead of failing.
  const logs =
    existsSync('/bin/journalctl') || existsSync('/usr/bin/journalctl')
      ? (tryRun('journalctl', ['-u', 'onshi-gateway', '-n', String(lines), '-o', 'cat', '--no-pager']) ??
        '(journalctl failed: run as root for the logs)\n')
      : '(no journal on this machine)\n';
  const pcscd = tryRun('dpkg-query', [
    '-W', // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
    '-f=${Version}',
    'pcscd',
  ]);
  const bundle = buildSupportBundle({
    config,
    logs,
    ...(status ? { status } : {}),
    versions: versions(pcscd ? { pcscd } : {}),
    extra: { 'status-source.txt': status ? 'from the running daemon\n' : 'the daemon was not running\n' },
  });
  const target = (values.out as string | undefined) ?? bundle.filename;
  writeFileAtomic(target, bundle.data, 0o600);
  out(
    `support bundle written to ${target} (secrets and personal data removed; look inside before sending: tar -tzf ${target})\n`,
  );
  return 0;
}
