/**
 * The agents' links: each host's agent dials a control WebSocket to its server's HostDO and one
 * data WebSocket per PTY to that PTY's TerminalDO. An agent authenticates with its server's
 * agent token (`Authorization: Bearer …`, `?server=<id>`) and reaches only its own server's DOs.
 */
import { parseTerminalId } from "../shared/validation.ts";
import { bearerToken } from "./auth.ts";
import { hostStub, terminalStub } from "./addresses.ts";
import type { Env } from "./env.ts";
import { AgentLinkError } from "./errors.ts";
import { ApiFamily } from "./family.ts";
import { isWebSocketUpgrade } from "./http.ts";
import { TUNNEL_BODY_SEGMENT_PATH } from "./http-tunnel.ts";
import { TUNNEL_BODY_KEY_HEADER, TUNNEL_BODY_PATH } from "../shared/links/tunnel.ts";
import { verifyAgentToken } from "./registry.ts";

/** The server whose agent token the request carries, or null. */
async function agentServer(request: Request, env: Env): Promise<string | null> {
  const serverId = new URL(request.url).searchParams.get("server") ?? "";
  const token = bearerToken(request);
  return token && (await verifyAgentToken(env.DB, serverId, token)) ? serverId : null;
}

function requireUpgrade(request: Request): void {
  if (!isWebSocketUpgrade(request)) throw new AgentLinkError(426, "UPGRADE_REQUIRED", "Agent links are WebSockets");
}

/** The agent-link family: `/agent/v1/control`, `/agent/v1/data` and `/agent/v1/body` (direct-body segments, shared/links/tunnel.ts). */
export function agentLinkApi(): ApiFamily {
  const api = new ApiFamily("agent links", AgentLinkError, undefined, agentServer);

  api.route("GET", "/agent/v1/control", "agent", (request, env) => {
    requireUpgrade(request);
    return hostStub(env, request.scope.serverId).fetch(new Request("https://host/control", { headers: request.headers }));
  });

  api.route("GET", "/agent/v1/data", "agent", (request, env) => {
    requireUpgrade(request);
    const terminalId = parseTerminalId(request.query["terminal_id"]);
    if (terminalId === null) throw new AgentLinkError(400, "INVALID_TERMINAL_ID", "Terminal ID must be numeric 1-65535");
    return terminalStub(env, request.scope.serverId, terminalId).fetch(new Request("https://terminal/agent", { headers: request.headers }));
  });

  // A segment of a direct body (shared/links/tunnel.ts), to the HostDO whose call it answers.
  api.route("POST", TUNNEL_BODY_PATH, "agent", (request, env) => {
    const url = new URL(request.url);
    const query = new URLSearchParams({ rid: url.searchParams.get("rid") ?? "", offset: url.searchParams.get("offset") ?? "" });
    const headers = new Headers();
    for (const name of ["Content-Length", TUNNEL_BODY_KEY_HEADER]) {
      const value = request.headers.get(name);
      if (value !== null) headers.set(name, value);
    }
    return hostStub(env, request.scope.serverId).fetch(new Request(`https://host${TUNNEL_BODY_SEGMENT_PATH}?${query}`, { method: "POST", headers, body: request.body }));
  });

  api.route("ALL", "/agent/*", "agent", (request) => {
    throw new AgentLinkError(404, "NOT_FOUND", `No route for ${request.method} ${new URL(request.url).pathname}`);
  });
  return api;
}
