/** Debian's Chromium driven by playwright-core, for tests where pages matter. A browser is never downloaded. */
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/** Where Debian's package puts Chromium (`apt-get install chromium`; CI installs it). */
export const CHROMIUM = '/usr/bin/chromium';

/** Launches headless Chromium with no background traffic; fails with how to install it when it is missing. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `browser tests need Debian's Chromium at ${CHROMIUM} (apt-get install chromium; CI installs it). ` +
        'A browser is never downloaded.',
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
