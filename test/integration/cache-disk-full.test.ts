/**
 * Disk full on a real file system: a 1 MiB tmpfs (needs root to mount). Outside CI a non-root run
 * skips with a message; in CI it fails, so the check cannot silently disappear.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatewayStore, type LookupInput } from '../../src/cache/index.js';

const isRoot = process.getuid?.() === 0;

if (!isRoot) {
  if (process.env.CI) t.fail('the disk-full test needs root (to mount a tmpfs) and CI is set');
  else t.test('disk full on a tmpfs', { skip: 'needs root to mount a 1 MiB tmpfs; run as root (CI does)' }, () => {});
} else {
  t.test('a full disk refuses with STORE_DISK_FULL, acknowledges nothing, keeps what was acknowledged', async (t) => {
    // mkdtemp, not t.testdir(): a root-mounted tmpfs belongs outside the repository.
    const mnt = mkdtempSync(join(tmpdir(), 'onshi-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1M,mode=0700', 'tmpfs', mnt]);
    let store: GatewayStore | undefined;
    t.teardown(async () => {
      await store?.close().catch(() => {});
      execFileSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    });

    store = await GatewayStore.open({ dir: mnt });
    const person: LookupInput = { kind: 'numbers', insurerNumber: '06139992', number: '12345', birthdate: '19800401' };
    await store.eligibility.put(person, { validity: '1' }, new Date());
    const acked: number[] = [];
    for (let i = 0; i < 20; i++)
      acked.push((await store.outbox.enqueue({ idempotencyKey: `ok-${i}`, kind: 'recheck', payload: { i } })).id);

    // fill the file system
    const filler = join(mnt, 'filler');
    const fd = openSync(filler, 'w');
    const chunk = Buffer.alloc(16 * 1024, 1);
    let filled = 0;
    try {
      for (;;) filled += writeSync(fd, chunk);
    } catch (e) {
      t.equal((e as NodeJS.ErrnoException).code, 'ENOSPC', `filled ${filled} bytes`);
    }
    try {
      for (;;) filled += writeSync(fd, chunk, 0, 512);
    } catch {
      /* the last crumbs */
    }
    closeSync(fd);

    const big = { blob: randomBytes(200 * 1024).toString('base64') };
    await t.rejects(store.outbox.enqueue({ idempotencyKey: 'too-much', kind: 'recheck', payload: big }), {
      code: 'STORE_DISK_FULL',
      retryable: true,
    });
    await t.rejects(store.eligibility.put({ ...person, number: '99999' }, big, new Date()), {
      code: 'STORE_DISK_FULL',
    });
    // several writes in one group commit: all refused together
    const batch = await Promise.allSettled(
      [1, 2, 3].map((i) => store!.outbox.enqueue({ idempotencyKey: `batch-${i}`, kind: 'k', payload: { i, big } })),
    );
    t.same(
      batch.map((r) => r.status === 'rejected' && (r.reason as { code?: string }).code),
      ['STORE_DISK_FULL', 'STORE_DISK_FULL', 'STORE_DISK_FULL'],
    );

    t.equal(store.outbox.stats().depth, 20, 'acknowledged entries are still there, nothing else');
    t.same(store.eligibility.get(person, 60_000)?.answer, { validity: '1' }, 'cached answers still read');

    unlinkSync(filler);
    const { id, duplicate } = await store.outbox.enqueue({
      idempotencyKey: 'too-much',
      kind: 'recheck',
      payload: { retried: true },
    });
    t.notOk(duplicate, 'the refused entry was not stored');
    const due = await store.outbox.nextDue(100);
    t.same(
      due.map((e) => e.id),
      [...acked, id],
      'after space is freed: every acknowledged entry, in order, and the retry',
    );
    await store.close();
    store = await GatewayStore.open({ dir: mnt });
    t.equal(store.outbox.stats().depth, 21, 'and after a restart');
    t.notOk(
      store.startupAlerts.some((a) => a.code === 'STORE_CORRUPT'),
      'the file was not damaged',
    );
  });
}
