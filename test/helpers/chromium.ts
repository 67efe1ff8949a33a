/**
 * Debian's Chromium for the browser tests, driven by playwright-core (no browser is ever
 * downloaded). It trusts the gateway's certificate by its public-key fingerprint
 * (--ignore-certificate-errors-spki-list), not by ignoring certificate errors.
 */
import type { Browser } from 'playwright-core';

export const CHROMIUM = process.env.ONSHI_CHROMIUM ?? '/usr/bin/chromium';

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
