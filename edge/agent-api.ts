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

/** The agent-link family: `/agent/v1/control` and `/agent/v1/data`. */
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

  api.route("ALL", "/agent/*", "agent", (request) => {
    throw new AgentLinkError(404, "NOT_FOUND", `No route for ${request.method} ${new URL(request.url).pathname}`);
  });
  return api;
}
