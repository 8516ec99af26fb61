/** The terminals proxy's checks run in the contract's order, one request per step. */
import { describe, expect, it } from "vitest";
import { addressedTerminal, checkProxyRequest, refusalResponse, requiredAccess, type Access, type ProxyLookups } from "../../edge/proxy-checks.ts";

interface S {
  id: string;
  enabled: boolean;
  grant: Access | null;
  online: boolean;
}

const servers: Record<string, S> = {
  off: { id: "off", enabled: false, grant: "write", online: true },
  hidden: { id: "hidden", enabled: true, grant: null, online: true },
  down: { id: "down", enabled: true, grant: "write", online: false },
  up: { id: "up", enabled: true, grant: "write", online: true },
  ro: { id: "ro", enabled: true, grant: "read", online: true },
};

/** Lookups over the table above that record which steps ran. */
function lookups(calls: string[]): ProxyLookups<S> {
  return {
    server: async (id) => (calls.push(`server:${id}`), servers[id] ?? null),
    access: async (s) => (calls.push(`access:${s.id}`), s.grant),
    reachable: async (s) => (calls.push(`reachable:${s.id}`), s.online),
  };
}

async function run(id: string, path: string, method = "GET") {
  const calls: string[] = [];
  const result = await checkProxyRequest(lookups(calls), id, path, method);
  return { result, calls };
}

describe("terminals proxy checks", () => {
  it("answers an unknown server 404 before anything else, even with a hostile path", async () => {
    const { result, calls } = await run("nope", "../x");
    expect(result).toMatchObject({ ok: false, status: 404, closeCode: 4004, error: "Terminal server not found" });
    expect(calls).toEqual(["server:nope"]);
  });

  it("answers a disabled server 403 before asking about access", async () => {
    const { result, calls } = await run("off", "../x");
    expect(result).toMatchObject({ ok: false, status: 403, closeCode: 4003, error: "Terminal server disabled" });
    expect(calls).toEqual(["server:off"]);
  });

  it("answers no grant 403 Access denied before probing reachability", async () => {
    const { result, calls } = await run("hidden", "../x");
    expect(result).toMatchObject({ ok: false, status: 403, error: "Access denied" });
    expect(calls).toEqual(["server:hidden", "access:hidden"]);
  });

  it("answers an unreachable server 503 before looking at the path", async () => {
    const { result } = await run("down", "../x");
    expect(result).toMatchObject({ ok: false, status: 503, error: "Terminal server not reachable" });
  });

  it("answers a bad path 400 Invalid path last", async () => {
    for (const path of ["../x", "%2e%2e%2fx", "%252e%252e%252fx", "a%5c..%5cb"]) {
      const { result, calls } = await run("up", path);
      expect(result, path).toMatchObject({ ok: false, status: 400, error: "Invalid path" });
      expect(calls).toEqual(["server:up", "access:up", "reachable:up"]);
    }
  });

  it("passes the sanitised path and the caller's access", async () => {
    const { result } = await run("up", "api%2Fconfig", "GET");
    expect(result).toEqual({ ok: true, server: servers.up, path: "api/config", access: "write", terminals: null, serverAccess: "write" });
  });

  it("lets a grant on one terminal reach that terminal's routes only", async () => {
    const one: ProxyLookups<S> = { ...lookups([]), terminals: async () => new Map<number, Access>([[5, "read"], [6, "write"]]) };
    const check = (path: string, method = "GET", search = "") => checkProxyRequest(one, "hidden", path, method, search);
    expect(await check("api/v1/terminal/ws", "GET", "?terminal_id=5")).toMatchObject({ ok: true, access: "read", terminals: new Set([5, 6]) });
    expect(await check("api/v1/terminal/history/5")).toMatchObject({ ok: true, access: "read" });
    expect(await check("api/v1/terminal/screenshot", "GET", "?terminal_id=5&save=false")).toMatchObject({ ok: true, access: "read" });
    expect(await check("api/v1/terminal/6", "DELETE")).toMatchObject({ ok: true, access: "write", serverAccess: null });
    expect(await check("api/v1/terminal/share/6", "POST")).toMatchObject({ ok: true, access: "write" });
    // The list is shown (the route filters it); other terminals, server-wide routes and writes on 5 are refused.
    expect(await check("api/v1/terminal/sessions")).toMatchObject({ ok: true, access: "read" });
    for (const [path, method, search] of [
      ["api/v1/terminal/ws", "GET", "?terminal_id=7"],
      ["api/v1/terminal/ws", "GET", ""],
      ["api/v1/terminal/history/7", "GET", ""],
      ["api/v1/terminal/raw", "GET", ""], // terminal 1 by default
      ["api/v1/terminal/create", "POST", ""],
      ["api/config", "GET", ""],
      ["files/list", "GET", "?terminal_id=5"],
      ["execute", "POST", "?terminal_id=6"],
    ] as const) {
      expect(await check(path, method, search), `${method} ${path}${search}`).toMatchObject({ ok: false, status: 403, code: "ACCESS_DENIED" });
    }
    for (const [path, method, search] of [["api/v1/terminal/5", "DELETE", ""], ["api/v1/terminal/share/5", "POST", ""], ["api/v1/terminal/share/5", "GET", ""]] as const) {
      expect(await check(path, method, search), `${method} ${path}`).toMatchObject({ ok: false, status: 403, code: "READ_ONLY" });
    }
  });

  it("finds the terminal a session API path addresses as its route does", () => {
    expect(addressedTerminal("api/v1/terminal/history/12", "?terminal_id=3")).toBe(12);
    expect(addressedTerminal("api/v1/terminal/history", "?terminal_id=3&terminal_id=4")).toBe(3);
    expect(addressedTerminal("api/v1/terminal/raw", "")).toBe(1);
    expect(addressedTerminal("api/v1/terminal/share/9/0123456789abcdef", "")).toBe(9);
    expect(addressedTerminal("api/v1/terminal/ws", "?terminal_id=70000")).toBeNull();
    expect(addressedTerminal("api/v1/terminal/sessions", "?terminal_id=3")).toBeNull();
    expect(addressedTerminal("files/read", "?terminal_id=3")).toBeNull();
  });

  it("lets a read grant look but not change anything", async () => {
    expect((await run("ro", "api/v1/terminal/sessions")).result).toMatchObject({ ok: true, access: "read" });
    expect((await run("ro", "api/config", "HEAD")).result).toMatchObject({ ok: true });
    for (const [method, path] of [["POST", "api/terminals"], ["DELETE", "api/v1/terminal/3"], ["POST", "execute"], ["GET", "files/read"], ["GET", "execute/x/status"], ["POST", "api/v1/terminal/create"], ["PUT", "api/config"]]) {
      expect((await run("ro", path!, method)).result, `${method} ${path}`).toMatchObject({ ok: false, status: 403, code: "READ_ONLY" });
    }
  });

  it("classifies routes fail-closed", () => {
    expect(requiredAccess("get", "health")).toBe("read");
    expect(requiredAccess("GET", "api/v1/terminal/history/12")).toBe("read");
    expect(requiredAccess("GET", "api/v1/terminal/ws")).toBe("read");
    expect(requiredAccess("GET", "files/list")).toBe("write");
    expect(requiredAccess("GET", "api/v1/terminal/share/3")).toBe("write");
    expect(requiredAccess("GET", "something/new")).toBe("write");
    expect(requiredAccess("PATCH", "api/config")).toBe("write");
  });

  it("renders refusals as {error, code}", async () => {
    const { result } = await run("off", "x");
    if (result.ok) throw new Error("expected a refusal");
    const response = refusalResponse(result);
    expect(response.status).toBe(403);
    expect(await response.json()).toEqual({ error: "Terminal server disabled", code: "SERVER_DISABLED" });
  });
});
