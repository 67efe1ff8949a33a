/**
 * Debian's Chromium for the browser tests, driven by playwright-core (no browser is ever
 * downloaded). It trusts the gateway's certificate by its public-key fingerprint
 * (--ignore-certificate-errors-spki-list), not by ignoring certificate errors.
 */
import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import type { Test } from 'tap';

export const CHROMIUM = process.env.ONSHI_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Whether the browser tests can run: without Chromium they fail under CI (setup.sh installs it) and
 * are skipped, saying why, on a developer machine.
 */
export function hasChromium(t: Test): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI)
    t.fail(`${CHROMIUM} is missing: the browser tests need Debian's chromium (scripts/lib/setup.sh installs it)`);
  else t.plan(0, `${CHROMIUM} is not installed (apt-get install chromium); browser tests skipped`);
  return false;
}

export async function launchChromium(spkiSha256: string): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--ignore-certificate-errors-spki-list=${spkiSha256}`,
    ],
  });
}
