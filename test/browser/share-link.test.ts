/**
 * A share link in Debian's Chromium against the real local stack: the link's URL, opened with no
 * sign-in, shows the terminal read-only (output arrives, typing changes nothing, the token never
 * appears in a URL the browser sends), and the page says so once the link is revoked.
 */
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useStack } from "../support/stack.ts";
import { TermClient } from "../support/term-client.ts";
import { type TestBrowser, launchBrowser, screenText, skipBrowserTests, waitForConnected, waitForLine } from "./browser.ts";

const TERMINAL = 7;

describe.skipIf(skipBrowserTests())("a share link in the browser", () => {
  const stack = useStack();
  let browser: TestBrowser | undefined;
  let page: Page;
  const requestUrls: string[] = [];
  let link: { id: string; token: string; url: string };
  let writer: TermClient;

  beforeAll(async () => {
    browser = await launchBrowser();
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    page.on("request", (r) => requestUrls.push(r.url()));
    page.on("websocket", (ws) => requestUrls.push(ws.url()));
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
  });

  it("opens the terminal read-only with no sign-in", async () => {
    const created = await stack.api("/api/v1/terminals/local/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: String(TERMINAL) }) });
    expect(created.status).toBe(200);
    writer = stack.track(await TermClient.connect(`${stack.url}/api/v1/terminals/local/api/v1/terminal/ws?terminal_id=${TERMINAL}`, { apiKey: stack.apiKey }));
    writer.input("clear; echo shared-$((6*7))\r");
    await writer.waitForText("shared-42");
    const res = await stack.api(`/api/v1/terminals/local/api/v1/terminal/share/${TERMINAL}`, { method: "POST", body: JSON.stringify({ ttl_s: 600 }) });
    expect(res.status).toBe(201);
    link = (await res.json()) as typeof link;

    await page.goto(link.url);
    await waitForConnected(page);
    await waitForLine(page, "shared-42");
    await expect(page.locator(".badge-readonly").isVisible()).resolves.toBe(true);
    expect(await page.evaluate(() => (globalThis as any).edgettyDebug.readonly())).toBe(true);
    // No sign-in form: the link is the credential.
    expect(await page.getByLabel("Access token").count()).toBe(0);
  });

  it("shows what the writer types and sends nothing the viewer types", async () => {
    await page.locator(".xterm").click();
    await page.keyboard.type("echo from-viewer");
    await page.keyboard.press("Enter");
    const sentInput = await page.evaluate(() => (globalThis as any).__sent[0] ?? 0);
    expect(sentInput).toBe(0);
    writer.input("echo from-writer\r");
    await waitForLine(page, "from-writer");
    expect(await screenText(page)).not.toContain("from-viewer");
    expect(writer.text()).not.toContain("from-viewer");
    // The token rides in the fragment and a WebSocket subprotocol, never in a URL the browser sends.
    expect(requestUrls.length).toBeGreaterThan(0);
    expect(requestUrls.filter((u) => u.includes(link.token))).toEqual([]);
  });

  it("says the link is no longer valid once it is revoked", async () => {
    const res = await stack.api(`/api/v1/terminals/local/api/v1/terminal/share/${TERMINAL}/${link.id}`, { method: "DELETE" });
    expect(res.status).toBe(200);
    await page.getByRole("alert").filter({ hasText: "Link no longer valid" }).waitFor({ timeout: 45_000 });
    expect(await page.evaluate(() => (globalThis as any).edgettyDebug.phase())).toMatchObject({ kind: "ended", why: "unauthorized" });
  });
});
