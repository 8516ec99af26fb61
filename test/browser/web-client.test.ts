/**
 * The web client end to end: Debian's Chromium against the real local stack (workerd + agent +
 * real PTYs; starting it builds web/ into dist/web). Signs in, opens a terminal, watches it read-only, resizes, drops the connection,
 * floods it, and ends it.
 */
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../worker/cli/local-stack.ts";
import { useStack } from "../support/stack.ts";
import { CURSOR_OFF_CLASS } from "../../web/src/cursor-blink.ts";
import { type TestBrowser, launchBrowser, screenText, skipBrowserTests, termSize, waitForConnected, waitForLine } from "./browser.ts";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const ARTIFACTS = `${REPO}test-artifacts`;
/** The prompt the tests give the shell, so "the shell is waiting" is easy to see. */
const PROMPT = "ready>";

/** Waits until the line holding the cursor is the bare prompt. */
async function waitForPrompt(page: Page, timeout = 10_000): Promise<void> {
  await page.waitForFunction(
    (prompt) => {
      const lines: string[] = ((globalThis as any).edgettyDebug?.screenText() ?? "").split("\n");
      const last = lines.filter((l) => l.trim() !== "").at(-1);
      return last?.trim() === prompt;
    },
    PROMPT,
    { timeout, polling: 20 },
  );
}

/** Types into the terminal (which has focus) and presses Enter. */
async function run(page: Page, command: string): Promise<void> {
  await page.keyboard.type(command);
  await page.keyboard.press("Enter");
}

function joins(page: Page): Promise<number> {
  return page.evaluate(() => (globalThis as any).edgettyDebug.joins());
}

describe.skipIf(skipBrowserTests())("the web client", () => {
  const stack = useStack();
  let browser: TestBrowser | undefined;
  let page: Page;
  let terminalHash = "";
  const requestUrls: string[] = [];
  const consoleLines: string[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await launchBrowser();
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    page.on("request", (r) => requestUrls.push(r.url()));
    page.on("console", (m) => consoleLines.push(m.text()));
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
  });

  it("refuses a wrong token with a message", async () => {
    await page.goto(stack.url);
    await page.getByLabel("Access token").fill("not-the-key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: "not accepted" }).waitFor();
  });

  it("signs in with the API key, which never shows up in a URL or the console", async () => {
    await page.getByLabel("Access token").fill(stack.apiKey);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "New terminal" }).waitFor();
    await page.locator(".server").first().waitFor();
    expect(page.url()).not.toContain(stack.apiKey);
    expect(requestUrls.filter((u) => u.includes(stack.apiKey))).toEqual([]);
    expect(consoleLines.filter((l) => l.includes(stack.apiKey))).toEqual([]);
    await page.screenshot({ path: `${ARTIFACTS}/web-sessions.png` });
  });

  it("starts a terminal, types echo hi and sees hi", async () => {
    await page.getByLabel("Shell").selectOption("bash");
    await page.getByRole("button", { name: "Start" }).click();
    await page.waitForURL(/#\/t\/[^/]+\/\d+$/);
    terminalHash = new URL(page.url()).hash;
    await waitForConnected(page);
    await page.locator(".xterm").click();
    await run(page, `PS1='${PROMPT} '`);
    await waitForPrompt(page);
    await run(page, "echo hi");
    await waitForLine(page, "hi");
  });

  it("shows a read-only viewer the same screen and lets it type nothing", async () => {
    const viewer = await browser!.context.newPage();
    try {
      await viewer.setViewportSize({ width: 1200, height: 700 }); // a bigger window than the writer's
      await viewer.goto(`${stack.url}/${terminalHash}/ro`);
      await waitForConnected(viewer);
      await waitForLine(viewer, "hi");
      // The viewer mirrors the session's size instead of fitting its own window.
      expect(await termSize(viewer)).toEqual(await termSize(page));
      await expect(viewer.locator(".badge-readonly").isVisible()).resolves.toBe(true);
      await expect(viewer.locator(".key-bar").isVisible()).resolves.toBe(false);
      await viewer.locator(".xterm").click();
      await run(viewer, "echo nope");
      await page.locator(".xterm").click();
      await run(page, "echo marker-1");
      await waitForLine(page, "marker-1");
      await waitForLine(viewer, "marker-1");
      expect(await screenText(page)).not.toContain("nope");
      expect(await screenText(viewer)).not.toContain("nope");

      // The writer's window grows: the viewer takes the new size where the stream changed it (an
      // INFO between the output before and after the resize). A Z put at the new last column of
      // row 1, just after the resize, is there in the viewer too; a viewer still at the old width
      // would put it at its own last column, and keep it there after resizing (no reflow moves it).
      const before = await termSize(page);
      await page.setViewportSize({ width: 1300, height: 700 });
      await page.waitForFunction((cols) => (globalThis as any).edgettyDebug.size().cols > cols, before.cols);
      const after = await termSize(page);
      await run(page, `printf '\\033[s\\033[1;${after.cols}HZ\\033[u'; echo placed-$((${after.cols}))`);
      await waitForLine(page, `placed-${after.cols}`);
      await waitForLine(viewer, `placed-${after.cols}`);
      const firstRow = async (p: Page) => (await screenText(p)).split("\n")[0]!;
      expect((await firstRow(page)).length).toBe(after.cols);
      expect(await firstRow(viewer)).toBe(await firstRow(page));
      expect(await termSize(viewer)).toEqual(after);
    } finally {
      await page.setViewportSize({ width: 1000, height: 640 });
      await viewer.close();
    }
  });

  it("shows the command history, downloads raw output and takes a screenshot", async () => {
    await page.getByRole("button", { name: "Command history" }).click();
    await page.locator(".history-command", { hasText: "echo hi" }).first().waitFor();
    await page.getByRole("button", { name: "Close history" }).click();

    const href = await page.getByRole("link", { name: "Download raw output" }).getAttribute("href");
    const raw = await page.evaluate(async (url) => {
      const res = await fetch(url!);
      return { status: res.status, text: await res.text() };
    }, href);
    expect(raw.status).toBe(200);
    expect(raw.text).toContain("echo hi");

    await page.getByRole("button", { name: "Screenshot" }).click();
    const image = page.getByRole("img", { name: "Screenshot of the terminal screen" });
    await image.waitFor();
    await page.waitForFunction(() => ((document.querySelector(".screenshot-dialog img") as HTMLImageElement | null)?.naturalWidth ?? 0) > 0);
    await page.getByRole("button", { name: "Close screenshot" }).click();
    await image.waitFor({ state: "detached" });
    await page.locator(".xterm").click();
  });

  it("takes the window title from the terminal", async () => {
    await run(page, "printf '\\033]0;%s\\007' title-from-shell");
    await page.waitForFunction(() => document.title.startsWith("title-from-shell"), undefined, { timeout: 10_000 });
  });

  it("blinks the cursor by a timer, with no animation running every frame, and shows it on typing", async () => {
    // A running CSS animation makes Chromium run a frame every 16 ms, and a frame pending at a
    // key press makes it hold the echo back until that frame is done (web/src/cursor-blink.ts).
    if ((await page.evaluate(() => (globalThis as any).edgettyDebug.renderer())) !== "dom") return;
    await page.locator(".xterm-rows .xterm-cursor.xterm-cursor-blink").waitFor();
    const running = await page.evaluate(() => document.getAnimations().filter((a) => a.playState === "running").length);
    expect(running).toBe(0);
    // The two phases look different: the block cursor's background is the cursor colour, then not.
    const phases = await page.evaluate((off) => {
      const term = document.querySelector(".xterm")!;
      const cursor = document.querySelector(".xterm-rows .xterm-cursor")!;
      const had = term.classList.contains(off);
      term.classList.remove(off);
      const on = getComputedStyle(cursor).backgroundColor;
      term.classList.add(off);
      const offBg = getComputedStyle(cursor).backgroundColor;
      term.classList.toggle(off, had);
      return { on, off: offBg };
    }, CURSOR_OFF_CLASS);
    expect(phases.on).not.toBe(phases.off);
    // The timer turns the cursor off; a key typed turns it back on at once.
    const phaseIs = (off: boolean) =>
      page.waitForFunction(([cls, want]) => document.querySelector(".xterm")!.classList.contains(cls) === want, [CURSOR_OFF_CLASS, off] as const, { timeout: 5_000 });
    await phaseIs(true);
    await page.keyboard.type("x");
    await phaseIs(false);
    await page.keyboard.press("Backspace");
    await phaseIs(true);
  });

  it("follows the window size: stty size changes when the viewport does", async () => {
    const before = await termSize(page);
    await page.setViewportSize({ width: 720, height: 420 });
    await page.waitForFunction(
      (b) => {
        const s = (globalThis as any).edgettyDebug.size();
        return s.cols < b.cols && s.rows < b.rows;
      },
      before,
    );
    const after = await termSize(page);
    await run(page, "stty size");
    await waitForLine(page, `${after.rows} ${after.cols}`);
    await page.setViewportSize({ width: 1000, height: 640 });
    await page.waitForFunction((a) => (globalThis as any).edgettyDebug.size().cols > a.cols, after);
    const restored = await termSize(page);
    await run(page, "clear; stty size");
    await waitForLine(page, `${restored.rows} ${restored.cols}`);
  });

  it("shows a second writer's size while the other writer resizes, until its user types", async () => {
    const second = await browser!.context.newPage();
    try {
      await second.setViewportSize({ width: 1000, height: 640 });
      await second.goto(`${stack.url}/${terminalHash}`);
      await waitForConnected(second);
      const mine = await termSize(page);
      // The second writer's window shrinks: the PTY takes its size, and this page shows that size
      // exactly (not its own bigger grid over a smaller screen), saying why.
      await second.setViewportSize({ width: 640, height: 380 });
      await second.waitForFunction((m) => (globalThis as any).edgettyDebug.size().cols < m.cols, mine);
      const small = await termSize(second);
      await page.waitForFunction((s) => {
        const now = (globalThis as any).edgettyDebug.size();
        return now.cols === s.cols && now.rows === s.rows;
      }, small);
      await expect(page.locator(".badge-size").textContent()).resolves.toContain(`${small.cols}×${small.rows}`);
      // Typing here takes the size back: the PTY is this window's again, and the other follows.
      await page.locator(".xterm").click();
      await run(page, "clear; stty size");
      await waitForLine(page, `${mine.rows} ${mine.cols}`);
      await expect(page.locator(".badge-size").isVisible()).resolves.toBe(false);
      await second.waitForFunction((m) => {
        const now = (globalThis as any).edgettyDebug.size();
        return now.cols === m.cols && now.rows === m.rows;
      }, mine);
      await expect(second.locator(".badge-size").isVisible()).resolves.toBe(true);
    } finally {
      await second.close();
    }
  });

  it("reconnects after the network drops and repaints the screen", async () => {
    await run(page, "clear; echo before-drop");
    await waitForLine(page, "before-drop");
    const joined = await joins(page);
    await browser!.context.setOffline(true);
    await page.getByRole("status").filter({ hasText: "offline" }).waitFor();
    await browser!.context.setOffline(false);
    await page.waitForFunction((j) => (globalThis as any).edgettyDebug.joins() > j, joined, { timeout: 20_000 });
    await waitForConnected(page);
    await waitForLine(page, "before-drop");
    await run(page, "echo after-reconnect");
    await waitForLine(page, "after-reconnect");
  });

  it("keeps what is typed while the socket is down and sends it after reconnecting", async () => {
    const joined = await joins(page);
    await page.evaluate(() => (globalThis as any).__sockets.at(-1).close(1000, "test drops the socket"));
    await page.waitForFunction(() => (globalThis as any).edgettyDebug.phase().kind !== "open");
    await run(page, "echo typed-while-away");
    await page.waitForFunction((j) => (globalThis as any).edgettyDebug.joins() > j, joined, { timeout: 20_000 });
    await waitForLine(page, "typed-while-away");
  });

  it("reconnects and repaints after the edge restarts, as on a redeploy", async () => {
    await run(page, "clear; echo before-restart");
    await waitForLine(page, "before-restart");
    const joined = await joins(page);
    await stack.restartEdge();
    await page.waitForFunction((j) => (globalThis as any).edgettyDebug.joins() > j, joined, { timeout: 30_000 });
    await waitForConnected(page);
    await waitForLine(page, "before-restart");
    await run(page, "echo after-restart");
    await waitForLine(page, "after-restart");
  });

  it("stops a flooding yes on Ctrl-C (how fast is a bench matter)", async () => {
    await run(page, "clear; yes");
    await page.waitForFunction(() => {
      const lines: string[] = (globalThis as any).edgettyDebug.screenText().split("\n");
      return lines.filter((l) => l === "y").length > 5;
    });
    await page.keyboard.press("Control+c");
    await waitForPrompt(page);
  });

  it("survives a large burst of output without freezing the tab", async () => {
    await run(page, "clear; seq 1 2000000");
    await page.waitForFunction(() => /^\d{3,}$/m.test((globalThis as any).edgettyDebug.screenText()));
    // While the numbers pour in, the page keeps painting frames (a frozen tab never would; how
    // fast it answers is a bench matter, not a test's).
    for (let i = 0; i < 5; i++) {
      expect(await page.evaluate(() => new Promise<boolean>((resolve) => requestAnimationFrame(() => resolve(true))))).toBe(true);
    }
    await waitForLine(page, "2000000", 60_000);
    await waitForPrompt(page);
    const sent = await page.evaluate(() => (globalThis as any).__sent);
    const resyncs = await page.evaluate(() => (globalThis as any).edgettyDebug.resyncs());
    console.log(`flow control so far: ${sent[2] ?? 0} PAUSE, ${sent[3] ?? 0} RESUME, ${resyncs} resyncs`);
    // Caught up: no longer paused, so the status says plainly connected.
    await page.getByRole("status").filter({ hasText: /^connected$/ }).waitFor();
  });

  it("saves screenshots of the terminal page in both themes", async () => {
    await run(page, "clear; echo edgetty; ls /");
    await waitForLine(page, "edgetty");
    await page.screenshot({ path: `${ARTIFACTS}/web-terminal.png` });
    const themeOf = () => page.evaluate(() => document.documentElement.dataset["theme"]);
    const first = await themeOf();
    const toggle = page.getByRole("button", { name: /^Theme:/ });
    await toggle.click(); // system → light
    await toggle.click(); // light → dark
    if ((await themeOf()) === first) await toggle.click(); // dark → system, when the system is dark
    expect(await themeOf()).not.toBe(first);
    await page.screenshot({ path: `${ARTIFACTS}/web-terminal-other-theme.png` });
    await page.locator(".xterm").click();
  });

  it("gives phones a key bar with arrows and a sticky Ctrl", async () => {
    // A touch screen (a coarse pointer) gets the bar; a narrow desktop window does not (web-ui.test.ts).
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Emulation.setTouchEmulationEnabled", { enabled: true, maxTouchPoints: 1 });
    await page.setViewportSize({ width: 390, height: 740 });
    const bar = page.getByRole("toolbar", { name: "Extra keys" });
    await bar.waitFor();
    await page.locator(".xterm").click();
    await run(page, "clear");
    await page.keyboard.type("echo abc");
    await bar.getByRole("button", { name: "Left arrow" }).click();
    await bar.getByRole("button", { name: "Left arrow" }).click();
    await page.keyboard.type("X");
    await page.keyboard.press("Enter");
    await waitForLine(page, "aXbc");
    await page.keyboard.type("echo nope");
    await bar.getByRole("button", { name: /^Ctrl/ }).click();
    await page.keyboard.type("u"); // Ctrl-U: kill the line typed so far
    await run(page, "echo after-ctrl-u");
    await waitForLine(page, "after-ctrl-u");
    expect(await screenText(page)).not.toMatch(/^nope/m);
    await page.setViewportSize({ width: 1000, height: 640 });
    await cdp.send("Emulation.setTouchEmulationEnabled", { enabled: false });
    await cdp.detach();
  });

  it("lists sessions with their details and deletes one", async () => {
    await page.goto(`${stack.url}/#/`);
    const mine = Number(terminalHash.split("/").at(-1));
    await page.locator(`.session[data-terminal-id="${mine}"]`).waitFor();
    // The server's agent: its version and uptime while online.
    await expect(page.locator(".server .agent-facts").first().textContent()).resolves.toMatch(/^agent \d+\.\d+\.\d+ · up \d+(s|m)/);
    await page.getByRole("button", { name: "Start" }).click();
    await page.waitForURL((u) => u.hash !== terminalHash && /#\/t\/[^/]+\/\d+$/.test(u.hash));
    const extra = Number(new URL(page.url()).hash.split("/").at(-1));
    await waitForConnected(page);
    await page.goto(`${stack.url}/#/`);
    const row = page.locator(`.session[data-terminal-id="${extra}"]`);
    await row.waitFor();
    page.once("dialog", (d) => void d.accept());
    await row.getByRole("button", { name: `Delete terminal ${extra}` }).click();
    await row.waitFor({ state: "detached" });
    await page.goto(`${stack.url}/${terminalHash}`);
    await waitForConnected(page);
    await page.locator(".xterm").click();
  });

  it("offers SSH (with SOCKS5) and PID sessions in the new-terminal form, and says why an SSH login failed", async () => {
    await page.goto(`${stack.url}/#/`);
    const kind = page.getByLabel("Kind");
    await expect(kind.locator("option").allTextContents()).resolves.toEqual(["Local shell", "SSH", "Follow a process (PID)"]);
    await kind.selectOption("pid");
    await page.getByLabel("Process id").waitFor();
    expect(await page.getByLabel("Shell").isVisible()).toBe(false);
    await kind.selectOption("ssh");
    await page.getByLabel("SOCKS5 proxy host").waitFor();
    await page.getByLabel("SSH host").fill("127.0.0.1");
    await page.getByLabel("SSH user").fill("nobody");
    await page.getByLabel("SSH port").fill(String(await freePort()));
    await page.getByLabel("SSH password").fill("not-used");
    await page.getByRole("button", { name: "Start" }).click();
    await page.locator(".notice-error").filter({ hasText: "Connection refused" }).waitFor();
    await kind.selectOption("local");
    await page.goto(`${stack.url}/${terminalHash}`);
    await waitForConnected(page);
  });

  it("says so when a link names no terminal or no server, and never starts a shell for it", async () => {
    const ids = async () => ((await (await stack.api("/api/v1/terminal/sessions")).json()) as { id: number }[]).map((s) => s.id);
    await page.goto(`${stack.url}/#/t/local/777`);
    await page.getByRole("alert").filter({ hasText: "No such terminal" }).waitFor();
    await expect(page.getByRole("alert").textContent()).resolves.toContain("Terminal #777 does not exist on local");
    expect(await ids()).not.toContain(777);
    await page.goto(`${stack.url}/#/t/no-such-server/1`);
    await page.getByRole("alert").filter({ hasText: "No such server" }).waitFor();
    // An id past 65535 names no terminal page at all: the sessions page, which says so.
    await page.goto(`${stack.url}/#/t/local/99999`);
    await page.locator(".notice-error").filter({ hasText: "Nothing lives at #/t/local/99999" }).waitFor();
  });

  it("says a terminal deleted elsewhere was closed, and does not bring it back on reload", async () => {
    await page.goto(`${stack.url}/#/`);
    await page.getByRole("button", { name: "Start" }).click();
    await page.waitForURL((u) => u.hash !== terminalHash && /#\/t\/[^/]+\/\d+$/.test(u.hash));
    const id = Number(new URL(page.url()).hash.split("/").at(-1));
    await waitForConnected(page);
    expect((await stack.api(`/api/v1/terminal/${id}`, { method: "DELETE" })).status).toBe(200);
    await page.getByRole("alert").filter({ hasText: "The terminal was closed" }).waitFor();
    await page.reload();
    await page.getByRole("alert").filter({ hasText: "No such terminal" }).waitFor();
    const listed = ((await (await stack.api("/api/v1/terminal/sessions")).json()) as { id: number }[]).map((s) => s.id);
    expect(listed).not.toContain(id);
    await page.goto(`${stack.url}/${terminalHash}`);
    await waitForConnected(page);
  });

  it("lets the keyboard leave the terminal: Ctrl+Shift+M, then Tab moves the focus; again, and Tab is the shell's", async () => {
    await page.locator(".xterm").click();
    const inTerminal = () => page.evaluate(() => document.activeElement?.classList.contains("xterm-helper-textarea") ?? false);
    expect(await inTerminal()).toBe(true);
    await page.keyboard.press("Shift+Tab"); // the shell's (reverse completion): the focus stays
    expect(await inTerminal()).toBe(true);
    await page.keyboard.press("Control+Shift+M");
    await page.locator(".notice").filter({ hasText: "Tab now moves the focus" }).waitFor();
    await page.keyboard.press("Shift+Tab");
    expect(await inTerminal()).toBe(false);
    await page.keyboard.press("Tab"); // and back in
    expect(await inTerminal()).toBe(true);
    await page.keyboard.press("Control+Shift+M");
    await page.locator(".notice").filter({ hasText: "Tab goes to the shell again" }).waitFor();
    await page.keyboard.press("Shift+Tab");
    expect(await inTerminal()).toBe(true);
    await page.keyboard.press("Control+c");
  });

  it("shows clearly when the shell exits", async () => {
    await page.locator(".xterm").click();
    await run(page, "exit 3");
    await page.getByRole("alert").filter({ hasText: "Session ended" }).waitFor();
    await expect(page.getByRole("alert").textContent()).resolves.toContain("code 3");
    await page.getByRole("button", { name: "Hide this message" }).click();
    await page.getByRole("alert").filter({ hasText: "Session ended" }).waitFor({ state: "hidden" });
    await page.getByRole("status").filter({ hasText: "exited" }).waitFor();
  });
});
