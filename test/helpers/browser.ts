/** Debian's Chromium driven by playwright-core, for tests where pages matter. A browser is never downloaded. */
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { type Browser, type BrowserServer, chromium, type Page } from 'playwright-core';

/** Where Debian's package puts Chromium (`apt-get install chromium`; CI installs it). */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * The environment variable through which `npm test`'s global set-up hands its one Chromium (a Playwright browser
 * server) to the test files: each file connects to it instead of starting a browser of its own, and every test still
 * gets browser contexts of its own (closed when the file closes its connection).
 */
export const CHROMIUM_ENDPOINT = 'DINHDANH_TEST_CHROMIUM';

const options = {
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
};

/** True when Debian's Chromium is installed; otherwise `launchChromium` fails with how to install it. */
export const hasChromium = () => existsSync(CHROMIUM);

function assertInstalled(): void {
  if (!hasChromium()) {
    throw new Error(
      `browser tests need Debian's Chromium at ${CHROMIUM} (apt-get install chromium; CI installs it). ` +
        'A browser is never downloaded.',
    );
  }
}

/** Starts headless Chromium as a browser server for the whole test run (the global set-up's). */
export async function launchChromiumServer(): Promise<BrowserServer> {
  assertInstalled();
  return chromium.launchServer(options);
}

/**
 * Headless Chromium with no background traffic: the run's shared browser when the global set-up started one, else a
 * browser of its own (a file run alone, a bench). Fails with how to install Chromium when it is missing.
 */
export async function launchChromium(): Promise<Browser> {
  const shared = process.env[CHROMIUM_ENDPOINT];
  if (shared) return chromium.connect(shared);
  assertInstalled();
  return chromium.launch(options);
}

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

let axeUrl: Promise<string> | undefined;

/**
 * axe-core served on loopback by this process, cacheable: a browser context fetches and compiles it once and reuses
 * that on every later page, where a copy inlined into each page is parsed and compiled again every time (about 40%
 * of what an accessibility check costs the browser). The server never keeps the process alive.
 */
function axeScript(): Promise<string> {
  axeUrl ??= new Promise((resolve, reject) => {
    const body = readFileSync(AXE);
    const server = http.createServer((_req, res) => {
      res.writeHead(200, {
        'content-type': 'text/javascript',
        'cache-control': 'public, max-age=86400, immutable',
        'cross-origin-resource-policy': 'cross-origin',
      });
      res.end(body);
    });
    server.on('connection', (socket) => socket.unref());
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.unref();
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/axe.min.js`);
    });
  });
  return axeUrl;
}

/**
 * axe-core's WCAG 2.x A/AA violations on the page, one line each (the browser context must bypass the CSP, in tests
 * only, for axe's own script), and how many pixels the page is wider than the window (0 or less: it fits).
 */
export async function accessibilityOf(page: Page): Promise<{ violations: string[]; overflow: number }> {
  // Once per document: a second check of the same page (at another width) runs the copy already there.
  if (!(await page.evaluate(() => 'axe' in globalThis))) await page.addScriptTag({ url: await axeScript() });
  const violations = await page.evaluate(async () => {
    const r = await (
      globalThis as unknown as {
        axe: { run: (o: unknown) => Promise<{ violations: { id: string; nodes: { target: string[] }[] }[] }> };
      }
    ).axe.run({
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
      // Only violations are reported: axe then skips collecting the details of passes and inapplicable rules.
      resultTypes: ['violations'],
    });
    return r.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
  const overflow = await page.evaluate(() => {
    const g = globalThis as unknown as { document: { documentElement: { scrollWidth: number } }; innerWidth: number };
    return g.document.documentElement.scrollWidth - g.innerWidth;
  });
  return { violations, overflow };
}
