// Independent cross-check with OpenSC's JPKI driver on the same virtual card: the certificate read
// through OpenSC equals the one read by our reader, and a signature made by OpenSC verifies.
import t from 'tap';
import { execFile } from 'node:child_process';
import { X509Certificate, createHash, verify } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensurePcscd, VPCD_PORT, READER_NAMES } from '../helpers/pcscd.js';
import { ReaderManager } from '../../src/reader/index.js';
import { VirtualCard } from '../../src/sim/card/index.js';
import { cardTestdir } from '../helpers/card-dir.js';

const run = promisify(execFile);
// Force OpenSC's JPKI driver: no probing of a dozen other card types on every call.
const env = { ...process.env, OPENSC_DRIVER: 'jpki' };

t.test('OpenSC reads and signs the same as our reader', async (t) => {
  if (!(await ensurePcscd(t))) return;
  if (!existsSync('/usr/bin/pkcs15-tool') || !existsSync('/usr/bin/pkcs15-crypt')) {
    const why = 'OpenSC is not installed (apt-get install opensc)';
    if (process.env['CI']) t.fail(why);
    else t.skip(why, () => {});
    return;
  }
  const dir = await cardTestdir(t);
  const card = await VirtualCard.create({ stateDir: dir, profile: 'normal', port: VPCD_PORT, resetCounters: true });
  const mgr = new ReaderManager({ pollMs: 500 });
  await mgr.start();
  t.teardown(async () => {
    await mgr.stop();
    await card.close();
  });
  await card.insert();
  const reader = READER_NAMES[0];
  await mgr.waitForCard({ readerName: reader, deadline: Date.now() + 5000 });

  const ours = await mgr.withSession((s) => s.readAuthCertificate(), { readerName: reader });
  const { stdout: pem } = await run('pkcs15-tool', ['--reader', '0', '--read-certificate', '01'], {
    env,
    timeout: 30_000,
  });
  const viaOpensc = new X509Certificate(pem);
  t.same(viaOpensc.raw, ours.der, 'same certificate bytes through OpenSC and through our reader');
  t.same(ours.der, new X509Certificate(card.profileMaterial().certPem).raw, 'and they are the profile certificate');

  const msg = Buffer.from('cross-check challenge');
  await writeFile(join(dir, 'hash.bin'), createHash('sha256').update(msg).digest());
  await run(
    'pkcs15-crypt',
    [
      '--reader',
      '0',
      '--sign',
      '-k',
      '01',
      '--sha-256',
      '--pkcs1',
      '-i',
      join(dir, 'hash.bin'),
      '-o',
      join(dir, 'sig.bin'),
      '--pin',
      '1234',
    ],
    { env, timeout: 30_000 },
  );
  const sig = await readFile(join(dir, 'sig.bin'));
  t.equal(sig.length, 256);
  t.ok(
    verify('sha256', msg, ours.certificate.publicKey, sig),
    'signature made through OpenSC verifies against the certificate',
  );

  // pcscd may still be releasing OpenSC's handle: READER_BUSY (nothing sent to the card) is retried.
  const authenticate = () =>
    mgr.withSession((s) => s.authenticate(Buffer.from('1234'), msg), { readerName: reader, apduTimeoutMs: 3000 });
  const mine = await authenticate().catch((e: unknown) => {
    if ((e as { code?: string }).code !== 'READER_BUSY') throw e;
    t.comment('card busy right after OpenSC; retrying once');
    return authenticate();
  });
  t.same(mine.signature, sig, 'PKCS#1 v1.5 is deterministic: both paths give the identical signature');
  t.same(card.forbiddenSelections(), [], 'neither path selected a 券面 AP');
});
