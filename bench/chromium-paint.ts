/**
 * Keystroke-to-paint in a real Chromium page: the web app signed in, a terminal running a raw-mode
 * `cat`, and for each key the time from the page's keydown event to the xterm.js render in
 * which the typed character first shows on screen (xterm.js draws in an animation frame, so this
 * includes the frame wait, as a person sees it). Uses Debian's Chromium through playwright-core.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

/** Where Debian's chromium package puts the browser. */
export const CHROMIUM_PATH = "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"];
/** Longest wait for one key's paint, in milliseconds. */
const PAINT_TIMEOUT_MS = 5_000;

/** Keystroke-to-paint samples in milliseconds (sorted), or null when Chromium is not installed. */
export async function keystrokeToPaint(baseUrl: string, apiKey: string, terminalId: number, samples: number): Promise<number[] | null> {
  if (!existsSync(CHROMIUM_PATH)) return null;
  const profile = mkdtempSync(join(tmpdir(), "edgetty-bench-chromium-"));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1000, height: 640 } });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(baseUrl);
    await page.getByLabel("Access token").fill(apiKey);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "New terminal" }).waitFor();
    await page.goto(`${baseUrl}/#/t/local/${terminalId}`);
    await page.waitForFunction(() => (globalThis as any).edgettyDebug?.phase().kind === "open", undefined, { timeout: 15_000 });
    await page.locator(".xterm").click();
    await page.keyboard.type("stty raw -echo; PS1=''; clear; echo PAINT-RE''ADY; exec cat\r");
    await page.waitForFunction(() => ((globalThis as any).edgettyDebug?.screenText() ?? "").includes("PAINT-READY"), undefined, { timeout: 15_000 });
    // In the page: note each keydown's time, and on each render whether the typed text so far
    // is on screen; the first render that shows it ends the sample.
    await page.evaluate(() => {
      const g = globalThis as any;
      g.paintSamples = [] as number[];
      let typed = "";
      let pending: number | null = null;
      document.addEventListener("keydown", (e) => {
        if (e.key === "Enter") typed = ""; // cat echoes CR: the next keys overwrite the line
        if (e.key.length !== 1) return;
        typed += e.key;
        pending = e.timeStamp;
      }, true);
      g.edgettyDebug.onRender(() => {
        if (pending === null) return;
        const lines: string[] = g.edgettyDebug.screenText().split("\n").map((l: string) => l.trimEnd());
        const shown = lines.join("");
        if (shown.endsWith(typed.slice(-40)) || shown.includes(typed.slice(-40))) {
          g.paintSamples.push(performance.now() - pending);
          pending = null;
        }
      });
    });
    const keys = "abcdefghijklmnopqrstuvwxyz";
    for (let i = 0; i < samples; i++) {
      await page.keyboard.press(keys[i % keys.length]!);
      await page.waitForFunction((n) => (globalThis as any).paintSamples.length > n, i, { timeout: PAINT_TIMEOUT_MS, polling: "raf" });
      if (i % 60 === 59) await page.keyboard.type("\r"); // keep the line short
    }
    const out = (await page.evaluate(() => (globalThis as any).paintSamples)) as number[];
    return out.sort((a, b) => a - b);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}
