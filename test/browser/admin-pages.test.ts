/**
 * The admin pages and a user's view, in Debian's Chromium against the real local stack: the admin
 * adds a server (and its agent, started with exactly the command the page shows, comes online),
 * a user, a group with that user, a grant and a token, all through the pages, and pages through
 * the audit log. The user then signs in with that token, sees only the granted server, and opens
 * a terminal there; they see no admin pages and the admin API refuses them. A user with a `read`
 * grant is offered only watching.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useStack } from "../support/stack.ts";
import { type TestBrowser, launchBrowser, skipBrowserTests, waitForConnected, waitForLine } from "./browser.ts";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const ARTIFACTS = `${REPO}test-artifacts`;

/** How long the second agent may take to connect, in milliseconds. */
const AGENT_ONLINE_TIMEOUT_MS = 30_000;

describe.skipIf(skipBrowserTests())("the admin pages and a user's view", () => {
  const stack = useStack();
  let browser: TestBrowser | undefined;
  let page: Page;
  let agent: ChildProcess | undefined;
  let aliceToken = "";

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await launchBrowser();
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    if (agent && agent.exitCode === null && agent.signalCode === null) {
      const exited = new Promise((resolve) => agent!.once("exit", resolve));
      agent.kill("SIGTERM");
      await exited;
    }
  });

  async function signIn(token: string): Promise<void> {
    await page.getByLabel("Access token").fill(token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("button", { name: "Sign out" }).waitFor();
  }

  async function signOut(): Promise<void> {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Access token").waitFor();
  }

  /** Opens admin section `tab` from the tab bar and waits for its list to finish loading. */
  async function openAdmin(tab: string): Promise<void> {
    await page.getByRole("navigation", { name: "Admin" }).getByRole("link", { name: tab, exact: true }).click();
    await page.getByRole("heading", { name: `Admin · ${tab}` }).waitFor();
    await page.locator('.list-area[aria-busy="false"]').waitFor();
  }

  /** Submits the form titled `title` and waits for its status line to say `done`. */
  async function submit(title: string, button: string, done: string | RegExp): Promise<void> {
    const form = page.getByRole("form", { name: title });
    await form.getByRole("button", { name: button }).click();
    await form.getByRole("status").filter({ hasText: done }).waitFor();
  }

  it("adds a server and shows the exact agent command, which brings its agent online", async () => {
    await page.goto(stack.url);
    await signIn(stack.apiKey);
    await page.getByRole("link", { name: "Admin" }).click();
    await page.getByRole("heading", { name: "Admin · Servers" }).waitFor();

    const form = page.getByRole("form", { name: "Add a server" });
    await form.getByLabel("Id", { exact: true }).fill("web-2");
    await form.getByLabel("Name", { exact: true }).fill("Web two");
    await submit("Add a server", "Add server", "Server web-2 added.");
    const command = (await page.getByLabel("Agent command for web-2").textContent()) ?? "";
    const m = /^EDGETTY_AGENT_TOKEN='([A-Za-z0-9_-]+)' edgetty-agent --edge (\S+) --server web-2$/.exec(command);
    expect(m, command).not.toBeNull();
    expect(m![2]).toBe(new URL(stack.url).origin);

    // Run it as the page says (`edgetty-agent` is `bin/edgetty.js agent` in a checkout), with a HOME of its own.
    const home = join(stack.stateDir, "home-web-2");
    mkdirSync(home);
    agent = spawn(process.execPath, ["bin/edgetty.js", "agent", "--edge", m![2]!, "--server", "web-2"], {
      cwd: REPO,
      env: { ...process.env, HOME: home, EDGETTY_AGENT_TOKEN: m![1]! },
      stdio: "ignore",
    });
    const row = page.getByRole("row").filter({ has: page.getByRole("cell", { name: "web-2", exact: true }) });
    await row.getByRole("cell", { name: "online", exact: true }).waitFor({ timeout: AGENT_ONLINE_TIMEOUT_MS });
    await expect(row.textContent()).resolves.toContain("Web two");
    await page.screenshot({ path: `${ARTIFACTS}/admin-servers.png`, fullPage: true });

    // A second add of the same id is refused in the form, not silently given a new token.
    await form.getByLabel("Id", { exact: true }).fill("web-2");
    await form.getByRole("button", { name: "Add server" }).click();
    await form.getByRole("alert").filter({ hasText: "exists already" }).waitFor();

    await row.getByRole("button", { name: "Disable server web-2" }).click();
    await row.getByText("disabled", { exact: true }).waitFor();
    await row.getByRole("button", { name: "Enable server web-2" }).click();
    await row.getByText("enabled", { exact: true }).waitFor();

    // A URL server: listed as one, with no agent command.
    await form.getByLabel("Id", { exact: true }).fill("ot-1");
    await form.getByText("URL server (an existing Open Terminal server)").click();
    await form.getByLabel("URL", { exact: true }).fill("http://127.0.0.1:9/");
    await form.getByLabel("API key", { exact: true }).fill("ot-1-secret-key");
    await submit("Add a server", "Add server", "Server ot-1 added.");
    await expect(page.getByLabel("Agent command for ot-1").count()).resolves.toBe(0);
    const otRow = page.getByRole("row").filter({ has: page.getByRole("cell", { name: "ot-1", exact: true }) });
    await otRow.getByRole("cell", { name: "URL server", exact: true }).waitFor();

    // Remove asks first; a server made elsewhere goes once confirmed.
    expect((await stack.api("/api/v1/admin/servers/tmp-1", { method: "PUT", body: "{}" })).status).toBe(200);
    await openAdmin("Users");
    await openAdmin("Servers");
    page.once("dialog", (d) => void d.accept());
    await page.getByRole("button", { name: "Remove server tmp-1" }).click();
    await page.getByRole("button", { name: "Remove server tmp-1" }).waitFor({ state: "detached" });
  });

  it("creates a user, a group with them in it, a grant and a token through the pages", async () => {
    await openAdmin("Users");
    let form = page.getByRole("form", { name: "Add a user" });
    await form.getByLabel("Id", { exact: true }).fill("alice");
    await form.getByLabel("Name", { exact: true }).fill("Alice");
    await submit("Add a user", "Add user", "User alice added.");
    await page.getByRole("cell", { name: "Alice", exact: true }).waitFor();
    // A bad id is the edge's clear refusal, shown in the form.
    await form.getByLabel("Id", { exact: true }).fill("alice");
    await form.getByRole("button", { name: "Add user" }).click();
    await form.getByRole("alert").filter({ hasText: "A user with that id (or email) already exists." }).waitFor();

    await openAdmin("Groups");
    form = page.getByRole("form", { name: "Add a group" });
    await form.getByLabel("Id", { exact: true }).fill("team-a");
    await submit("Add a group", "Add group", "Group team-a added.");
    form = page.getByRole("form", { name: "Add a member" });
    await form.getByLabel("Group", { exact: true }).selectOption("team-a");
    await form.getByLabel("User", { exact: true }).selectOption("alice");
    await submit("Add a member", "Add to group", "alice is in team-a.");
    await page.getByRole("list", { name: "Members of team-a" }).getByText("alice").waitFor();

    await openAdmin("Grants");
    form = page.getByRole("form", { name: "Grant access" });
    await form.getByLabel("Server", { exact: true }).selectOption("local");
    await form.getByLabel("To a").selectOption("group");
    await form.getByLabel("Who", { exact: true }).selectOption("team-a");
    await form.getByLabel("Access", { exact: true }).selectOption("write");
    await submit("Grant access", "Grant", "Granted write on local to group team-a.");
    await page.getByRole("button", { name: "Remove the grant of local to group team-a" }).waitFor();
    await page.screenshot({ path: `${ARTIFACTS}/admin-grants.png`, fullPage: true });

    await openAdmin("Tokens");
    form = page.getByRole("form", { name: "Create a token" });
    await form.getByLabel("User", { exact: true }).selectOption("alice");
    await form.getByLabel("Name", { exact: true }).fill("laptop");
    await form.getByLabel("Lifetime (days)").fill("1");
    await submit("Create a token", "Create token", /^Token \S+ created for alice\.$/);
    aliceToken = await page.getByLabel("New token for alice").inputValue();
    expect(aliceToken).toMatch(/^ett_/);
    await page.screenshot({ path: `${ARTIFACTS}/admin-tokens.png`, fullPage: true });
    // Listed without its secret; hidden for good once dismissed.
    await page.getByRole("cell", { name: "laptop", exact: true }).waitFor();
    expect(await page.locator(".admin-table").textContent()).not.toContain(aliceToken);
    await page.getByRole("button", { name: "Done, hide it" }).click();
    expect(await page.content()).not.toContain(aliceToken);
  });

  it("pages through the audit log", async () => {
    // Enough events for more than one page (50 a page).
    for (let i = 0; i < 30; i++) {
      const body = JSON.stringify({ server_id: "web-2", principal_type: "group", principal_id: "team-a", access: i % 2 ? "read" : "write" });
      expect((await stack.api("/api/v1/admin/grants", { method: "PUT", body })).status).toBe(200);
      expect((await stack.api("/api/v1/admin/grants?server_id=web-2&terminal_id=0&principal_type=group&principal_id=team-a", { method: "DELETE" })).status).toBe(200);
    }
    await openAdmin("Audit log");
    const rows = page.locator(".admin-table tbody tr");
    const firstId = async () => Number(await rows.first().locator("td").first().textContent());
    expect(await rows.count()).toBe(50);
    const newestId = await firstId();
    // Older pages until the last one, collecting what they show.
    let seen = (await page.locator(".admin-table").textContent()) ?? "";
    const older = page.getByRole("button", { name: "Older →" });
    while (await older.isEnabled()) {
      const was = await firstId();
      await older.click();
      await page.waitForFunction((id) => Number(document.querySelector(".admin-table tbody tr td")?.textContent) < id, was);
      seen += (await page.locator(".admin-table").textContent()) ?? "";
    }
    for (const action of ["user.create", "group.create", "group.member", "grant.put", "token.create", "server.update"]) expect(seen).toContain(action);
    expect(seen).toContain("admin-key");
    await expect(page.getByRole("button", { name: "← Newer" }).isEnabled()).resolves.toBe(true);
    await page.getByRole("button", { name: "Newest" }).click();
    await page.waitForFunction((id) => Number(document.querySelector(".admin-table tbody tr td")?.textContent) === id, newestId);
    await expect(page.getByRole("button", { name: "← Newer" }).isEnabled()).resolves.toBe(false);
    await page.screenshot({ path: `${ARTIFACTS}/admin-audit.png` });
  });

  it("signs the user in: only the granted server, a terminal there, no admin pages", async () => {
    await signOut();
    await signIn(aliceToken);
    await expect(page.locator(".who").textContent()).resolves.toBe("alice · user");
    await page.locator('.server-list[aria-busy="false"] .server').first().waitFor();
    // web-2 is online, but not granted to alice.
    expect(await page.locator(".server .server-id").allTextContents()).toEqual(["local"]);
    await expect(page.getByRole("link", { name: "Admin" }).isVisible()).resolves.toBe(false);

    await page.getByLabel("Shell").selectOption("bash");
    await page.getByRole("button", { name: "Start" }).click();
    await page.waitForURL(/#\/t\/local\/\d+$/);
    await waitForConnected(page);
    await page.locator(".xterm").click();
    await page.keyboard.type("echo alice-$((6*7))");
    await page.keyboard.press("Enter");
    await waitForLine(page, "alice-42");
    await page.goto(`${stack.url}/#/`);
    await page.locator('.server-list[aria-busy="false"] .session').first().waitFor();
    await page.screenshot({ path: `${ARTIFACTS}/user-sessions.png`, fullPage: true });

    // The admin pages are not for her, and the admin API refuses her session, read or write.
    await page.goto(`${stack.url}/#/admin/users`);
    await page.getByRole("heading", { name: "Admins only" }).waitFor();
    await expect(page.getByRole("form", { name: "Add a user" }).count()).resolves.toBe(0);
    const refused = await page.evaluate(async () => {
      const list = await fetch("/api/v1/admin/users");
      const add = await fetch("/api/v1/admin/users", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id: "mallory" }) });
      return [list.status, add.status, ((await add.json()) as { code?: string }).code];
    });
    expect(refused).toEqual([403, 403, "ADMIN_ONLY"]);
    expect((await stack.api("/api/v1/admin/users/mallory")).status).toBe(404);
  });

  it("offers a user with a read grant only watching", async () => {
    const admin = async (method: string, path: string, body?: unknown) => {
      const res = await stack.api(path, { method, ...(body ? { body: JSON.stringify(body) } : {}) });
      expect(res.status, `${method} ${path}`).toBeLessThan(300);
      return res.json() as Promise<Record<string, unknown>>;
    };
    await admin("POST", "/api/v1/admin/users", { id: "bob" });
    await admin("PUT", "/api/v1/admin/grants", { server_id: "local", principal_type: "user", principal_id: "bob", access: "read" });
    const { token } = await admin("POST", "/api/v1/admin/tokens", { user_id: "bob", ttl_s: 3600 });
    await signOut();
    await signIn(String(token));
    const card = page.locator('.server-list[aria-busy="false"] .server').first();
    await card.getByText("watch only").waitFor();
    const row = card.locator(".session").first();
    await row.waitFor();
    const id = await row.getAttribute("data-terminal-id");
    await row.getByRole("link", { name: `Watch terminal ${id} read-only` }).waitFor();
    expect(await row.getByRole("link", { name: `Open terminal ${id}`, exact: true }).count()).toBe(0);
    expect(await row.getByRole("button", { name: `Delete terminal ${id}` }).count()).toBe(0);
    await expect(page.getByRole("heading", { name: "New terminal" }).isVisible()).resolves.toBe(false);
    await page.screenshot({ path: `${ARTIFACTS}/reader-sessions.png`, fullPage: true });
    // A writer's address of that terminal opens read-only for him.
    await page.goto(`${stack.url}/#/t/local/${id}`);
    await page.waitForURL(new RegExp(`#/t/local/${id}/ro$`));
    await expect(page.getByRole("link", { name: "Download raw output" }).isVisible()).resolves.toBe(false);
  });
});
