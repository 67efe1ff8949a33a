/**
 * Backup and restore of what cannot be rebuilt: the config file, the credentials (the clinic's
 * central certificate set, the cache key), the receipt-computer clients, the admin account and the
 * gateway's TLS identity. Not the cache: it is fetched again from central.
 *
 * The archive is gzip'd JSON, encrypted with AES-256-GCM under a scrypt key when a passphrase is
 * given (recommended: it holds private keys), and always written 0600.
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCb } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { matchOwner, writeFileAtomic } from '../core/atomic-file.js';
import { OnshiError } from '../core/errors.js';

export type BackupErrorCode =
  | 'BACKUP_PASSPHRASE_REQUIRED'
  | 'BACKUP_PASSPHRASE_WRONG'
  | 'BACKUP_CORRUPT'
  | 'BACKUP_PASSPHRASE_WEAK';

export type BackupArea = 'config' | 'state' | 'credentials';

export interface BackupPlan {
  configFile: string;
  stateDir: string;
  /** /etc/onshi-gateway/credentials on the appliance (root only); omitted = not backed up */
  credentialsDir?: string;
}

export interface BackupFile {
  area: BackupArea;
  /** relative to its area: "config.json", "clients.json", "tls/gateway.key", "cache.key" */
  name: string;
  mode: number;
  data: Buffer;
}

export interface BackupArchive {
  version: 1;
  createdAt: string;
  host: string;
  files: BackupFile[];
}

/** The state files worth keeping; everything else there (SQLite, WAL) is rebuildable. */
export const STATE_FILES = ['clients.json', 'admin.json', 'tls/gateway.key', 'tls/gateway.crt'] as const;
const CREDENTIAL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MAGIC = Buffer.from('ONSHIBK1');

/** Reads what the plan names; unreadable files are listed as skipped (e.g. credentials without root). */
export function collectBackupFiles(plan: BackupPlan): {
  files: BackupFile[];
  skipped: { path: string; reason: string }[];
} {
  const files: BackupFile[] = [];
  const skipped: { path: string; reason: string }[] = [];
  const take = (area: BackupArea, name: string, path: string, optional: boolean): void => {
    try {
      const st = statSync(path);
      if (!st.isFile()) return;
      files.push({ area, name, mode: st.mode & 0o777, data: readFileSync(path) });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'ERROR';
      if (!(optional && code === 'ENOENT')) skipped.push({ path, reason: code });
    }
  };
  take('config', 'config.json', plan.configFile, true);
  for (const f of STATE_FILES) take('state', f, join(plan.stateDir, f), true);
  if (plan.credentialsDir) {
    let names: string[] = [];
    try {
      names = readdirSync(plan.credentialsDir).filter((n) => CREDENTIAL_NAME.test(n));
    } catch (e) {
      skipped.push({ path: plan.credentialsDir, reason: (e as NodeJS.ErrnoException).code ?? 'ERROR' });
    }
    for (const n of names) take('credentials', n, join(plan.credentialsDir, n), false);
  }
  return { files, skipped };
}

function deriveKey(passphrase: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(passphrase.normalize('NFC'), salt, 32, { N: 32768, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }, (e, k) =>
      e ? reject(e) : resolve(k),
    ),
  );
}

/** Serialises (and encrypts, with a passphrase) an archive of the given files. */
export async function packBackup(files: BackupFile[], passphrase?: string, now = new Date()): Promise<Buffer> {
  if (passphrase !== undefined && passphrase.length < 8) {
    throw new OnshiError<BackupErrorCode>('BACKUP_PASSPHRASE_WEAK', 'a backup passphrase has at least 8 characters');
  }
  const archive = {
    version: 1,
    createdAt: now.toISOString(),
    host: hostname(),
    files: files.map((f) => ({ ...f, data: f.data.toString('base64') })),
  };
  const body = gzipSync(Buffer.from(JSON.stringify(archive)));
  if (passphrase === undefined) return Buffer.concat([MAGIC, Buffer.from([0]), body]);
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', await deriveKey(passphrase, salt), iv);
  cipher.setAAD(MAGIC);
  const enc = Buffer.concat([cipher.update(body), cipher.final()]);
  return Buffer.concat([MAGIC, Buffer.from([1]), salt, iv, cipher.getAuthTag(), enc]);
}

export function isEncryptedBackup(data: Buffer): boolean {
  return data.length > MAGIC.length && data.subarray(0, MAGIC.length).equals(MAGIC) && data[MAGIC.length] === 1;
}

export async function unpackBackup(data: Buffer, passphrase?: string): Promise<BackupArchive> {
  if (data.length < MAGIC.length + 1 || !data.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new OnshiError<BackupErrorCode>('BACKUP_CORRUPT', 'this is not an onshi-gateway backup');
  }
  let body = data.subarray(MAGIC.length + 1);
  if (data[MAGIC.length] === 1) {
    if (!passphrase)
      throw new OnshiError<BackupErrorCode>(
        'BACKUP_PASSPHRASE_REQUIRED',
        'this backup is encrypted: give its passphrase',
      );
    const salt = body.subarray(0, 16);
    const iv = body.subarray(16, 28);
    const tag = body.subarray(28, 44);
    const decipher = createDecipheriv('aes-256-gcm', await deriveKey(passphrase, salt), iv);
    decipher.setAAD(MAGIC);
    decipher.setAuthTag(tag);
    try {
      body = Buffer.concat([decipher.update(body.subarray(44)), decipher.final()]);
    } catch {
      throw new OnshiError<BackupErrorCode>('BACKUP_PASSPHRASE_WRONG', 'wrong passphrase, or the backup was altered');
    }
  }
  try {
    const raw = JSON.parse(gunzipSync(body).toString('utf8')) as {
      version: number;
      createdAt: string;
      host: string;
      files: { area: BackupArea; name: string; mode: number; data: string }[];
    };
    if (raw.version !== 1 || !Array.isArray(raw.files)) throw new Error('unexpected shape');
    return {
      version: 1,
      createdAt: raw.createdAt,
      host: raw.host,
      files: raw.files.map((f) => ({ ...f, data: Buffer.from(f.data, 'base64') })),
    };
  } catch (e) {
    throw new OnshiError<BackupErrorCode>('BACKUP_CORRUPT', `the backup is damaged: ${(e as Error).message}`);
  }
}

/** Where a file of the archive goes under this plan, or undefined when it is not one we restore. */
export function restoreTarget(f: Pick<BackupFile, 'area' | 'name'>, plan: BackupPlan): string | undefined {
  if (f.area === 'config') return f.name === 'config.json' ? plan.configFile : undefined;
  if (f.area === 'state')
    return (STATE_FILES as readonly string[]).includes(f.name) ? join(plan.stateDir, f.name) : undefined;
  if (f.area === 'credentials' && plan.credentialsDir && CREDENTIAL_NAME.test(f.name) && basename(f.name) === f.name)
    return join(plan.credentialsDir, f.name);
  return undefined;
}

/**
 * Writes the archive's files back (crash-safe, private modes). Only known names in known places:
 * an archive cannot write anywhere else. Areas not in `areas` are left alone.
 */
export function restoreFiles(
  archive: BackupArchive,
  plan: BackupPlan,
  opts: { areas?: BackupArea[]; dryRun?: boolean } = {},
): { restored: string[]; skipped: { name: string; reason: string }[] } {
  const restored: string[] = [];
  const skipped: { name: string; reason: string }[] = [];
  for (const f of archive.files) {
    if (opts.areas && !opts.areas.includes(f.area)) {
      skipped.push({ name: `${f.area}/${f.name}`, reason: 'not selected' });
      continue;
    }
    const target = restoreTarget(f, plan);
    if (!target) {
      skipped.push({ name: `${f.area}/${f.name}`, reason: 'not a file this gateway restores' });
      continue;
    }
    if (!opts.dryRun) {
      try {
        // Config stays as readable as the installer made it; everything else is private.
        writeFileAtomic(target, f.data, f.area === 'config' ? f.mode & 0o644 : 0o600);
        if (f.area === 'state') {
          if (dirname(target) !== plan.stateDir) matchOwner(dirname(target), plan.stateDir);
          matchOwner(target, plan.stateDir);
        }
      } catch (e) {
        skipped.push({
          name: `${f.area}/${f.name}`,
          reason: (e as NodeJS.ErrnoException).code ?? (e as Error).message,
        });
        continue;
      }
    }
    restored.push(target);
  }
  return { restored, skipped };
}

export function backupFileName(now = new Date()): string {
  return `onshi-backup-${hostname()}-${now.toISOString().replace(/[-:]/g, '').slice(0, 15)}.onshibak`;
}
