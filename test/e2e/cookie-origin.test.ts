/**
 * Issue 9 rows 2 and 7 through the real stack: a browser's session cookie carries no authority
 * across origins (another port of the same host included), JSON routes take JSON only, and
 * signing out revokes the cookie on the server.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type TestStack } from "../support/stack.ts";

let stack: TestStack;
/** Another origin on the same host: SameSite=Strict still sends the cookie from there. */
let otherPort: string;

beforeAll(async () => {
  stack = await startStack();
  const url = new URL(stack.url);
  otherPort = `${url.protocol}//${url.hostname}:${Number(url.port) + 1}`;
});

afterAll(async () => {
  await stack?.stop();
});

async function signIn(): Promise<string> {
  const res = await fetch(`${stack.url}/api/v1/auth/session`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: stack.apiKey }) });
  expect(res.status).toBe(204);
  return res.headers.get("set-cookie")!.split(";")[0]!;
}

function asBrowser(cookie: string, path: string, init: { method?: string; origin: string; type?: string; body?: string }): Promise<Response> {
  const headers: Record<string, string> = { Cookie: cookie, Origin: init.origin };
  if (init.type) headers["Content-Type"] = init.type;
  return fetch(stack.url + path, { method: init.method ?? "GET", headers, ...(init.body !== undefined ? { body: init.body } : {}) });
}

describe("a cookie sent from another origin", () => {
  const attacks = [
    { what: "/execute", method: "POST", path: "/execute", body: { command: "touch pwned" } },
    { what: "create", method: "POST", path: "/api/v1/terminal/create", body: { terminal_id: 31 } },
    { what: "delete", method: "DELETE", path: "/api/v1/terminal/30", body: {} },
    { what: "server registration", method: "PUT", path: "/api/v1/admin/servers/evil", body: { token: "attacker-chosen-token-123" } },
  ];
  for (const attack of attacks) {
    for (const [kind, type, encode] of [
      ["text/plain", "text/plain;charset=UTF-8", (b: object) => JSON.stringify(b)],
      ["a form", "application/x-www-form-urlencoded", (b: object) => new URLSearchParams(Object.entries(b).map(([k, v]) => [k, String(v)])).toString()],
    ] as const) {
      it(`cannot ${attack.what} with ${kind}`, async () => {
        const cookie = await signIn();
        for (const origin of ["http://evil.example", otherPort]) {
          const res = await asBrowser(cookie, attack.path, { method: attack.method, origin, type, body: encode(attack.body) });
          expect(res.status).toBe(403);
          const body = (await res.json()) as Record<string, unknown>;
          expect(body["code"]).toBe("ORIGIN_CHECK_FAILED");
        }
      });
    }
  }

  it("gets answers a browser will not show the page: CORS allows any origin by default, never with credentials", async () => {
    const cookie = await signIn();
    for (const path of ["/api/v1/terminal/sessions", "/api/v1/auth/session", "/api/v1/terminals/"]) {
      const res = await asBrowser(cookie, path, { origin: "http://evil.example" });
      await res.arrayBuffer();
      expect(res.headers.get("Access-Control-Allow-Origin"), path).toBe("http://evil.example");
      expect(res.headers.get("Access-Control-Allow-Credentials"), path).toBeNull();
    }
    const pre = await fetch(`${stack.url}/api/v1/terminal/create`, { method: "OPTIONS", headers: { Origin: "http://evil.example", "Access-Control-Request-Method": "POST" } });
    expect(pre.headers.get("Access-Control-Allow-Credentials")).toBeNull();
  });

  it("changed nothing", async () => {
    const sessions = (await (await stack.api("/api/v1/terminal/sessions")).json()) as { id: number }[];
    expect(sessions.map((s) => s.id)).not.toContain(31);
    const servers = (await (await stack.api("/api/v1/admin/servers")).json()) as { id: string }[];
    expect(servers.map((s) => s.id)).not.toContain("evil");
  });
});

describe("a cookie sent from the edge's own origin", () => {
  it("creates and deletes a terminal", async () => {
    const cookie = await signIn();
    const created = await asBrowser(cookie, "/api/v1/terminal/create", { method: "POST", origin: stack.url, type: "application/json", body: JSON.stringify({ terminal_id: 30 }) });
    expect(await created.json()).toMatchObject({ status: "created", terminal_id: 30 });
    const deleted = await asBrowser(cookie, "/api/v1/terminal/30", { method: "DELETE", origin: stack.url });
    expect(await deleted.json()).toEqual({ status: "deleted", terminal_id: 30 });
  });

  it("stops working once signed out, for a copy of it too", async () => {
    const cookie = await signIn();
    const copy = `${cookie}`;
    expect((await asBrowser(copy, "/api/v1/auth/session", { origin: stack.url })).status).toBe(200);
    const out = await asBrowser(cookie, "/api/v1/auth/session", { method: "DELETE", origin: stack.url });
    expect(out.status).toBe(204);
    expect((await asBrowser(copy, "/api/v1/auth/session", { origin: stack.url })).status).toBe(401);
    const create = await asBrowser(copy, "/api/v1/terminal/create", { method: "POST", origin: stack.url, type: "application/json", body: JSON.stringify({ terminal_id: 32 }) });
    expect(create.status).toBe(401);
  });
});
