/**
 * The Open Terminal API family (seed 004 and the later API Open WebUI uses) for one server, on
 * both mounts: `/health`, `/api/config`, `/openapi.json`, the execute routes (validated here,
 * relayed by the server's HostDO to its agent) and `/api/terminals`, whose sessions are the very
 * PTY sessions of the terminal session API: an Open Terminal session id is the terminal id in
 * decimal, so one session has two doors. The WebSocket `/api/terminals/{id}` is a raw client of
 * the session's TerminalDO (raw-terminal.ts), authenticated by its first message: it is routed
 * there before anything is known of the session, so an unauthenticated caller learns nothing
 * about which sessions exist.
 *
 * Each route is one `api.route(method, path, access, handler)` line; the family renders its
 * errors as FastAPI does (`{detail}`, OpenTerminalError), the terminal routes as the
 * reference's JSONResponses (`{error}`).
 */
import { ApiError } from "../shared/errors.ts";
import { parseExecHttp } from "../shared/links/exec.ts";
import { apiConfig, healthBody, openApiDocument, OPEN_TERMINAL_MAX_SESSIONS, pyIsoUtc } from "../shared/open-terminal.ts";
import type { TerminalInfo } from "../shared/open-terminal.ts";
import type { SessionMeta } from "../shared/links/session.ts";
import { EPHEMERAL_ID_MIN, parseCreateParams, parseTerminalId } from "../shared/validation.ts";
import { hostStub, terminalStub } from "./addresses.ts";
import { sha256Hex } from "./auth.ts";
import { actorOf, ADMIN_KEY_IDENTITY } from "./caller.ts";
import type { Env } from "./env.ts";
import { OpenTerminalError, unwrap } from "./errors.ts";
import { ApiFamily, type RouteRequest } from "./family.ts";
import { isWebSocketUpgrade } from "./http.ts";
import { execRequest } from "./exec-relay.ts";
import { NO_SESSION_TERMINAL_ID } from "./raw-terminal.ts";
import { MOUNTS } from "./scope.ts";

/** Largest execute request body, in bytes (a 1 Mi-character `input` plus JSON overhead). */
export const EXEC_BODY_MAX_BYTES = 2 << 20; // 2 MiB

const PREFIX_RE = /^\/api\/v1\/terminals\/[^/]+(?=\/)/;

/** The path as the family sees it: without the per-server prefix. */
function familyPath(request: RouteRequest): string {
  const { pathname } = new URL(request.url);
  return request.params["server"] === undefined ? pathname : pathname.replace(PREFIX_RE, "");
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
 * Who a background process belongs to: the authenticated principal (`admin` for the API key,
 * `user:<id>` for a user, so one user never reaches another's processes whatever headers they
 * send) plus the reference's X-User-Id and X-Session-Id headers (Open WebUI sets them per user
 * and chat), hashed to a fixed length.
 */
async function execScope(request: RouteRequest): Promise<string> {
  const user = request.headers.get("X-User-Id") ?? "";
  const session = request.headers.get("X-Session-Id") ?? "";
  const identity = request.principal?.identity;
  const owner = identity === undefined || identity === ADMIN_KEY_IDENTITY ? "admin" : actorOf(identity);
  return `${owner}:${await sha256Hex(JSON.stringify([user, session]))}`;
}

/** `/api/terminals` answers errors as the reference's JSONResponses do (`error`), plus a `code`. */
function terminalError(status: number, code: string, error: string): Response {
  return Response.json({ error, code }, { status });
}

function sessionNotFound(): Response {
  return terminalError(404, "SESSION_NOT_FOUND", "Session not found");
}

/** A session id from the path: a terminal id in decimal, or null. */
function sessionId(raw: string | undefined): number | null {
  try {
    return parseTerminalId(decodeURIComponent(raw ?? ""));
  } catch {
    return null;
  }
}

function terminalInfo(meta: SessionMeta): TerminalInfo {
  const started = new Date(meta.started_at);
  return {
    id: String(meta.terminal_id),
    created_at: pyIsoUtc(Number.isNaN(started.getTime()) ? new Date(0) : started),
    pid: meta.pid ?? 0,
  };
}

/** Renders an ApiError from a DO in the terminal routes' shape. */
async function terminalCall<T>(call: () => Promise<T>): Promise<T | Response> {
  try {
    return await call();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 404) return sessionNotFound();
    return terminalError(error.status, error.code, error.message);
  }
}

/** A human line about the host for the OpenAPI description, as the reference appends one. */
async function systemInfo(env: Env, serverId: string): Promise<string | undefined> {
  const agent = (await hostStub(env, serverId).status()).agent;
  if (!agent) return undefined;
  return `This system is running ${agent.platform} on ${agent.hostname}${agent.is_root ? " as root" : ""}.`;
}

/** The Open Terminal family's routes, on both mounts. */
export function openTerminalApi(): ApiFamily {
  const api = new ApiFamily("Open Terminal API", OpenTerminalError, MOUNTS);

  // --- discovery (no auth) ---------------------------------------------------------------------

  api.route("GET", "/health", "public", () => Response.json(healthBody()));
  api.route("GET", "/api/config", "public", () => Response.json(apiConfig()));
  api.route("GET", "/openapi.json", "public", async (request, env) => {
    const { serverId, base } = request.scope;
    // Facts about the host are for callers with the key (Open WebUI sends it); the rest is public.
    const info = request.principal ? await systemInfo(env, serverId) : undefined;
    const serverUrl = new URL(request.url).origin + base;
    return Response.json(openApiDocument({ serverUrl, ...(info ? { systemInfo: info } : {}) }));
  });

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
    return hostStub(env, request.scope.serverId).fetch(execRequest(await execScope(request), parsed.value));
  };
  api.route("POST", "/execute", "write", execute, { json: true });
  api.route("POST", "/execute/:process_id/input", "write", execute, { json: true });
  api.route("ALL", "/execute", "write", execute);
  api.route("ALL", "/execute/*", "write", execute);

  // --- terminals: the session API's sessions, through the reference's door ---------------------

  api.route("POST", "/api/terminals", "write", async (request, env) => {
    const { serverId } = request.scope;
    const stub = hostStub(env, serverId);
    if (!(await stub.status()).online) {
      return terminalError(503, "AGENT_OFFLINE", "Terminal service unavailable: the host's agent is offline");
    }
    const ephemeral = (await stub.sessionMetas()).filter((m) => m.ephemeral && m.terminal_id >= EPHEMERAL_ID_MIN).length;
    if (ephemeral >= OPEN_TERMINAL_MAX_SESSIONS) {
      return terminalError(429, "TOO_MANY_SESSIONS", `Maximum number of terminal sessions (${OPEN_TERMINAL_MAX_SESSIONS}) reached`);
    }
    // Ephemeral: a free id, and removal once it has sat without clients for the ephemeral idle time.
    const params = parseCreateParams({ ephemeral: true }, 0);
    const created = await terminalCall(async () => unwrap(await stub.createSession(params)));
    if (created instanceof Response) return created;
    return Response.json(terminalInfo(created.meta));
  });

  api.route("GET", "/api/terminals", "read", async (request, env) => {
    return Response.json((await hostStub(env, request.scope.serverId).sessionMetas()).map(terminalInfo));
  });

  // The WebSocket authenticates by its first message, in the session's TerminalDO. It goes there
  // whether or not the session exists (ids that are not terminal ids go to one object that has
  // no session), so before auth every id looks alike. Not an upgrade: the next route.
  api.route("GET", "/api/terminals/:session_id", "public", (request, env) => {
    if (!isWebSocketUpgrade(request)) return undefined;
    const id = sessionId(request.params["session_id"]) ?? NO_SESSION_TERMINAL_ID;
    return terminalStub(env, request.scope.serverId, id).fetch(new Request("https://terminal/raw", { headers: request.headers }));
  });

  api.route("GET", "/api/terminals/:session_id", "read", async (request, env) => {
    const id = sessionId(request.params["session_id"]);
    const meta = id === null ? undefined : (await hostStub(env, request.scope.serverId).sessionMetas()).find((m) => m.terminal_id === id);
    return meta ? Response.json(terminalInfo(meta)) : sessionNotFound();
  });

  api.route("DELETE", "/api/terminals/:session_id", "write", async (request, env) => {
    const id = sessionId(request.params["session_id"]);
    if (id === null) return sessionNotFound();
    const deleted = await terminalCall(async () => unwrap(await hostStub(env, request.scope.serverId).deleteSession(id, "deleted via /api/terminals")));
    if (deleted instanceof Response) return deleted;
    return Response.json({ status: "deleted" });
  });

  // --- what no route above took ----------------------------------------------------------------

  // Under a server's prefix: the server must exist (else the terminals family's 404), then
  // FastAPI's 404. At the top level, this family owns /api/* and /files/*; other paths are the
  // web app's (index.ts).
  const notFound = () => noRoute(404);
  api.route("ALL", "/*", "write", notFound, { mounts: ["server"] });
  api.route("ALL", "/api/*", "write", notFound, { mounts: ["root"] });
  api.route("ALL", "/files/*", "write", notFound, { mounts: ["root"] });
  return api;
}
