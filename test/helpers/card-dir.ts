/**
 * A virtual card's state folder with the card profiles already issued: a fresh folder would issue
 * its PKI and seven card key pairs again (about eleven RSA key generations, seconds of CPU per
 * file). The material is issued once per run in the shared folder (SHARED_PKI_DIR, locked) and
 * copied in; the cards' counters (*.state.json) are not, so every folder starts from the
 * profiles' defaults.
 */
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { ensureCardProfiles } from '../../src/sim/card/index.js';
import { SHARED_PKI_DIR } from './gateway.js';
import { testdir } from './testdir.js';

/** Copies the issued PKI and card profiles into `dir` (without counters). */
export async function seedCardDir(dir: string): Promise<string> {
  await ensureCardProfiles(SHARED_PKI_DIR);
  for (const sub of ['pki', 'cards'])
    cpSync(join(SHARED_PKI_DIR, sub), join(dir, sub), {
      recursive: true,
      filter: (src) => !src.endsWith('.state.json') && !src.endsWith('.lock'),
    });
  return dir;
}

/** The test's testdir, seeded with the issued card profiles. */
export function cardTestdir(t: Test): Promise<string> {
  return seedCardDir(testdir(t));
}
