/**
 * The Open Terminal API family (seed 004 and the later API Open WebUI uses) for one server, on
 * both mounts: `/health`, `/api/config`, `/openapi.json`, `/docs`, the execute routes (validated
 * here, relayed by the server's HostDO to its agent) and `/api/terminals` (open-terminal-terminals.ts). `/files/*`,
 * `/ports`, `/proxy/{port}/…`, `/system` and `/info` are answered by the agent through the HostDO's
 * HTTP tunnel (http-tunnel.ts), bodies streamed both ways. `/docs` is Swagger UI from the assets.
 *
 * Who is who: the bearer key authenticates; the caller's `X-User-Id` (Open WebUI sends one per
 * user, with one key for all) partitions background processes and session working directories
 * (the "scope"); `X-Session-Id` names the session whose working directory relative paths use.
 */
import type { IRequest, RouterType } from "itty-router";
import { ApiError } from "../shared/errors.ts";
import { parseExecHttp } from "../shared/exec-protocol.ts";
import { apiConfig, healthBody, isTunnelPath, openApiDocument, OPEN_TERMINAL_ROUTES } from "../shared/open-terminal.ts";
import { EXEC_SESSION_MAX_CHARS } from "../shared/exec-protocol.ts";
import { authenticate, sha256Hex } from "./auth.ts";
import { readConfig, type Env } from "./env.ts";
import { execRequest } from "./exec-relay.ts";
import { isWebSocketUpgrade } from "./http.ts";
import { tunnelRequest } from "./http-tunnel.ts";
import { mountOpenTerminalTerminals } from "./open-terminal-terminals.ts";
import { mountBoth, resolveScope } from "./scope.ts";

/** Largest execute request body, in bytes (a 1 Mi-character `input` plus JSON overhead). */
export const EXEC_BODY_MAX_BYTES = 2 << 20; // 2 MiB

const PREFIX_RE = /^\/api\/v1\/terminals\/[^/]+(?=\/)/;
const TERMINAL_WS_RE = /^\/api\/terminals\/[^/]+$/;

/** The path as the family sees it: without the per-server prefix. */
function familyPath(pathname: string): string {
  return pathname.replace(PREFIX_RE, "");
}

/**
 * Routes of this family that answer without a bearer token, on either mount: those the route
 * list marks `auth: false`, and the terminal WebSocket (it authenticates by its first message).
 */
export function isOpenTerminalPublic(request: Request, pathname: string): boolean {
  if (request.method !== "GET") return false;
  const path = familyPath(pathname);
  if (isWebSocketUpgrade(request) && TERMINAL_WS_RE.test(path)) return true;
  return OPEN_TERMINAL_ROUTES.some((r) => !r.auth && !r.websocket && r.path === path);
}

function host(env: Env, serverId: string) {
  return env.HOST.get(env.HOST.idFromName(serverId));
}

/** FastAPI's answer for a path it does not serve, or serves for other methods. */
function noRoute(status: 404 | 405): Response {
  return Response.json({ detail: status === 404 ? "Not Found" : "Method Not Allowed" }, { status });
}

/** The request body as text, at most `maxBytes`. */
async function readBodyText(request: Request, maxBytes: number): Promise<string | null> {
  if (!request.body) return null;
  const tooLarge = () => new ApiError(413, "BODY_TOO_LARGE", `Request body exceeds ${maxBytes} bytes`);
  if (Number(request.headers.get("Content-Length") ?? "0") > maxBytes) throw tooLarge();
  const reader = request.body.getReader();
  const decoder = new TextDecoder();
  let size = 0;
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    text += decoder.decode(value, { stream: true });
  }
  return text + decoder.decode();
}

/**
 * Whose processes and session working directories a call reaches: the authenticated principal
 * plus the `X-User-Id` header (Open WebUI sends one key for all its users and tells them apart by
 * it), hashed to a fixed length. Not `X-Session-Id`: a process started in one chat can be polled
 * from another, as in the reference.
 */
export async function callerScope(request: Request): Promise<string> {
  const user = request.headers.get("X-User-Id") ?? "";
  return `admin:${await sha256Hex(user)}`;
}

/** The caller's `X-Session-Id`, cut to the relay's limit. */
function callerSession(request: Request): string {
  return (request.headers.get("X-Session-Id") ?? "").slice(0, EXEC_SESSION_MAX_CHARS);
}

/** Escapes text for an HTML attribute. */
function attr(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
}

/** A human line about the host for the OpenAPI description, as the reference appends one. */
async function systemInfo(env: Env, serverId: string): Promise<string | undefined> {
  const agent = (await host(env, serverId).status()).agent;
  if (!agent) return undefined;
  return `This system is running ${agent.platform} on ${agent.hostname}${agent.is_root ? " as root" : ""}.`;
}

export function mountOpenTerminalApi(router: RouterType<IRequest, [Env, ExecutionContext]>): void {
  // --- discovery (no auth) ---------------------------------------------------------------------

  mountBoth(router, "get", "/health", async (request, env) => {
    await resolveScope(request, env, readConfig(env));
    return Response.json(healthBody());
  });

  mountBoth(router, "get", "/api/config", async (request, env) => {
    await resolveScope(request, env, readConfig(env));
    return Response.json(apiConfig());
  });

  mountBoth(router, "get", "/docs", async (request, env) => {
    const { base } = await resolveScope(request, env, readConfig(env));
    const html =
      `<!doctype html><html><head><meta charset="utf-8"><title>Open Terminal API</title>` +
      `<link rel="stylesheet" href="/docs-assets/swagger-ui.css"></head>` +
      `<body data-openapi="${attr(`${base}/openapi.json`)}"><div id="swagger-ui"></div>` +
      `<script src="/docs-assets/swagger-ui-bundle.js"></script><script src="/docs-assets/docs-init.js"></script></body></html>`;
    return new Response(html, {
      headers: {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
      },
    });
  });

  // --- files, ports, proxy, system: answered by the agent through the HTTP tunnel --------------

  const tunnelled = async (request: IRequest, env: Env): Promise<Response> => {
    const { serverId } = await resolveScope(request, env, readConfig(env));
    const url = new URL(request.url);
    const path = request.params["server"] === undefined ? url.pathname : familyPath(url.pathname);
    if (!isTunnelPath(path)) return noRoute(404);
    const call = { scope: await callerScope(request), session: callerSession(request), path, query: url.search.slice(1) };
    const response = await host(env, serverId).fetch(tunnelRequest(request, call));
    if (response.status === 101) return response; // a proxied WebSocket
    // Files and proxied pages are shown on this origin: without script access to it (no cookies,
    // no same-origin calls), since their content is whatever is on the host.
    if (/^\/(files\/(view|serve\/)|proxy\/)/.test(path) || (path === "/files/read" && !/json/.test(response.headers.get("Content-Type") ?? ""))) {
      const out = new Response(response.body, response);
      out.headers.set("Content-Security-Policy", "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads");
      out.headers.set("X-Content-Type-Options", "nosniff");
      return out;
    }
    return response;
  };
  for (const path of ["/files/*", "/ports", "/proxy/*", "/system", "/info"]) mountBoth(router, "all", path, tunnelled);

  mountBoth(router, "get", "/openapi.json", async (request, env) => {
    const { serverId, base } = await resolveScope(request, env, readConfig(env));
    // Facts about the host are for callers with the key (Open WebUI sends it); the rest is public.
    const info = (await authenticate(request, env.EDGETTY_API_KEY)) ? await systemInfo(env, serverId) : undefined;
    const serverUrl = new URL(request.url).origin + base;
    return Response.json(openApiDocument({ serverUrl, ...(info ? { systemInfo: info } : {}) }));
  });

  // --- execute ---------------------------------------------------------------------------------

  const execute = async (request: IRequest, env: Env): Promise<Response> => {
    const { serverId } = await resolveScope(request, env, readConfig(env));
    const url = new URL(request.url);
    const path = request.params["server"] === undefined ? url.pathname : familyPath(url.pathname);
    const body = request.method === "POST" ? await readBodyText(request, EXEC_BODY_MAX_BYTES) : null;
    const parsed = parseExecHttp(request.method, path, url.searchParams, body);
    if (parsed === null) {
      const parts = path.split("/").filter(Boolean);
      const known = parts.length === 1 || parts.length === 2 || (parts.length === 3 && (parts[2] === "status" || parts[2] === "input"));
      return noRoute(known ? 405 : 404);
    }
    if (!parsed.ok) return Response.json(parsed.reply.body, { status: parsed.reply.status });
    return host(env, serverId).fetch(execRequest(await callerScope(request), parsed.value, callerSession(request)));
  };
  mountBoth(router, "all", "/execute", execute);
  mountBoth(router, "all", "/execute/*", execute);

  mountOpenTerminalTerminals(router, callerScope);
}
