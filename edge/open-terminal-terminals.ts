/**
 * `/api/terminals` of the Open Terminal family: the session API's sessions through the
 * reference's door. A session made here is ephemeral (removed once it has sat without clients for
 * the ephemeral idle time, so panels Open WebUI forgets do not pile up; reconnecting within it
 * resumes), named by the caller's `X-Session-Id` when one is sent (else its terminal id in
 * decimal), and owned by the caller's user: a user's credential is always that user (whatever
 * `X-User-Id` it sends) and sees and reaches only its own sessions; the API key acts for the
 * `X-User-Id` it sends (the WebSocket carries it as `?user_id=`, as Open WebUI sends it), and
 * without one sees every session (single-user use). Another user's session is `Session not
 * found` (404; 4004 on the WebSocket). The WebSocket authenticates by its first message in the
 * session's TerminalDO, which checks the owner (terminal-ws-auth.ts); it is routed there whether
 * or not the name is known (an unknown or foreign name goes to one object that has no session),
 * so before auth every name looks alike. Errors answer `{"error": "…"}` as the reference's JSONResponses, plus a `code`.
 */
import type { SessionMeta } from "../shared/links/session.ts";
import { ApiError } from "../shared/errors.ts";
import { EXEC_USER_MAX_CHARS } from "../shared/links/exec.ts";
import { OPEN_TERMINAL_MAX_SESSIONS, pyIsoUtc } from "../shared/open-terminal.ts";
import type { TerminalInfo } from "../shared/open-terminal.ts";
import { parseCreateParams } from "../shared/validation.ts";
import { hostStub as host, terminalStub } from "./addresses.ts";
import { sha256Hex } from "./auth.ts";
import type { Env } from "./env.ts";
import { unwrap } from "./errors.ts";
import type { ApiFamily, RouteRequest } from "./family.ts";
import { isWebSocketUpgrade } from "./http.ts";
import { isSessionName } from "./open-terminal-names.ts";
import { NO_SESSION_TERMINAL_ID } from "./raw-terminal.ts";
import { clientIp } from "./audit.ts";
import { rawOwnedQuery, rawProxyQuery } from "./terminal-ws-auth.ts";

function terminalError(status: number, code: string, error: string): Response {
  return Response.json({ error, code }, { status });
}

function sessionNotFound(): Response {
  return terminalError(404, "SESSION_NOT_FOUND", "Session not found");
}

function info(meta: SessionMeta, name: string): TerminalInfo {
  const started = new Date(meta.started_at);
  return { id: name, created_at: pyIsoUtc(Number.isNaN(started.getTime()) ? new Date(0) : started), pid: meta.pid ?? 0 };
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

/**
 * The sessions this caller may see: all of them for the API key without `X-User-Id`
 * (single-user use), else only those its user made here (`user`: the caller's user, see
 * openTerminalTerminals).
 */
async function visible(request: RouteRequest, env: Env, serverId: string, scopeOf: (r: RouteRequest) => Promise<string>, user: string | null) {
  const all = await host(env, serverId).namedSessions();
  if (user === null) return all;
  const scope = await scopeOf(request);
  return all.filter((s) => s.owner === scope);
}

function decodeName(raw: string | undefined): string {
  try {
    return decodeURIComponent(raw ?? "");
  } catch {
    return "";
  }
}

/**
 * Declares `/api/terminals` on the family `api`; `scopeOf` is the family's caller scope (the
 * owner it makes and reaches), `user` the user the caller acts for (null: the API key without
 * `X-User-Id`, which sees every session).
 */
export function openTerminalTerminals(api: ApiFamily, scopeOf: (r: RouteRequest) => Promise<string>, user: (r: RouteRequest) => string | null): void {
  api.route("POST", "/api/terminals", "write", async (request, env) => {
    const { serverId } = request.scope;
    const stub = host(env, serverId);
    // An empty header names no session, as in the reference (a falsy chat id).
    const wanted = request.headers.get("X-Session-Id") || null;
    if (wanted !== null && !isSessionName(wanted)) {
      return terminalError(400, "INVALID_SESSION_ID", "X-Session-Id must be 1-128 characters of A-Z a-z 0-9 . _ ~ : @ -");
    }
    const owner = user(request) === null ? null : await scopeOf(request);
    if (wanted !== null) {
      // Open WebUI asks again for the same chat's panel: the live session answers (it resumes).
      const existing = (await stub.namedSessions()).find((s) => s.name === wanted);
      if (existing && existing.owner === owner) return Response.json(info(existing.meta, wanted));
      if (existing) return terminalError(409, "SESSION_ID_TAKEN", "A session with this id exists for another user");
    }
    if (!(await stub.status()).online) {
      return terminalError(503, "AGENT_OFFLINE", "Terminal service unavailable: the host's agent is offline");
    }
    const params = parseCreateParams({ ephemeral: true }, 0);
    // In multi-user mode the agent runs the session as this user's OS account.
    const asserted = user(request);
    if (owner !== null && asserted !== null) params.ot_user = { scope: owner, user: asserted.slice(0, EXEC_USER_MAX_CHARS) };
    // It starts where the chat's file tools are (`POST /files/cwd` under the same X-Session-Id).
    if (wanted !== null) params.ot_cwd_of = { scope: owner ?? (await scopeOf(request)), session: wanted };
    // The HostDO counts and creates in one step (429 TOO_MANY_SESSIONS past the limit): checked
    // here, calls at once all passed the count before any was created.
    const created = await terminalCall(async () => unwrap(await stub.createSession(params, OPEN_TERMINAL_MAX_SESSIONS)));
    if (created instanceof Response) return created;
    const name = wanted ?? String(created.meta.terminal_id);
    await stub.nameSession({ name, terminal_id: created.meta.terminal_id, owner });
    return Response.json(info(created.meta, name));
  });

  api.route("GET", "/api/terminals", "read", async (request, env) => {
    const { serverId } = request.scope;
    return Response.json((await visible(request, env, serverId, scopeOf, user(request))).map((s) => info(s.meta, s.name)));
  });

  // Not an upgrade: the next route.
  api.route("GET", "/api/terminals/:session_id", "public", async (request, env) => {
    if (!isWebSocketUpgrade(request)) return undefined;
    const { serverId } = request.scope;
    const name = decodeName(request.params["session_id"]);
    // Open WebUI names the user of a WebSocket in the query (browsers cannot set its headers); a
    // client that can may send X-User-Id, as on HTTP. Neither, or empty ones (as an empty header on
    // HTTP, callerUserId): the API key acts for no one user.
    const wsUser = new URL(request.url).searchParams.get("user_id") || request.headers.get("X-User-Id") || null;
    // Before auth the principal is unknown: match the asserted user's part of the owner only
    // (the TerminalDO then checks the key; a wrong one learns nothing either way).
    const userPart = wsUser === null ? null : `:${await sha256Hex(wsUser)}`;
    const found = (await host(env, serverId).namedSessions()).find((s) => s.name === name && (userPart === null || (s.owner ?? "").endsWith(userPart)));
    const id = found?.meta.terminal_id ?? NO_SESSION_TERMINAL_ID;
    // Under a server's mount this is the terminals proxy's WebSocket (ws-proxy.ts): any
    // credential, the proxy's checks and the session's owner are checked on its first message.
    const proxied = request.params["server"] !== undefined;
    const owner = found?.owner ?? null;
    const query = proxied ? rawProxyQuery({ session: name, owner, ip: clientIp(request) }) : rawOwnedQuery({ owner });
    return terminalStub(env, serverId, id).fetch(new Request(`https://terminal/raw?${query}`, { headers: request.headers }));
  });

  api.route("GET", "/api/terminals/:session_id", "read", async (request, env) => {
    const { serverId } = request.scope;
    const name = decodeName(request.params["session_id"]);
    const found = (await visible(request, env, serverId, scopeOf, user(request))).find((s) => s.name === name);
    return found ? Response.json(info(found.meta, found.name)) : sessionNotFound();
  });

  api.route("DELETE", "/api/terminals/:session_id", "write", async (request, env) => {
    const { serverId } = request.scope;
    const name = decodeName(request.params["session_id"]);
    const found = (await visible(request, env, serverId, scopeOf, user(request))).find((s) => s.name === name);
    if (!found) return sessionNotFound();
    const id = found.meta.terminal_id;
    const deleted = await terminalCall(async () => unwrap(await host(env, serverId).deleteSession(id)));
    if (deleted instanceof Response) return deleted;
    return Response.json({ status: "deleted" });
  });
}
