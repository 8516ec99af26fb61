/**
 * The edgetty Worker: authentication, routing to the three API families, the agents' links,
 * and the web app's static assets. Durable Objects do the stateful work (host-do.ts,
 * terminal-do.ts); this file only decides who may do what, and where it goes.
 */
import { Router, type IRequest } from "itty-router";
import { ApiError } from "../shared/errors.ts";
import { isServerId, parseTerminalId } from "../shared/validation.ts";
import { bearerToken, clearSessionCookie, issueSessionCookie, safeEqual, unauthorized } from "./auth.ts";
import { clientIp, recordAudit } from "./audit.ts";
import { actorOf } from "./caller.ts";
import { gateAnonymous, gateRequest, identifyRequest, isServerMountPath } from "./caller-gate.ts";
import type { Identity } from "./identities.ts";
import { serversFor } from "./server-access.ts";
import { readConfig, type Env } from "./env.ts";
import { errorResponse, toApiError, type Family } from "./errors.ts";
import { readJsonObject } from "./http.ts";
import { handleIdentityAdmin, isIdentityAdminPath } from "./identity-admin-api.ts";
import { deleteServer, getServer, listServers, putServer, verifyAgentToken } from "./registry.ts";
import { ScopeError } from "./scope.ts";
import { adminStats } from "./stats-api.ts";
import { corsPreflight, withCors } from "./cors.ts";
import { mountScreenApi } from "./screen-api.ts";
import { isOpenTerminalPublic, mountOpenTerminalApi } from "./open-terminal-api.ts";
import { mountTerminalApi } from "./terminal-api.ts";

export { HostDO } from "./host-do.ts";
export { TerminalDO } from "./terminal-do.ts";

/** The API family a path belongs to, which decides the shape of its errors. */
export function familyOf(pathname: string): Family {
  const path = pathname.replace(/^\/api\/v1\/terminals\/[^/]+(?=\/)/, "");
  if (path.startsWith("/api/v1/terminal/") || path.startsWith("/api/v1/auth/") || path.startsWith("/api/v1/admin/")) return "terminal";
  if (path === "/api/v1/terminals" || path === "/api/v1/terminals/") return "terminals";
  return "open-terminal";
}

/** Routes that answer without the admin token. */
function isPublic(request: Request, pathname: string): boolean {
  if (pathname === "/health" || pathname.startsWith("/agent/")) return true;
  if (isOpenTerminalPublic(request, pathname)) return true;
  if (pathname === "/api/v1/auth/session" && request.method === "POST") return true;
  // The web app's static files; every API route is under /api/, /execute, /files or /openapi.json.
  return request.method === "GET" && !/^\/(api|execute|files|openapi\.json)(\/|$)/.test(pathname);
}

/** The caller the gate resolved for each request in flight. */
const callers = new WeakMap<Request, Identity>();

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Requests the gate already passed (a rewritten request is routed again without a second check). */
const gated = new WeakSet<Request>();

const router = Router<IRequest, [Env, ExecutionContext]>({
  before: [
    async (request, env, ctx) => {
      readConfig(env); // a misconfigured edge answers 500 CONFIG_INVALID to everything
      const { pathname } = new URL(request.url);
      if (gated.has(request)) return;
      // Public routes under a server's mount still pass the proxy's checks (gateAnonymous).
      const onMount = isServerMountPath(pathname);
      if (isPublic(request, pathname) && !onMount) return;
      const caller = await identifyRequest(request, env);
      if (!caller && isPublic(request, pathname)) return (await gateAnonymous(request, env)) ?? undefined;
      if (!caller) {
        if (familyOf(pathname) === "open-terminal") throw new ApiError(401, "UNAUTHORIZED", "Invalid API key");
        throw unauthorized();
      }
      callers.set(request, caller);
      const gate = await gateRequest(request, env, caller);
      if (!gate.pass) return gate.response;
      if (gate.proxied) {
        const { serverId, path, access } = gate.proxied;
        const event = { actor: actorOf(caller), action: "proxy" as const, server_id: serverId, detail: `${request.method} /${path} (${access})`, ip: clientIp(request) };
        // Written before the request is served, so the log never misses a request that ran.
        await recordAudit(env.DB, event);
      }
      if (gate.answer) return gate.answer();
      if (gate.request) {
        gated.add(gate.request);
        callers.set(gate.request, caller);
        return router.fetch(gate.request, env, ctx);
      }
    },
  ],
  catch: (error, request) => {
    const apiError = toApiError(error, `${request.method} ${new URL(request.url).pathname}`);
    const family = error instanceof ScopeError ? error.family : familyOf(new URL(request.url).pathname);
    return errorResponse(family, apiError);
  },
});

router.get("/health", () => Response.json({ status: "ok" }));

// --- browser sign-in: the API key once, then an HttpOnly cookie ------------------------------

router.post("/api/v1/auth/session", async (request, env) => {
  const body = await readJsonObject(request);
  const token = typeof body["token"] === "string" ? body["token"] : (bearerToken(request) ?? "");
  if (!env.EDGETTY_API_KEY || !(await safeEqual(token, env.EDGETTY_API_KEY))) throw unauthorized();
  const secure = new URL(request.url).protocol === "https:";
  return new Response(null, { status: 204, headers: { "Set-Cookie": await issueSessionCookie(env.EDGETTY_API_KEY, secure) } });
});
router.get("/api/v1/auth/session", () => Response.json({ role: "admin" }));
router.delete("/api/v1/auth/session", (request) => {
  const secure = new URL(request.url).protocol === "https:";
  return new Response(null, { status: 204, headers: { "Set-Cookie": clearSessionCookie(secure) } });
});

// --- the registry of servers -------------------------------------------------------------------

// The servers the caller may use: all for admins, the enabled ones granted to a user or their groups.
router.get("/api/v1/terminals/?", async (request, env) => {
  const config = readConfig(env);
  const origin = new URL(request.url).origin;
  const servers = await serversFor(env.DB, callers.get(request)!);
  const statuses = await Promise.all(servers.map((s) => env.HOST.get(env.HOST.idFromName(s.id)).status()));
  return Response.json(
    servers.map((s, i) => ({
      id: s.id,
      url: s.url || `${origin}/api/v1/terminals/${s.id}`,
      name: s.name,
      enabled: s.enabled,
      online: statuses[i]!.online,
      default: s.id === config.defaultServer,
      // Once an agent has connected: its version and process start (its uptime), and when it was last heard from.
      ...(statuses[i]!.agent
        ? { agent: { version: statuses[i]!.agent!.version, started_at: statuses[i]!.agent!.facts?.started_at ?? null, last_seen: statuses[i]!.last_seen } }
        : {}),
    })),
  );
});

router.get("/api/v1/admin/servers", async (_request, env) => Response.json(await listServers(env.DB)));
router.get("/api/v1/admin/stats", (_request, env) => adminStats(env));

router.put("/api/v1/admin/servers/:id", async (request, env) => {
  const id = request.params["id"] ?? "";
  if (!isServerId(id)) throw new ApiError(400, "INVALID_SERVER_ID", "server id must match [a-z0-9][a-z0-9-]{0,62}");
  const body = await readJsonObject(request);
  const given = typeof body["token"] === "string" && body["token"].length >= 16 ? body["token"] : null;
  if (body["token"] !== undefined && given === null) throw new ApiError(400, "INVALID_PARAMETERS", "token must be a string of at least 16 characters");
  const token = given ?? randomToken();
  const name = typeof body["name"] === "string" && body["name"] ? body["name"].slice(0, 200) : id;
  const url = typeof body["url"] === "string" ? body["url"].slice(0, 2000) : "";
  const server = await putServer(env.DB, { id, name, url, token });
  return Response.json({ ...server, token });
});

router.delete("/api/v1/admin/servers/:id", async (request, env) => {
  const id = request.params["id"] ?? "";
  if (!(await deleteServer(env.DB, id))) throw new ApiError(404, "SERVER_NOT_FOUND", "No such server");
  return Response.json({ status: "deleted", id });
});

// Users, groups, grants, tokens and the audit log (admin only: the before hook checked the key).
router.all("/api/v1/admin/*", (request, env) => (isIdentityAdminPath(new URL(request.url).pathname) ? handleIdentityAdmin(request, env, actorOf(callers.get(request)!)) : undefined));

// --- the agents' links: control to the HostDO, one data link per PTY to its TerminalDO --------

async function agentServer(request: IRequest, env: Env): Promise<string> {
  const serverId = String(request.query["server"] ?? "");
  const token = bearerToken(request);
  if (!token || !(await verifyAgentToken(env.DB, serverId, token))) throw new ApiError(401, "UNAUTHORIZED", "Invalid agent token");
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") throw new ApiError(426, "UPGRADE_REQUIRED", "Agent links are WebSockets");
  return serverId;
}

router.get("/agent/v1/control", async (request, env) => {
  const serverId = await agentServer(request, env);
  const forward = new Request("https://host/control", { headers: request.headers });
  forward.headers.set("X-Edgetty-Server", serverId);
  return env.HOST.get(env.HOST.idFromName(serverId)).fetch(forward);
});

router.get("/agent/v1/data", async (request, env) => {
  const serverId = await agentServer(request, env);
  const terminalId = parseTerminalId(request.query["terminal_id"]);
  if (terminalId === null) throw new ApiError(400, "INVALID_TERMINAL_ID", "Terminal ID must be numeric 1-65535");
  const forward = new Request("https://terminal/agent", { headers: request.headers });
  forward.headers.set("X-Edgetty-Server", serverId);
  return env.TERMINAL.get(env.TERMINAL.idFromName(`${serverId}:${terminalId}`)).fetch(forward);
});

mountTerminalApi(router);
mountOpenTerminalApi(router);
mountScreenApi(router);

// Unknown server in the per-server prefix: the terminals family's 404, whatever the path.
router.all("/api/v1/terminals/:server/*", async (request, env) => {
  const id = request.params["server"] ?? "";
  if (!isServerId(id)) throw new ScopeError(400, "INVALID_SERVER_ID", "Invalid server id");
  if (!(await getServer(env.DB, id))) throw new ScopeError(404, "SERVER_NOT_FOUND", "Terminal server not found");
  throw new ApiError(404, "NOT_FOUND", "No such route on this server");
});

router.all("*", async (request, env) => {
  const { pathname } = new URL(request.url);
  if (env.ASSETS && request.method === "GET" && isPublic(request, pathname)) return env.ASSETS.fetch(request);
  throw new ApiError(404, "NOT_FOUND", `No route for ${request.method} ${pathname}`);
});

export default {
  fetch: async (request: Request, env: Env, ctx: ExecutionContext) =>
    corsPreflight(request, env) ?? withCors(request, env, await router.fetch(request, env, ctx)),
} satisfies ExportedHandler<Env>;

