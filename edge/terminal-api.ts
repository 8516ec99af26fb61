/**
 * The terminal session API (seed 002) for one server: list, create, delete, WebSocket attach,
 * and share links (share-links.ts). Validation happens here, before anything reaches a Durable
 * Object or an agent. A caller with `read` access attaches read-only whatever it asks; a caller
 * limited to some terminals (per-terminal grants, a share link) lists and reaches only those.
 */
import type { IRequest } from "itty-router";
import { ApiError } from "../shared/errors.ts";
import { encodeServerFrame, type ErrorInfo } from "../shared/links/client.ts";
import { parseBool, parseCreateParams, parseTerminalId, requireTerminalId } from "../shared/validation.ts";
import { hostStub, terminalStub } from "./addresses.ts";
import type { Config, Env } from "./env.ts";
import { SessionApiError, unwrap } from "./errors.ts";
import { clientIp, recordAudit } from "./audit.ts";
import { actorOf } from "./caller.ts";
import { ApiFamily, mayReach, type RouteRequest } from "./family.ts";
import { mountShareLinks } from "./share-api.ts";
import { SHARE_WS_PROTOCOL } from "./share-links.ts";
import { all, first, intParam, isWebSocketUpgrade, readJsonObject } from "./http.ts";
import { mountScreenApi } from "./screen-api.ts";
import { MOUNTS } from "./scope.ts";
import { credentialOf, socketEnds } from "./live-sockets.ts";

/** Most command lines listed per session. */
export const HISTORY_LIMIT_MAX = 1000;
export const HISTORY_LIMIT_DEFAULT = 50;

/** Browsers may open the WebSocket from the edge's own origin or an allowed one. */
export function originAllowed(request: Request, config: Config): boolean {
  const origin = request.headers.get("Origin");
  if (!origin) return true; // not a browser
  if (origin === new URL(request.url).origin) return true;
  return config.allowedOrigins.includes("*") || config.allowedOrigins.includes(origin);
}

function offersShareProtocol(request: Request): boolean {
  return (request.headers.get("Sec-WebSocket-Protocol") ?? "").split(",").some((p) => p.trim() === SHARE_WS_PROTOCOL);
}

/** A browser that offered subprotocols fails a handshake that selects none: select the share one. */
function withShareProtocol(response: Response): Response {
  if (response.status !== 101 || !response.webSocket) return response;
  const headers = new Headers(response.headers);
  headers.set("Sec-WebSocket-Protocol", SHARE_WS_PROTOCOL);
  return new Response(null, { status: 101, webSocket: response.webSocket, headers });
}

/** A caller limited to some terminals asked for another. */
function accessDenied(): ApiError {
  return new ApiError(403, "ACCESS_DENIED", "Access denied: you may not reach this terminal");
}

/** Exit code of a session whose kind failed before it started (ssh's own code for that). */
const KIND_FAILED_EXIT_CODE = 255;

/** An accepted WebSocket that says ERROR, then EXIT, then closes: a session that ended at once. */
function endedSocket(error: ErrorInfo): Response {
  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  server.accept();
  const info = { code: error.code, message: error.message };
  server.send(encodeServerFrame({ t: "error", error: info }));
  server.send(encodeServerFrame({ t: "exit", exit: { exit_code: KIND_FAILED_EXIT_CODE, signal: 0, error: info } }));
  server.close(1000, "session ended");
  return new Response(null, { status: 101, webSocket: client });
}

/** The query of a WebSocket attach as a flat record (env kept aside: it repeats). */
function queryRecord(request: IRequest): Record<string, unknown> {
  const record: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(request.query)) if (key !== "env") record[key] = first(value);
  return record;
}

/** The terminal session API's family: these routes and the screen routes, on both mounts. */
export function terminalSessionApi(): ApiFamily {
  const api = new ApiFamily("terminal session API", SessionApiError, MOUNTS);

  api.route("GET", "/api/v1/terminal/sessions", "read", async (request, env) => {
    const { serverId } = request.scope;
    const limitParam = first(request.query["history_limit"]) ?? first(request.query["history_lines"]);
    const limit = intParam(limitParam, "history_limit", HISTORY_LIMIT_DEFAULT, 0, HISTORY_LIMIT_MAX);
    const sessions = unwrap(await hostStub(env, serverId).listSessions(limit));
    return Response.json(sessions.filter((s) => mayReach(request, s.id)));
  });

  const create = async (request: RouteRequest, env: Env): Promise<Response> => {
    const { serverId } = request.scope;
    const body = await readJsonObject(request);
    const ephemeral = parseBool(body["ephemeral"], "ephemeral", false);
    const hasId = body["terminal_id"] !== undefined && body["terminal_id"] !== null && body["terminal_id"] !== "";
    const terminalId = ephemeral && !hasId ? 0 : requireTerminalId(body["terminal_id"]);
    const env_ = Array.isArray(body["env"]) ? body["env"].map(String) : [];
    const params = parseCreateParams(body, terminalId, env_);
    const { status, meta } = unwrap(await hostStub(env, serverId).createSession(params));
    return Response.json({
      status,
      terminal_id: meta.terminal_id,
      shell: meta.shell,
      ...(meta.display ? { display: meta.display } : {}),
    });
  };
  api.route("POST", "/api/v1/terminal/create", "write", create, { json: true });

  api.route("DELETE", "/api/v1/terminal/:terminal_id", "write", async (request, env) => {
    const { serverId } = request.scope;
    const terminalId = requireTerminalId(request.params["terminal_id"]);
    if (!mayReach(request, terminalId)) throw accessDenied();
    unwrap(await hostStub(env, serverId).deleteSession(terminalId));
    return Response.json({ status: "deleted", terminal_id: terminalId });
  });

  // Attaching may create the session: that takes what `POST create` takes, `write` on the whole
  // server. A `read` caller attaches read-only to an existing session (its INPUT and RESIZE get
  // READ_ONLY errors), whatever `readonly` says; a caller with `write` on some terminals only (a
  // grant on one terminal) attaches to an existing one, and a missing one is the 404 a `read`
  // caller gets.
  api.route("GET", "/api/v1/terminal/ws", "read", async (request, env) => {
    const { config } = request;
    const { serverId } = request.scope;
    if (!isWebSocketUpgrade(request)) {
      throw new ApiError(426, "UPGRADE_REQUIRED", "This endpoint upgrades to a WebSocket; use a WebSocket client");
    }
    if (!originAllowed(request, config)) throw new ApiError(403, "ORIGIN_CHECK_FAILED", "Origin validation failed");
    const query = queryRecord(request);
    let terminalId = 0;
    if (query["terminal_id"] !== undefined) {
      const id = parseTerminalId(query["terminal_id"]);
      if (id === null) throw new ApiError(400, "INVALID_TERMINAL_ID", "Terminal ID must be numeric 1-65535");
      terminalId = id;
    }
    const readonly = parseBool(query["readonly"], "readonly", false) || request.access !== "write";
    // `create=false` (an extension of the seed's route): attach to an existing terminal only, as
    // a page opened from a link or reconnecting does, never start a new shell under its id.
    const create = parseBool(query["create"], "create", true);
    // `size_updates=true` (another addition): a writer is told, by INFO, the PTY's size whenever
    // another client resizes it, as read-only clients are (docs/protocol.md).
    const sizeUpdates = parseBool(query["size_updates"], "size_updates", false);
    if (terminalId !== 0 && !mayReach(request, terminalId)) throw accessDenied();
    let params;
    try {
      params = parseCreateParams(query, terminalId, all(request.query["env"]));
    } catch (error) {
      if (error instanceof ApiError && error.status === 400) throw new ApiError(400, "INVALID_PARAMETERS", error.message);
      throw error;
    }
    const host = hostStub(env, serverId);
    if (!(await host.agentOnline())) {
      throw new ApiError(503, "AGENT_OFFLINE", "Terminal service unavailable: the host's agent is offline");
    }
    if (readonly || !request.serverWrite || !create) {
      if (terminalId === 0 || !(await host.hasSession(terminalId))) {
        throw new ApiError(404, "SESSION_NOT_FOUND", create ? "Terminal session not found (read-only clients cannot create one)" : "Terminal session not found");
      }
    } else {
      const created = await host.createSession(params);
      // The session's kind failed upstream (an SSH login refused…): the client learns it as a
      // terminal does, an ERROR then an EXIT, rather than as a failed upgrade it cannot read.
      if (!created.ok && created.error.status === 502 && /^(SSH|SOCKS5)_/.test(created.error.code)) return endedSocket(created.error);
      terminalId = unwrap(created).meta.terminal_id;
    }
    const identity = request.principal?.identity;
    const url = new URL(`https://terminal/client?readonly=${readonly ? 1 : 0}${sizeUpdates ? "&size_updates=1" : ""}`);
    // A share link, a user's token or a browser session: its revocation or expiry closes the socket (live-sockets.ts).
    const ends = identity ? socketEnds(identity, credentialOf(request.principal)) : null;
    if (ends) {
      url.searchParams.set("credential", ends.credential);
      url.searchParams.set("until", String(ends.until));
      if (ends.user !== undefined) url.searchParams.set("user", ends.user);
    }
    const response = await terminalStub(env, serverId, terminalId).fetch(new Request(url, { headers: request.headers }));
    if (response.status === 101 && identity) {
      await recordAudit(env.DB, {
        actor: actorOf(identity),
        action: readonly ? "terminal.attach.read" : "terminal.attach.write",
        server_id: serverId,
        terminal_id: terminalId,
        ip: clientIp(request),
      });
    }
    return offersShareProtocol(request) ? withShareProtocol(response) : response;
  });

  mountScreenApi(api);
  mountShareLinks(api);

  const noRoute = (request: Request): never => {
    throw new SessionApiError(404, "NOT_FOUND", `No route for ${request.method} ${new URL(request.url).pathname}`);
  };
  api.route("ALL", "/api/v1/terminal/*", "write", noRoute);
  // The rest of `/api/v1/` is this family's namespace too (Open Terminal has no `/api/v1/`
  // routes): under a server's mount after the caller's checks, at the top level for anyone
  // (what is not routed is no secret) — but not the terminals API's own `/api/v1/terminals/…`.
  api.route("ALL", "/api/v1/*", "write", noRoute, { mounts: ["server"] });
  api.route("ALL", "/api/v1/*", "public", (request) => (/^\/api\/v1\/terminals(\/|$)/.test(new URL(request.url).pathname) ? undefined : noRoute(request)), { mounts: ["root"] });
  return api;
}
