/**
 * The operator's side of the Worker inside workerd: the stats API, what a hostile agent's hello
 * can put in storage, configuration validation and CORS.
 */
import { describe, expect, it } from "vitest";
import { api, BASE, worker } from "./worker-client.ts";
import { corsPreflight, withCors } from "../../edge/cors.ts";
import { readConfig, type Env } from "../../edge/env.ts";
import type { StatsBody } from "../../shared/stats.ts";
import { ApiError } from "../../shared/errors.ts";
import { ConfigError, EDGE_SETTINGS, parseSettings } from "../../shared/limits.ts";


async function stats(): Promise<StatsBody> {
  const res = await api("/api/v1/admin/stats");
  expect(res.status).toBe(200);
  return (await res.json()) as StatsBody;
}

describe("GET /api/v1/admin/stats", () => {
  it("needs the admin key and answers in the terminal API's error shape", async () => {
    const res = await api("/api/v1/admin/stats", {}, null);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ statusCode: 401, code: "UNAUTHORIZED" });
  });

  it("keeps only known, bounded facts from an agent's hello", async () => {
    const reg = await api("/api/v1/admin/servers/hostile", { method: "PUT", body: "{}" });
    const { token } = (await reg.json()) as { token: string };
    const res = await worker.fetch(`${BASE}/agent/v1/control?server=hostile`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` } });
    const ws = res.webSocket!;
    ws.accept();
    ws.send(
      JSON.stringify({
        t: "hello",
        agent: {
          version: "9.9.9",
          hostname: "h".repeat(100_000),
          platform: 42,
          is_root: "yes",
          injected: { a: 1 },
          facts: { arch: "x64", os_release: "6.1", node: "v20", cpus: -3, memory_bytes: 1.5, started_at: "not a date", extra: "x" },
        },
        sessions: [],
      }),
    );
    let server: StatsBody["servers"][number] | undefined;
    for (let i = 0; i < 50 && !server?.agent; i++) server = (await stats()).servers.find((s) => s.id === "hostile");
    expect(server!.agent).toEqual({
      version: "9.9.9",
      hostname: "h".repeat(200),
      platform: "",
      is_root: false,
      facts: { arch: "x64", os_release: "6.1", node: "v20", cpus: 0, memory_bytes: 0, started_at: "" },
    });
    expect(server).toMatchObject({ online: true, agent_connects: 1, reconnects: 0 });
    ws.close();
  });
});

describe("configuration", () => {
  const env = (vars: Record<string, string>) => ({ ...vars }) as unknown as Env;

  it("takes defaults for absent values and refuses bad ones, naming each", () => {
    expect(readConfig(env({}))).toMatchObject({ maxClients: 32, maxSessionsPerServer: 256, idleTimeoutMs: 0, ephemeralIdleTimeoutMs: 300_000, corsOrigins: ["*"] });
    // `none` turns the default (any origin, as the reference) off.
    expect(readConfig(env({ EDGETTY_CORS_ORIGINS: "none" })).corsOrigins).toEqual([]);
    expect(readConfig(env({ EDGETTY_CORS_ORIGINS: " NONE " })).corsOrigins).toEqual([]);
    expect(readConfig(env({ EDGETTY_MAX_CLIENTS: "4", EDGETTY_CORS_ORIGINS: "https://a.example, http://b.example:8080" }))).toMatchObject({
      maxClients: 4,
      corsOrigins: ["https://a.example", "http://b.example:8080"],
    });
    let error: unknown;
    try {
      readConfig(env({ EDGETTY_MAX_CLIENTS: "0", EDGETTY_IDLE_TIMEOUT_S: "ten", EDGETTY_ALLOWED_ORIGINS: "https://ok.example,https://bad.example/path" }));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(500);
    expect((error as ApiError).code).toBe("CONFIG_INVALID");
    expect((error as ApiError).message).toBe("The edge is misconfigured: invalid EDGETTY_MAX_CLIENTS, EDGETTY_IDLE_TIMEOUT_S, EDGETTY_ALLOWED_ORIGINS (see its logs)");
    expect(() => parseSettings(EDGE_SETTINGS, { EDGETTY_MAX_SESSIONS_PER_SERVER: "-1" })).toThrow(ConfigError);
    expect(() => parseSettings(EDGE_SETTINGS, { EDGETTY_EPHEMERAL_IDLE_TIMEOUT_S: "1e3" })).toThrow(ConfigError);
  });
});

describe("CORS", () => {
  const env = { EDGETTY_CORS_ORIGINS: "https://tools.example" } as unknown as Env;
  const preflight = (origin: string) =>
    new Request(`${BASE}/api/v1/terminal/sessions`, { method: "OPTIONS", headers: { Origin: origin, "Access-Control-Request-Method": "GET" } });

  it("answers preflights for listed origins only, without credentials", () => {
    const allowed = corsPreflight(preflight("https://tools.example"), env)!;
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get("Access-Control-Allow-Origin")).toBe("https://tools.example");
    expect(allowed.headers.get("Access-Control-Allow-Headers")).toContain("Authorization");
    expect(allowed.headers.has("Access-Control-Allow-Credentials")).toBe(false);
    expect(corsPreflight(preflight("https://evil.example"), env)!.headers.has("Access-Control-Allow-Origin")).toBe(false);
    expect(corsPreflight(new Request(`${BASE}/x`), env)).toBeNull();
  });

  it("marks responses to listed origins, and leaves others alone", async () => {
    const req = (origin: string) => new Request(`${BASE}/api/v1/terminal/sessions`, { headers: { Origin: origin } });
    expect(withCors(req("https://tools.example"), env, new Response("x")).headers.get("Access-Control-Allow-Origin")).toBe("https://tools.example");
    expect(withCors(req("https://evil.example"), env, new Response("x")).headers.has("Access-Control-Allow-Origin")).toBe(false);
    // The default allows any origin (as the reference), never with credentials.
    const res = await worker.fetch(`${BASE}/api/v1/terminal/sessions`, { method: "OPTIONS", headers: { Origin: "https://tools.example", "Access-Control-Request-Method": "GET" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("https://tools.example");
    expect(res.headers.has("Access-Control-Allow-Credentials")).toBe(false);
    // Turned off: no grant.
    const off = { EDGETTY_CORS_ORIGINS: "none" } as unknown as Env;
    expect(corsPreflight(preflight("https://tools.example"), off)!.headers.has("Access-Control-Allow-Origin")).toBe(false);
    expect(withCors(req("https://tools.example"), off, new Response("x")).headers.has("Access-Control-Allow-Origin")).toBe(false);
  });
});
