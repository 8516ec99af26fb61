/**
 * Keystroke-to-paint in a real Chromium page: the web app signed in, a terminal running a raw-mode
 * `cat`, and for each key (a real key press through Playwright) the time from the page's keydown
 * event to the end of the frame in which xterm.js drew the typed character: the render whose rows
 * show it (read from the DOM renderer's rows, or xterm.js's buffer under WebGL), then the rest of
 * that frame (style, layout, paint, commit to the compositor), taken as the first task after it.
 * The frame waits are included, as a person sees them; the display's scan-out after the commit is
 * not. Uses Debian's Chromium through playwright-core, with its default scheduling features.
 *
 * Two pacings (see {@link Pacing}): keys at a typist's pace, the bench's headline figure, and keys
 * back to back, each a moment after the previous one was painted. They differ by a frame because
 * of Chromium, not the page: a key pressed within about one frame (17 ms) of the previous paint
 * gets a main frame of its own, and Chromium's scheduler (DeferRendererTasksAfterInput) holds the
 * echo's WebSocket task until that frame has run, so the echo is drawn in the frame after it. A key
 * pressed later than that is not held (docs/architecture.md, "From key to pixels in Chromium").
 *
 * The harness keeps out of the page's frames: it waits for each sample with a promise (a polling
 * `requestAnimationFrame` loop would itself keep a frame pending, and Chromium defers a page's
 * tasks after a key press while a frame is pending), and each key goes down at a random moment,
 * not in step with the display's frames.
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
/** Keys typed on one line before a CR; fewer than the terminal's columns in the 1000 px viewport. */
const KEYS_PER_LINE = 60;
/** One frame of a 60 Hz display, in milliseconds: back-to-back keys go down at a random moment within it. */
const FRAME_MS = 1000 / 60;
/**
 * Time from one key down to the next at a typist's pace, in milliseconds: uniform in this range
 * (150 ms on average, about 80 words a minute: a fast typist; bursts of 60 ms are a fast digraph).
 */
const TYPING_INTERVAL_MS = [60, 240] as const;

/**
 * How keys are paced. `typing`: each key goes down 60–240 ms after the previous one (or once its
 * paint is measured, if that is later), as a person types. `back-to-back`: each key goes down
 * 0–17 ms after the previous key's paint, faster than anyone types (a stress figure).
 */
export type Pacing = "typing" | "back-to-back";

/** Per-key times from keydown, in milliseconds, each list sorted. */
export interface PaintSamples {
  /** To the end of the frame that drew the character: the bench's figure. */
  painted: number[];
  /** To xterm.js's render that drew it (inside that frame, before its style, layout and paint). */
  drawn: number[];
}

/** Keystroke-to-paint samples, or null when Chromium is not installed. */
export async function keystrokeToPaint(baseUrl: string, apiKey: string, terminalId: number, samples: number, pacing: Pacing): Promise<PaintSamples | null> {
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
    // Raw mode has no output processing: the marker ends with CR LF so that cat's line starts at
    // column 0, where the check below looks for the typed keys.
    await page.keyboard.type("stty raw -echo; PS1=''; clear; printf 'PAINT-RE''ADY\\r\\n'; exec cat\r");
    await page.waitForFunction(() => ((globalThis as any).edgettyDebug?.screenText() ?? "").includes("PAINT-READY"), undefined, { timeout: 15_000 });
    // In the page: note each keydown's time; on each render, whether the typed text so far is
    // drawn; the first task after the frame of that render ends the sample.
    await page.evaluate(() => {
      const g = globalThis as any;
      g.paintSamples = [] as number[];
      g.drawnSamples = [] as number[];
      g.paintWaiter = null as ((n: number) => void) | null;
      let typed = "";
      let pending: number | null = null;
      const frameDone = new MessageChannel();
      frameDone.port1.onmessage = () => {
        if (pending === null) return;
        g.paintSamples.push(performance.now() - pending);
        g.drawnSamples.push(drawnAt - pending);
        pending = null;
        g.paintWaiter?.(g.paintSamples.length);
      };
      document.addEventListener("keydown", (e) => {
        if (e.key === "Enter") typed = ""; // cat echoes CR: the next keys overwrite the line
        if (e.key.length !== 1) return;
        typed += e.key;
        pending = e.timeStamp;
      }, true);
      let shownFor = -1;
      let drawnAt = 0;
      g.edgettyDebug.onRender(() => {
        if (pending === null || shownFor === pending) return;
        // The rows as drawn: the DOM renderer's row elements; under WebGL, xterm.js's buffer. The
        // key is drawn when a row starts with the whole line typed so far: after a CR the keys
        // overwrite the old line, whose text must not count. (No named functions in here: the
        // bench's TypeScript loader would wrap them in a helper that does not exist in the page.)
        const rows = document.querySelector(".xterm-rows");
        const lines: string[] =
          g.edgettyDebug.renderer() === "dom" && rows
            ? Array.from(rows.children, (r: Element) => r.textContent ?? "")
            : g.edgettyDebug.screenText().split("\n");
        if (lines.some((line) => line.startsWith(typed))) {
          shownFor = pending;
          drawnAt = performance.now();
          frameDone.port2.postMessage(null); // runs once this frame's rendering is done
        }
      });
    });
    const keys = "abcdefghijklmnopqrstuvwxyz";
    let lastKeyAt = performance.now();
    for (let i = 0; i < samples; i++) {
      const painted = page.evaluate(
        ([n, timeoutMs]) =>
          new Promise<void>((resolve, reject) => {
            const g = globalThis as any;
            if (g.paintSamples.length > n) return resolve();
            const timer = setTimeout(() => reject(new Error(`key ${n}: not drawn within ${timeoutMs} ms`)), timeoutMs);
            g.paintWaiter = (count: number) => {
              if (count <= n) return;
              clearTimeout(timer);
              g.paintWaiter = null;
              resolve();
            };
          }),
        [i, PAINT_TIMEOUT_MS] as const,
      );
      const [min, max] = TYPING_INTERVAL_MS;
      const wait = pacing === "typing" ? lastKeyAt + min + Math.random() * (max - min) - performance.now() : Math.random() * FRAME_MS;
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      lastKeyAt = performance.now();
      await page.keyboard.press(keys[i % keys.length]!);
      await painted;
      if (i % KEYS_PER_LINE === KEYS_PER_LINE - 1) {
        await page.keyboard.type("\r"); // keep the line short
        lastKeyAt = performance.now();
      }
    }
    const [painted, drawn] = (await page.evaluate(() => [(globalThis as any).paintSamples, (globalThis as any).drawnSamples])) as [number[], number[]];
    return { painted: painted.sort((a, b) => a - b), drawn: drawn.sort((a, b) => a - b) };
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}
