/**
 * The Open WebUI terminals API (seed 000): `GET /api/v1/terminals/` lists the servers the caller
 * may use (server-access.ts: every server for admins, the enabled, granted ones for a user), each
 * with the caller's `access` to it. `/api/v1/terminals/{server_id}/…` is not routed here: it is the second mount of the
 * terminal session and Open Terminal families (scope.ts), whose unknown-server errors are this
 * family's (TerminalsError).
 */
import { hostStub } from "./addresses.ts";
import { TerminalsError } from "./errors.ts";
import { ApiFamily } from "./family.ts";
import { serverAccessMap } from "./identity-grants.ts";
import { serversFor } from "./server-access.ts";

/** The terminals family's routes. */
export function terminalsApi(): ApiFamily {
  const api = new ApiFamily("terminals", TerminalsError);

  api.route("GET", "/api/v1/terminals/?", "read", async (request, env) => {
    const origin = new URL(request.url).origin;
    // All servers for admins (with `enabled`); a user's are the enabled ones granted to them or their groups.
    const identity = request.principal!.identity;
    const servers = await serversFor(env.DB, identity);
    const statuses = await Promise.all(servers.map((s) => hostStub(env, s.id).status()));
    const access = await serverAccessMap(env.DB, identity, servers.map((s) => s.id));
    return Response.json(
      servers.map((s, i) => ({
        id: s.id,
        url: s.url || `${origin}/api/v1/terminals/${s.id}`,
        name: s.name,
        enabled: s.enabled,
        kind: s.kind,
        // What the caller may do there (the web app offers only that): `write`, `read`, or null
        // when only single terminals of it are granted.
        access: access.get(s.id) ?? null,
        online: statuses[i]!.online,
        default: s.id === request.config.defaultServer,
        // Once an agent has connected: its version and process start (its uptime), and when it was last heard from.
        ...(statuses[i]!.agent
          ? { agent: { version: statuses[i]!.agent!.version, started_at: statuses[i]!.agent!.facts?.started_at ?? null, last_seen: statuses[i]!.last_seen } }
          : {}),
      })),
    );
  });

  api.route("ALL", "/api/v1/terminals/?", "admin", (request) => {
    throw new TerminalsError(405, "METHOD_NOT_ALLOWED", `${request.method} is not allowed here; use GET`);
  });
  return api;
}
