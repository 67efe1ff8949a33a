import {
  chownSync,
  closeSync,
  fchmodSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';

/**
 * Crash-safe file write: temp file in the same directory → fsync → rename → fsync the directory.
 * After a power cut the file is either the old or the new content, never a torn mix (the SD-card
 * appliance loses power without warning). Synchronous on purpose: used for small files (config,
 * keys, client tokens) where ordering matters more than latency. The directory is created (0700)
 * when missing; the file gets exactly `mode`, whatever the umask.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    fchmodSync(fd, mode);
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  fsyncDir(dir);
}

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself is still atomic there.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * The two halves of an atomic write, asynchronous, for folders that are not ours to create (the
 * file exchange): `writeTempFile` writes and fsyncs `data` under a hidden temp name in `dir` (which
 * must exist) and returns its path; `commitTempFile` renames it into place and fsyncs the folder.
 * Between the two a caller can record durably that the answer exists.
 */
export async function writeTempFile(dir: string, name: string, data: Uint8Array, mode = 0o600): Promise<string> {
  const tmp = join(dir, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.chmod(mode);
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {
      /* the write error is the one to report */
    });
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  return tmp;
}

export async function commitTempFile(tmp: string, path: string): Promise<void> {
  await rename(tmp, path);
  await fsyncDirAsync(dirname(path));
}

/** writeTempFile + commitTempFile. */
export async function writeFileAtomicAsync(path: string, data: Uint8Array, mode = 0o600): Promise<void> {
  await commitTempFile(await writeTempFile(dirname(path), basename(path), data, mode), path);
}

export async function fsyncDirAsync(dir: string): Promise<void> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // as fsyncDir
  } finally {
    await fh?.close();
  }
}

/**
 * When root writes into the service's state directory (sudo onshi admin reset), hand the file to
 * the directory's owner: a root-owned 0600 file would lock the service out of it.
 */
export function matchOwner(file: string, dir: string): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return;
  try {
    const st = statSync(dir);
    if (st.uid !== 0) chownSync(file, st.uid, st.gid);
  } catch {
    /* best effort: the service reports an unreadable file clearly */
  }
}
