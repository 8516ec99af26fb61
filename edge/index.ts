/**
 * The edgetty Worker: the API families, each an itty-router whose routes declare who may call
 * them (family.ts), tried in order; then the web app's static files. Durable Objects do the
 * stateful work (host-do.ts, terminal-do.ts); this file only decides where a request goes.
 *
 * | family | routes | errors |
 * | --- | --- | --- |
 * | agent links (agent-api.ts) | /agent/v1/* | AgentLinkError `{detail, code}` |
 * | admin (admin-api.ts, stats-api.ts) | /api/v1/auth/*, /api/v1/admin/* | SessionApiError |
 * | terminals (terminals-api.ts) | /api/v1/terminals/ | TerminalsError `{error, code}` |
 * | terminal session API (terminal-api.ts, screen-api.ts) | /api/v1/terminal/*, both mounts | SessionApiError `{statusCode, error, message, code}` |
 * | Open Terminal API (open-terminal-api.ts) | /health, /api/config, /openapi.json, /docs, /execute*, /api/terminals*, /files/*, /ports, /proxy/*, /system, /info, both mounts | OpenTerminalError `{detail, code}` |
 *
 * The mounts (the top level for the default server, `/api/v1/terminals/{server_id}/` for a named
 * one) are declared in scope.ts. Before any family runs, a request under a server's mount passes
 * the gate (caller-gate.ts): its caller is identified and the terminals proxy's checks run in
 * order (grants, the server's state, the path), and a URL server is proxied to there. Every
 * WebSocket answer then gets the edge's permessage-deflate decision (ws-compression.ts).
 */
import { adminApi } from "./admin-api.ts";
import { agentLinkApi } from "./agent-api.ts";
import { gate } from "./caller-gate.ts";
import { corsPreflight, withCors } from "./cors.ts";
import { readConfig, type Env } from "./env.ts";
import { asFamilyError, OpenTerminalError, TerminalsError } from "./errors.ts";
import { ApiFamily, dispatch } from "./family.ts";
import { openTerminalApi } from "./open-terminal-api.ts";
import { terminalSessionApi } from "./terminal-api.ts";
import { terminalsApi } from "./terminals-api.ts";
import { drainUnread } from "./http.ts";
import { webApp } from "./web-app.ts";
import { withWsCompression } from "./ws-compression.ts";

export { HostDO } from "./host-do.ts";
export { TerminalDO } from "./terminal-do.ts";

/** Every family, in the order they are tried. */
const FAMILIES: readonly ApiFamily[] = [agentLinkApi(), adminApi(), terminalsApi(), terminalSessionApi(), openTerminalApi(), webApp()];

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const response = await route(request, env, ctx);
    await drainUnread(request.body);
    return response.status === 101 ? withWsCompression(new URL(request.url).pathname, response, clientDeflate(env)) : response;
  },
} satisfies ExportedHandler<Env>;

/** The operator's permessage-deflate setting for client WebSockets (off when the configuration is bad). */
function clientDeflate(env: Env): boolean {
  try {
    return readConfig(env).clientWsDeflate;
  } catch {
    return false;
  }
}

async function route(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  {
    // CORS (cors.ts) wraps the families: preflights are answered before any route's auth.
    const preflight = corsPreflight(request, env);
    if (preflight) return preflight;
    // The gate answers a refusal (or a URL server's reply), or the request to route: the same one
    // or one with its sanitised path (which the gate remembers, so it is not checked twice).
    let routed: Request | Response;
    try {
      routed = await gate(request, env);
    } catch (error) {
      // Under a server's mount: the terminals family's shape, as for an unknown server.
      routed = asFamilyError(TerminalsError, error, `gate ${request.method} ${new URL(request.url).pathname}`).response();
    }
    if (routed instanceof Response) return withCors(request, env, routed);
    const response = (await dispatch(FAMILIES, routed, env, ctx)) ?? new OpenTerminalError(404, "NOT_FOUND", "No route").response();
    if (routed !== request) await drainUnread(routed.body);
    return withCors(request, env, response);
  }
}
