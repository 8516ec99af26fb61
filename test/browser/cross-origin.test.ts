/**
 * A page of another origin (as Open WebUI's per-user "direct" terminals are) calls the Open
 * Terminal API from Chromium with a bearer key: preflights pass without auth and answers are
 * readable. The same page cannot act with the edge's session cookie.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type TestStack } from "../support/stack.ts";
import { type TestBrowser, launchBrowser, skipBrowserTests } from "./browser.ts";

const skip = skipBrowserTests();

describe.skipIf(skip)("a cross-origin page in Chromium", () => {
  let stack: TestStack;
  let browser: TestBrowser;
  let page: Server;
  let pageUrl: string;

  beforeAll(async () => {
    // The default CORS setting: any origin, as the reference (never with credentials).
    stack = await startStack();
    browser = await launchBrowser();
    // Another origin: a different port on loopback, serving an empty page.
    page = createServer((_req, res) => res.end("<!doctype html><title>other origin</title>"));
    await new Promise<void>((resolve) => page.listen(0, "127.0.0.1", resolve));
    pageUrl = `http://127.0.0.1:${(page.address() as AddressInfo).port}/`;
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => page?.close(resolve));
    await stack?.stop();
  });

  it("lists files, writes one and runs a command with a bearer key", async () => {
    const tab = await browser.context.newPage();
    await tab.goto(pageUrl);
    const result = await tab.evaluate(
      async ({ api, key }) => {
        const headers = { Authorization: `Bearer ${key}`, "Content-Type": "application/json", "X-Session-Id": "chat-x" };
        const write = await fetch(`${api}/files/write`, { method: "POST", headers, body: JSON.stringify({ path: "from-browser.txt", content: "hi" }) });
        const list = await fetch(`${api}/api/v1/terminals/local/files/list?directory=.`, { headers });
        const run = await fetch(`${api}/execute?wait=5`, { method: "POST", headers, body: JSON.stringify({ command: "echo browser" }) });
        const noKey = await fetch(`${api}/files/list`);
        return {
          write: write.status,
          names: ((await list.json()) as { entries: { name: string }[] }).entries.map((e) => e.name),
          run: ((await run.json()) as { output: { data: string }[] }).output.map((o) => o.data).join(""),
          noKey: noKey.status,
        };
      },
      { api: stack.url, key: stack.apiKey },
    );
    expect(result).toEqual({ write: 200, names: expect.arrayContaining(["from-browser.txt"]), run: "browser\r\n", noKey: 401 });
    await tab.close();
  });

  it("cannot use the edge's session cookie", async () => {
    // Sign in on the edge's own origin, so the browser holds the session cookie.
    const own = await browser.context.newPage();
    await own.goto(`${stack.url}/`);
    const signedIn = await own.evaluate(async (key) => (await fetch("/api/v1/auth/session", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: key }) })).status, stack.apiKey);
    expect(signedIn).toBe(204);
    expect(await own.evaluate(async () => (await fetch("/files/cwd")).status)).toBe(200);
    await own.close();

    const tab = await browser.context.newPage();
    await tab.goto(pageUrl);
    const before = (await (await stack.api("/api/v1/terminal/sessions")).json()) as unknown[];
    const outcome = await tab.evaluate(async (api) => {
      const read = async (path: string) => {
        try {
          const res = await fetch(`${api}${path}`, { credentials: "include" });
          return `read ${res.status}`;
        } catch {
          return "blocked";
        }
      };
      // A state change the page cannot read the answer of (no-cors needs no preflight).
      await fetch(`${api}/api/v1/terminal/create`, { method: "POST", credentials: "include", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body: "{}" }).catch(() => null);
      return { files: await read("/files/cwd"), sessions: await read("/api/v1/terminal/sessions") };
    }, stack.url);
    // The same host on another port is the same site: the browser sends the cookie, and neither
    // answer is readable (no Access-Control-Allow-Credentials), nor did the state change happen.
    expect(outcome).toEqual({ files: "blocked", sessions: "blocked" });
    expect(((await (await stack.api("/api/v1/terminal/sessions")).json()) as unknown[]).length).toBe(before.length);
    await tab.close();
  });
});
