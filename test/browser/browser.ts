/**
 * Launches Debian's Chromium for the browser tests, with a fresh profile that is removed on close,
 * and helpers to read the page's terminal. When Chromium is missing the tests skip with a line
 * saying how to install it, unless EDGETTY_REQUIRE_BROWSER=1 makes that a failure.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, type Page, chromium } from "playwright-core";

/** Where Debian's chromium package puts the browser. */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/** Whether browser tests can run here. */
export const browserAvailable = existsSync(CHROMIUM_PATH);
/** Whether a missing browser is an error rather than a skip. */
export const browserRequired = process.env["EDGETTY_REQUIRE_BROWSER"] === "1";

/** Prints why browser tests are skipped, once; returns true when they should be skipped. */
export function skipBrowserTests(): boolean {
  if (browserAvailable || browserRequired) return false;
  console.warn(
    `SKIPPED browser tests: ${CHROMIUM_PATH} not found. Install it with ` +
      "`apt-get update && apt-get install -y chromium` (set EDGETTY_REQUIRE_BROWSER=1 to fail instead).",
  );
  return true;
}

const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** A browser context on a fresh profile; `close()` ends Chromium and deletes the profile. */
export interface TestBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

/**
 * Records every WebSocket the page opens (as `globalThis.__sockets`) and counts the client frame
 * types it sends (`globalThis.__sent`), so tests can drop a socket and see flow control at work.
 */
const SOCKET_SPY = `(() => {
  const Native = WebSocket;
  globalThis.__sockets = [];
  globalThis.__sent = {};
  globalThis.WebSocket = class extends Native {
    constructor(...args) { super(...args); globalThis.__sockets.push(this); }
    send(data) {
      const type = data instanceof Uint8Array ? data[0] : data instanceof ArrayBuffer ? new Uint8Array(data)[0] : "text";
      globalThis.__sent[type] = (globalThis.__sent[type] || 0) + 1;
      return super.send(data);
    }
  };
})();`;

/** Starts Chromium headless on a fresh profile. */
export async function launchBrowser(): Promise<TestBrowser> {
  if (!browserAvailable) {
    throw new Error(`${CHROMIUM_PATH} not found: install it with \`apt-get update && apt-get install -y chromium\``);
  }
  const profile = await mkdtemp(join(tmpdir(), "edgetty-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1000, height: 640 },
  });
  await context.addInitScript(SOCKET_SPY);
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** The terminal's visible screen as text (empty when no terminal page is open). */
export function screenText(page: Page): Promise<string> {
  return page.evaluate(() => (globalThis as any).edgettyDebug?.screenText() ?? "");
}

/** Waits until some screen line, trimmed, equals `line`. */
export async function waitForLine(page: Page, line: string, timeout = 10_000): Promise<void> {
  await page.waitForFunction(
    (want) => {
      const text: string = (globalThis as any).edgettyDebug?.screenText() ?? "";
      return text.split("\n").some((l) => l.trim() === want);
    },
    line,
    { timeout, polling: 50 },
  );
}

/** Waits until the connection is open (the edge has sent INFO). */
export async function waitForConnected(page: Page, timeout = 15_000): Promise<void> {
  await page.waitForFunction(() => (globalThis as any).edgettyDebug?.phase().kind === "open", undefined, { timeout });
}

/** The terminal's size in cells. */
export function termSize(page: Page): Promise<{ cols: number; rows: number }> {
  return page.evaluate(() => (globalThis as any).edgettyDebug.size());
}
