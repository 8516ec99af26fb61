/**
 * The Open Terminal API family (seed 004 and the later API Open WebUI uses) for one server, on
 * both mounts: `/health`, `/api/config`, `/openapi.json`, `/docs`, the execute routes (validated
 * here, relayed by the server's HostDO to its agent) and `/api/terminals`
 * (open-terminal-terminals.ts). `/files/*`, `/ports`, `/proxy/{port}/…`, `/system` and `/info`
 * are answered by the agent through the HostDO's HTTP tunnel (http-tunnel.ts), bodies streamed
 * both ways. `/docs` is Swagger UI from the assets.
 *
 * Each route is one `api.route(method, path, access, handler)` line: the terminal listings are
 * `read`; anything that changes the host, every file, port, system and proxied route (a dev
 * server's GET may change its state; a file read is more than watching a terminal) is `write`
 * (the admin, or a user with a write grant on the server). The family renders its errors as FastAPI does (`{detail}`, OpenTerminalError), the
 * terminal routes as the reference's JSONResponses (`{error}`).
 *
 * Who is who: the bearer key (or the same-origin browser session) authenticates; the caller's
 * `X-User-Id` (Open WebUI sends one per user, with one key for all) partitions background
 * processes, session working directories and `/api/terminals` sessions (the "scope");
 * `X-Session-Id` names the session whose working directory relative paths use.
 */
import { ApiError } from "../shared/errors.ts";
import type { AgentFacts } from "../shared/links/control.ts";
import { EXEC_SESSION_MAX_CHARS, EXEC_USER_MAX_CHARS, parseExecHttp } from "../shared/links/exec.ts";
import { TUNNEL_PATH_MAX_CHARS, TUNNEL_QUERY_MAX_CHARS } from "../shared/links/tunnel.ts";
import { apiConfig, BODY_NOT_UTF8, healthBody, noRouteReply, openApiDocument, OPEN_TERMINAL_ROUTES, routesFor } from "../shared/open-terminal.ts";
import { hostStub } from "./addresses.ts";
import { sha256Hex } from "./auth.ts";
import { actorOf, ADMIN_KEY_IDENTITY } from "./caller.ts";
import { userOwnerScope } from "./terminal-ws-auth.ts";
import type { Env } from "./env.ts";
import { OpenTerminalError } from "./errors.ts";
import { ApiFamily, type Access, type Method, type RouteRequest } from "./family.ts";
import { execRequest } from "./exec-relay.ts";
import { proxyRootRedirect, tunnelRequest } from "./http-tunnel.ts";
import { openTerminalTerminals } from "./open-terminal-terminals.ts";
import { forwardedHeaders } from "./url-servers.ts";
import { clientLeaving } from "./http.ts";
import { MOUNTS } from "./scope.ts";

/** Largest execute request body, in bytes (a 1 Mi-character `input` plus JSON overhead). */
export const EXEC_BODY_MAX_BYTES = 2 << 20; // 2 MiB

const PREFIX_RE = /^\/api\/v1\/terminals\/[^/]+(?=\/)/;

/** The path as the family sees it: without the per-server prefix. */
function familyPath(request: RouteRequest): string {
  const { pathname } = new URL(request.url);
  return request.params["server"] === undefined ? pathname : pathname.replace(PREFIX_RE, "");
}

/** Methods no tunnelled route carries (forbidden methods of the fetch standard). */
const UNCARRIED_METHODS = new Set(["CONNECT", "TRACE", "TRACK"]);

/** FastAPI's answer for a path it does not serve, or serves for other methods. */
function noRoute(status: 404 | 405): Response {
  return Response.json(noRouteReply(status).body, { status });
}

/** The request body as text, at most `maxBytes`; 413 past it, 400 when it is not UTF-8. */
async function readBodyText(request: Request, maxBytes: number): Promise<string | null> {
  if (!request.body) return null;
  const tooLarge = () => new ApiError(413, "BODY_TOO_LARGE", `Request body exceeds ${maxBytes} bytes`);
  if (Number(request.headers.get("Content-Length") ?? "0") > maxBytes) throw tooLarge();
  const reader = request.body.getReader();
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  const decode = (bytes?: Uint8Array): string => {
    try {
      return bytes ? decoder.decode(bytes, { stream: true }) : decoder.decode();
    } catch {
      throw new ApiError(400, "BAD_REQUEST", BODY_NOT_UTF8);
    }
  };
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
    text += decode(value);
  }
  return text + decode();
}

/**
 * Whose processes, session working directories and `/api/terminals` sessions a call reaches: for
 * a user's credential, that user alone (terminal-ws-auth.ts userOwnerScope: whatever `X-User-Id`
 * it sends); for the API key, `admin` plus the `X-User-Id` header (Open WebUI sends one key for
 * all its users and tells them apart by it), hashed to a fixed length. Not
 * `X-Session-Id`: a process started in one chat can be polled from another, as in the reference.
 */
export async function callerScope(request: RouteRequest): Promise<string> {
  const identity = request.principal?.identity;
  if (identity !== undefined && identity !== ADMIN_KEY_IDENTITY && !identity.share) return userOwnerScope(identity);
  const owner = identity === undefined || identity === ADMIN_KEY_IDENTITY ? "admin" : actorOf(identity);
  return `${owner}:${await sha256Hex(request.headers.get("X-User-Id") ?? "")}`;
}

/**
 * The user a call acts for on the Open Terminal routes: a user's credential (token, browser
 * session, Access identity) is always that user, whatever `X-User-Id` it sends (the same user
 * the agent is told, url-servers.ts forwardedUserId); the API key the `X-User-Id` it sends, or
 * null without one or with an empty one (single-user use).
 */
export function callerUserId(request: RouteRequest): string | null {
  const identity = request.principal?.identity;
  if (identity !== undefined && identity !== ADMIN_KEY_IDENTITY && !identity.share) return identity.userId;
  // An empty header names no one, as for the WebSocket's user (open-terminal-terminals.ts) and the agent.
  return request.headers.get("X-User-Id") || null;
}

/** {@link callerUserId} cut to the relay's limit, or undefined for none (multi-user mode names its account by it). */
export function callerUser(request: RouteRequest): string | undefined {
  return callerUserId(request)?.slice(0, EXEC_USER_MAX_CHARS);
}

/** The caller's `X-Session-Id`, cut to the relay's limit. */
function callerSession(request: Request): string {
  return (request.headers.get("X-Session-Id") ?? "").slice(0, EXEC_SESSION_MAX_CHARS);
}

/** Escapes text for an HTML attribute. */
function attr(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
}

/** Tunnelled POST routes whose body is not JSON (a multipart upload). */
const NON_JSON_TUNNEL_ROUTES = new Set(["/files/upload"]);

/** `{name}` → itty's `:name`; a trailing `{path}` (spanning slashes) → `*`. */
function ittyPath(path: string): string {
  return path.replace(/\/\{path\}$/, "/*").replace(/\{(\w+)\}/g, ":$1");
}

/** A human line about the agent's host for the OpenAPI description, as the reference appends one. */
function systemInfo(agent: AgentFacts): string {
  return `This system is running ${agent.platform} on ${agent.hostname}${agent.is_root ? " as root" : ""}.`;
}

/** The Open Terminal family's routes, on both mounts. */
export function openTerminalApi(): ApiFamily {
  const api = new ApiFamily("Open Terminal API", OpenTerminalError, MOUNTS);
  // This family answers CORS (cors.ts): a page of another origin authenticates with its bearer
  // token, so the session cookie never acts cross-origin here, whatever the method.
  // Its GET routes declare their own HEAD (the agent answers it), not the generic one.
  api.defaults = { cookieSameOrigin: "always", head: false };

  // --- discovery (no auth) ---------------------------------------------------------------------

  api.route("GET", "/health", "public", () => Response.json(healthBody()));
  api.route("GET", "/api/config", "public", () => Response.json(apiConfig()));
  api.route("GET", "/openapi.json", "public", async (request, env) => {
    const { serverId, base } = request.scope;
    // The agent's last hello says whether `/info` answers (then `get_info` is offered, as the
    // reference offers it when OPEN_TERMINAL_INFO is set). Facts about the host are for callers
    // with the key (Open WebUI sends it); the rest is public.
    const agent = (await hostStub(env, serverId).status()).agent;
    const serverUrl = new URL(request.url).origin + base;
    return Response.json(openApiDocument({ serverUrl, info: agent?.ot_info === true, ...(agent && request.principal ? { systemInfo: systemInfo(agent) } : {}) }));
  });
  api.route("GET", "/docs", "public", (request) => {
    const html =
      `<!doctype html><html><head><meta charset="utf-8"><title>Open Terminal API</title>` +
      `<link rel="stylesheet" href="/docs-assets/swagger-ui.css"></head>` +
      `<body data-openapi="${attr(`${request.scope.base}/openapi.json`)}"><div id="swagger-ui"></div>` +
      `<script src="/docs-assets/swagger-ui-bundle.js"></script><script src="/docs-assets/docs-init.js"></script></body></html>`;
    return new Response(html, {
      headers: {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
      },
    });
  });

  // --- files, ports, proxy, system: answered by the agent through the HTTP tunnel --------------

  const tunnelled = async (request: RouteRequest, env: Env): Promise<Response> => {
    const url = new URL(request.url);
    const path = familyPath(request);
    const toRoot = proxyRootRedirect(request, path); // `/proxy/{port}`: the reference's 307 to `…/`
    if (toRoot) return toRoot;
    // The fetch standard forbids these methods, and the tunnel's requests are fetch requests at
    // both ends: refused here, clearly, rather than failing on the way.
    if (UNCARRIED_METHODS.has(request.method)) return noRoute(405);
    const query = url.search.slice(1);
    if (path.length > TUNNEL_PATH_MAX_CHARS || query.length > TUNNEL_QUERY_MAX_CHARS) {
      const detail = `URI Too Long: at most ${TUNNEL_PATH_MAX_CHARS} characters of path and ${TUNNEL_QUERY_MAX_CHARS} of query`;
      return Response.json({ detail, code: "URI_TOO_LONG" }, { status: 414 });
    }
    const call = { scope: await callerScope(request), session: callerSession(request), path, query };
    // An Open Terminal route gets what a URL server would (url-servers.ts); a proxied app the
    // browser's headers, never its credentials (http-tunnel.ts).
    const forwarded = path.startsWith("/proxy/") ? undefined : forwardedHeaders(request, request.principal!.identity);
    const response = await hostStub(env, request.scope.serverId).fetch(tunnelRequest(request, call, forwarded));
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
  // One route per entry of the route list; a method the list does not name falls to 405/404 below.
  for (const route of OPEN_TERMINAL_ROUTES) {
    if (route.carrier !== "tunnel") continue;
    const proxy = route.path.startsWith("/proxy/");
    const method: Method = route.method === "ANY" ? "ALL" : route.method;
    // Every tunnelled route needs `write`, reads too: a `read` grant watches terminals, and the
    // host's files, ports, system facts and proxied apps are more than that (proxy-checks.ts).
    const access: Access = "write";
    const json = route.method === "POST" && !NON_JSON_TUNNEL_ROUTES.has(route.path);
    api.route(method, ittyPath(route.path), access, tunnelled, { json });
    // HEAD answers as GET without a body (the agent runs the GET and drops its body).
    if (route.method === "GET") api.route("HEAD", ittyPath(route.path), access, tunnelled);
    // A proxied app's root: `/proxy/{port}` and `/proxy/{port}/`.
    if (proxy) api.route(method, "/proxy/:port", access, tunnelled);
  }

  // --- execute ---------------------------------------------------------------------------------

  const execute = async (request: RouteRequest, env: Env): Promise<Response> => {
    const url = new URL(request.url);
    const path = familyPath(request);
    const body = request.method === "POST" ? await readBodyText(request, EXEC_BODY_MAX_BYTES) : null;
    const parsed = parseExecHttp(request.method, path, url.searchParams, body);
    if (parsed === null) {
      const parts = path.split("/").filter(Boolean);
      const known = parts.length === 1 || parts.length === 2 || (parts.length === 3 && (parts[2] === "status" || parts[2] === "input"));
      return noRoute(known ? 405 : 404);
    }
    if (!parsed.ok) return Response.json(parsed.reply.body, { status: parsed.reply.status });
    const call = execRequest(await callerScope(request), parsed.value, callerSession(request), callerUser(request), clientLeaving(request));
    return hostStub(env, request.scope.serverId).fetch(call);
  };
  api.route("POST", "/execute", "write", execute, { json: true });
  api.route("POST", "/execute/:process_id/input", "write", execute, { json: true });
  api.route("ALL", "/execute", "write", execute);
  api.route("ALL", "/execute/*", "write", execute);

  // --- terminals: the session API's sessions, through the reference's door ---------------------

  openTerminalTerminals(api, callerScope, callerUserId);

  // --- what no route above took ----------------------------------------------------------------

  // Under a server's prefix: the server must exist (else the terminals family's 404), then
  // FastAPI's 404 (405 for a path of the family asked with another method). At the top level, this
  // family owns /api/*, /files/*, /ports, /proxy/*, /system and /info; other paths are the web
  // app's (index.ts).
  const notFound = (request: RouteRequest) => {
    const path = familyPath(request);
    return noRoute(routesFor(path).length > 0 ? 405 : 404);
  };
  // The discovery routes are public, so is their 405: FastAPI routes before it authenticates.
  for (const path of ["/health", "/api/config", "/openapi.json", "/docs"]) api.route("ALL", path, "public", () => noRoute(405));
  api.route("ALL", "/*", "write", notFound, { mounts: ["server"] });
  for (const path of ["/api/*", "/files/*", "/ports", "/proxy/*", "/system", "/info", "/docs"]) api.route("ALL", path, "write", notFound, { mounts: ["root"] });
  return api;
}
