/**
 * The web app's everyday controls in Debian's Chromium against the real local stack: a writer makes,
 * copies and revokes share links from the terminal page; long names never push buttons off-screen;
 * over-long ids are reported, not cut short; the history panel and the find bar keep out of each
 * other's way; the phone key bar stays off a narrow desktop window; errors read as plain words; and
 * a user who is signed out from elsewhere is told why.
 */
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useStack } from "../support/stack.ts";
import { type TestBrowser, launchBrowser, skipBrowserTests, waitForConnected } from "./browser.ts";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const ARTIFACTS = `${REPO}test-artifacts`;
const TERMINAL = 5;
const LONG_NAME = `very-long-server-name-${"x".repeat(178)}`;

describe.skipIf(skipBrowserTests())("the web app's controls", () => {
  const stack = useStack();
  let browser: TestBrowser | undefined;
  let page: Page;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await launchBrowser();
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    const created = await stack.api("/api/v1/terminals/local/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: String(TERMINAL) }) });
    expect(created.status).toBe(200);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
  });

  async function signIn(p: Page, token: string): Promise<void> {
    await p.goto(stack.url);
    await p.getByLabel("Access token").fill(token);
    await p.getByRole("button", { name: "Sign in" }).click();
    await p.getByRole("button", { name: "Sign out" }).waitFor();
  }

  /** Whether the page scrolls sideways (something is wider than the window). */
  const overflowsX = (p: Page): Promise<boolean> => p.evaluate(() => document.documentElement.scrollWidth > innerWidth + 1);

  it("makes, lists and revokes share links from the terminal page", async () => {
    await signIn(page, stack.apiKey);
    await page.goto(`${stack.url}/#/t/local/${TERMINAL}`);
    await waitForConnected(page);
    await page.getByRole("button", { name: "Share a read-only link" }).click();
    const dialog = page.getByRole("dialog", { name: `Share terminal #${TERMINAL}` });
    await dialog.getByText("read-only access to this terminal to anyone who holds it").waitFor();
    await dialog.getByLabel("Expires after").selectOption({ label: "1 day" });
    await dialog.getByRole("button", { name: "Create link" }).click();
    const url = await dialog.getByRole("textbox", { name: "Share link", exact: true }).inputValue();
    expect(url).toMatch(/\/share#server=local&terminal=5&token=ets_/);
    await dialog.getByRole("button", { name: "Copy the share link" }).waitFor();
    const item = dialog.locator(".share-item");
    await item.first().waitFor();
    await expect(item.count()).resolves.toBe(1);
    expect(await item.textContent()).toMatch(/expires in (23|24) h/);
    await page.screenshot({ path: `${ARTIFACTS}/web-share-dialog.png` });

    // The link opens the terminal read-only, and stops working once revoked.
    const viewer = await browser!.context.newPage();
    await viewer.goto(url);
    await waitForConnected(viewer);
    await item.getByRole("button", { name: /^Revoke/ }).click();
    await dialog.getByText("No live links.").waitFor();
    await viewer.getByRole("alert").filter({ hasText: "This share link has expired or was revoked" }).waitFor({ timeout: 45_000 });
    expect(await viewer.locator(".exit-banner span").textContent()).not.toMatch(/^\s*—/);
    await viewer.close();

    // Esc closes it and the terminal has the keyboard again.
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });
    expect(await page.evaluate(() => document.activeElement?.closest(".xterm") !== null)).toBe(true);
  });

  it("says in plain words when a terminal has too many links", async () => {
    const live = ((await (await stack.api(`/api/v1/terminals/local/api/v1/terminal/share/${TERMINAL}`)).json()) as unknown[]).length;
    for (let i = live; i < 20; i++) {
      const res = await stack.api(`/api/v1/terminals/local/api/v1/terminal/share/${TERMINAL}`, { method: "POST", body: "{}" });
      expect(res.status).toBe(201);
    }
    await page.getByRole("button", { name: "Share a read-only link" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByRole("button", { name: "Create link" }).click();
    await dialog.getByRole("alert").filter({ hasText: "already has the most live share links it may have (20): revoke one first" }).waitFor();
    await page.keyboard.press("Escape");
  });

  it("offers no Share button on a read-only page", async () => {
    await page.goto(`${stack.url}/#/t/local/${TERMINAL}/ro`);
    await waitForConnected(page);
    await page.getByRole("button", { name: "Find in terminal (Ctrl+Shift+F)" }).waitFor();
    await expect(page.getByRole("button", { name: "Share a read-only link" }).count()).resolves.toBe(0);
  });

  it("moves focus into the history panel, closes it on Esc and keeps the find bar off its header", async () => {
    await page.goto(`${stack.url}/#/t/local/${TERMINAL}`);
    await waitForConnected(page);
    const historyButton = page.getByRole("button", { name: "Command history" });
    await historyButton.waitFor();
    await historyButton.click();
    const panel = page.getByRole("complementary", { name: "Command history" });
    expect(await page.evaluate(() => document.activeElement?.closest(".history-panel") !== null)).toBe(true);
    await page.keyboard.press("Control+Shift+F");
    await page.getByRole("search").waitFor();
    const bar = (await page.getByRole("search").boundingBox())!;
    for (const name of ["Refresh history", "Close history"]) {
      const b = (await panel.getByRole("button", { name }).boundingBox())!;
      const overlaps = b.x < bar.x + bar.width && bar.x < b.x + b.width && b.y < bar.y + bar.height && bar.y < b.y + b.height;
      expect(overlaps, `the find bar covers ${name}`).toBe(false);
    }
    await page.screenshot({ path: `${ARTIFACTS}/web-history-and-find.png` });
    await page.keyboard.press("Escape"); // closes the find bar (its input has the focus)
    await page.getByRole("search").waitFor({ state: "hidden" });
    await panel.focus();
    await page.keyboard.press("Escape");
    await panel.waitFor({ state: "hidden" });
    expect(await page.evaluate(() => document.activeElement?.closest(".xterm") !== null)).toBe(true);
  });

  it("shows no phone key bar on a narrow desktop window", async () => {
    await page.setViewportSize({ width: 600, height: 600 });
    await page.getByRole("button", { name: "Find in terminal (Ctrl+Shift+F)" }).waitFor();
    await expect(page.getByRole("toolbar", { name: "Extra keys" }).isVisible()).resolves.toBe(false);
    await page.setViewportSize({ width: 1000, height: 640 });
  });

  it("keeps buttons on screen whatever a server's name is long", async () => {
    const res = await stack.api("/api/v1/admin/servers/long-name", { method: "PUT", body: JSON.stringify({ name: LONG_NAME }) });
    expect(res.status).toBeLessThan(300);
    await page.goto(`${stack.url}/#/admin/servers`);
    await page.getByRole("cell", { name: LONG_NAME }).waitFor();
    await page.screenshot({ path: `${ARTIFACTS}/web-admin-long-name.png` });
    expect(await overflowsX(page)).toBe(false);
    const remove = (await page.getByRole("button", { name: "Remove server long-name" }).boundingBox())!;
    expect(remove.x + remove.width).toBeLessThanOrEqual(1000);
    expect(await page.getByRole("cell", { name: LONG_NAME }).locator(".clip").getAttribute("title")).toBe(LONG_NAME);
    await page.screenshot({ path: `${ARTIFACTS}/web-admin-long-name.png` });

    await page.goto(`${stack.url}/#/`);
    await page.getByRole("heading", { name: LONG_NAME }).waitFor();
    await page.locator(`.session[data-terminal-id="${TERMINAL}"]`).waitFor();
    expect(await overflowsX(page)).toBe(false);
    const select = (await page.getByLabel("Server", { exact: true }).boundingBox())!;
    expect(select.width).toBeLessThan(400);
    const del = (await page.getByRole("button", { name: `Delete terminal ${TERMINAL}` }).boundingBox())!;
    expect(del.x + del.width).toBeLessThanOrEqual(1000);
    await page.screenshot({ path: `${ARTIFACTS}/web-sessions-long-name.png` });
  });

  it("reports an over-long server id instead of cutting it short", async () => {
    await page.goto(`${stack.url}/#/admin/servers`);
    const form = page.getByRole("form", { name: "Add a server" });
    const id = form.getByLabel("Id", { exact: true });
    await id.fill("a".repeat(70));
    expect(await id.inputValue()).toHaveLength(70);
    await form.getByRole("button", { name: "Add server" }).click();
    expect(await id.evaluate((el: HTMLInputElement) => el.validationMessage)).toContain("at most 63 characters (this has 70)");
    const servers = (await (await stack.api("/api/v1/terminals/")).json()) as { id: string }[];
    expect(servers.some((s) => s.id.startsWith("aaaa"))).toBe(false);
  });

  it("says what went wrong in plain words", async () => {
    const users = page.getByRole("form", { name: "Add a user" });
    await page.goto(`${stack.url}/#/admin/users`);
    await users.getByLabel("Id", { exact: true }).fill("bob");
    await users.getByRole("button", { name: "Add user" }).click();
    await users.getByRole("status").filter({ hasText: "User bob added." }).waitFor();
    await users.getByLabel("Id", { exact: true }).fill("bob");
    await users.getByRole("button", { name: "Add user" }).click();
    const alert = users.getByRole("alert").filter({ hasText: "A user with that id (or email) already exists." });
    await alert.waitFor();
    expect(await alert.textContent()).not.toContain("USER_EXISTS");

    // A missing directory: the form can create it.
    await page.goto(`${stack.url}/#/`);
    await page.getByLabel("Working directory").fill(`${stack.home}/made-by-the-form/sub`);
    await page.getByRole("button", { name: "Start" }).click();
    await page.getByText('tick "create it if missing"').waitFor();
    await page.getByLabel("Create it if missing").check();
    await page.getByRole("button", { name: "Start" }).click();
    await page.waitForURL(/#\/t\/local\/\d+$/);
    await waitForConnected(page);

    // The edge out of reach.
    await page.route("**/api/v1/terminals/", (route) => route.abort());
    await page.goto(`${stack.url}/#/`);
    await page.getByText("Could not load servers: cannot reach the edge").waitFor();
    await page.unroute("**/api/v1/terminals/");
  });

  it("tells a user why they are back at the sign-in page", async () => {
    const put = (path: string, method: string, body: unknown) => stack.api(path, { method, body: JSON.stringify(body) });
    expect((await put("/api/v1/admin/users", "POST", { id: "carol", role: "user" })).status).toBeLessThan(300);
    expect((await put("/api/v1/admin/grants", "PUT", { server_id: "local", terminal_id: 0, principal_type: "user", principal_id: "carol", access: "write" })).status).toBeLessThan(300);
    const token = (await (await put("/api/v1/admin/tokens", "POST", { user_id: "carol", ttl_s: 3600, scopes: [] })).json()) as { id: string; token: string };

    // Another tab signs out: this one says so at once.
    const other = await browser!.context.newPage();
    await other.goto(stack.url);
    await other.getByRole("button", { name: "Sign out" }).waitFor();
    await page.getByRole("button", { name: "Sign out" }).click();
    await other.getByText("You were signed out in another tab.").waitFor();
    await other.close();

    // The token is revoked: the next call (the sessions list refreshes) gets 401.
    await signIn(page, token.token);
    await page.goto(`${stack.url}/#/t/local/${TERMINAL}`);
    await waitForConnected(page);
    expect((await stack.api(`/api/v1/admin/tokens/${token.id}`, { method: "DELETE" })).status).toBeLessThan(300);
    await page.getByText("Your session ended: the token was revoked or expired. Sign in again.").waitFor({ timeout: 45_000 });
    await page.getByLabel("Access token").waitFor();
    await page.screenshot({ path: `${ARTIFACTS}/web-signed-out-reason.png` });
  });
});
