/**
 * The admin family: browser sign-in (the API key or a per-user token once, then an HttpOnly
 * cookie backed by a server-side record), the registry of servers, and users, groups, grants,
 * tokens and the audit log (identity-admin-api.ts). Errors in the terminal session API's shape,
 * which the web app reads. Every `/api/v1/admin/*` route is `admin`: a user's credential never
 * passes (family.ts).
 */
import { isServerId } from "../shared/validation.ts";
import { API_TOKEN_PREFIX, apiTokenId } from "./api-tokens.ts";
import { bearerToken, clearSessionCookie, issueSessionCookie, randomToken, revokeSession, equalsApiKey } from "./auth.ts";
import { clientIp, recordAudit } from "./audit.ts";
import { actorOf, ADMIN_KEY_IDENTITY } from "./caller.ts";
import { SessionApiError } from "./errors.ts";
import { ApiFamily } from "./family.ts";
import { identityForToken } from "./identities.ts";
import { closeCredentialSockets, credentialOf, CredentialClose, recheckSockets } from "./live-sockets.ts";
import { closeShareSockets } from "./share-links.ts";
import { mountIdentityAdmin } from "./identity-admin-api.ts";
import { readJsonObject } from "./http.ts";
import { deleteServer, getServer, listServers, putServer, verifyAgentToken } from "./registry.ts";
import { hostStub } from "./addresses.ts";
import { adminStats } from "./stats-api.ts";

/** Close of an agent's links when its server gets a new agent token (the old one no longer authenticates). */
export const AGENT_TOKEN_ROTATED = { code: 4001, reason: "agent token rotated" } as const;
/** Close of an agent's links when its server is removed from the registry. */
export const AGENT_SERVER_REMOVED = { code: 4004, reason: "server removed" } as const;

/** Longest server name kept, in characters. */
export const SERVER_NAME_MAX_CHARS = 200;
/** Longest server URL kept, in characters. */
export const SERVER_URL_MAX_CHARS = 2000;
/** Shortest agent token accepted, in characters. */
export const AGENT_TOKEN_MIN_CHARS = 16;

const unauthorized = () => new SessionApiError(401, "UNAUTHORIZED", SessionApiError.unauthorizedMessage);

/** The admin family's routes: `/api/v1/auth/*` and `/api/v1/admin/*`. */
export function adminApi(): ApiFamily {
  const api = new ApiFamily("admin", SessionApiError);

  // --- browser sign-in -------------------------------------------------------------------------

  api.route(
    "POST",
    "/api/v1/auth/session",
    "public",
    async (request, env) => {
      const body = await readJsonObject(request);
      const token = typeof body["token"] === "string" ? body["token"] : (bearerToken(request) ?? "");
      // The cookie is signed with the API key, so without one no browser signs in.
      if (!env.EDGETTY_API_KEY) throw unauthorized();
      // A per-user token signs its user in (with its role and read-only scope); else the API key, the admin.
      const user = apiTokenId(token) !== null ? await identityForToken(env.DB, token) : null;
      if (user === null && !(await equalsApiKey(token, env.EDGETTY_API_KEY))) {
        // The token came in the body (or as a bearer): say what was wrong with it, not how to send one.
        const why = token.startsWith(API_TOKEN_PREFIX) ? "Invalid, expired or revoked API token" : token === "" ? 'No token: send {"token": "<API key or token>"}' : "Invalid API key or token";
        throw new SessionApiError(401, "UNAUTHORIZED", why);
      }
      const secure = new URL(request.url).protocol === "https:";
      const cookie = await issueSessionCookie(env, env.EDGETTY_API_KEY, secure, Date.now(), user ?? undefined);
      return new Response(null, { status: 204, headers: { "Set-Cookie": cookie } });
    },
    { json: true },
  );
  // Who the session is: `{"role": "admin"}`, or a user's `{"role", "user_id", "read_only"}`.
  api.route("GET", "/api/v1/auth/session", "read", (request) => {
    const { identity } = request.principal!;
    return Response.json(identity === ADMIN_KEY_IDENTITY ? { role: "admin" } : { role: identity.role, user_id: identity.userId, read_only: identity.readOnly });
  });
  api.route("DELETE", "/api/v1/auth/session", "read", async (request, env) => {
    await revokeSession(env, request.principal!);
    // Signed out first, so no socket joins behind this sweep (live-sockets.ts).
    const cred = credentialOf(request.principal);
    if (request.principal!.via === "cookie" && cred) await closeCredentialSockets(env, { credential: cred.id }, CredentialClose.SIGNED_OUT);
    const secure = new URL(request.url).protocol === "https:";
    return new Response(null, { status: 204, headers: { "Set-Cookie": clearSessionCookie(secure) } });
  });

  // --- the registry of servers -----------------------------------------------------------------

  api.route("GET", "/api/v1/admin/servers", "admin", async (_request, env) => Response.json(await listServers(env.DB)));
  api.route("GET", "/api/v1/admin/stats", "admin", (_request, env) => adminStats(env));

  api.route(
    "PUT",
    "/api/v1/admin/servers/:id",
    "admin",
    async (request, env) => {
      const id = request.params["id"] ?? "";
      if (!isServerId(id)) throw new SessionApiError(400, "INVALID_SERVER_ID", "server id must match [a-z0-9][a-z0-9-]{0,62}");
      const body = await readJsonObject(request);
      const given = typeof body["token"] === "string" && body["token"].length >= AGENT_TOKEN_MIN_CHARS ? body["token"] : null;
      if (body["token"] !== undefined && given === null) {
        throw new SessionApiError(400, "INVALID_PARAMETERS", `token must be a string of at least ${AGENT_TOKEN_MIN_CHARS} characters`);
      }
      for (const field of ["name", "url"] as const) {
        if (body[field] !== undefined && typeof body[field] !== "string") throw new SessionApiError(400, "INVALID_PARAMETERS", `${field} must be a string`);
      }
      const token = given ?? randomToken();
      const name = typeof body["name"] === "string" && body["name"] ? body["name"].slice(0, SERVER_NAME_MAX_CHARS) : id;
      const url = typeof body["url"] === "string" ? body["url"].slice(0, SERVER_URL_MAX_CHARS) : "";
      // Shown to admins beside the server: an http(s) address or nothing, never a `javascript:` one.
      if (url !== "" && !/^https?:\/\/[^\s]+$/i.test(url)) throw new SessionApiError(400, "INVALID_PARAMETERS", "url must be an http:// or https:// address");
      // Re-registered with another token: whoever holds the old one (a leaked copy) loses the
      // links it has open, not only its next connect.
      const rotated = (await getServer(env.DB, id)) !== null && !(given !== null && (await verifyAgentToken(env.DB, id, given)));
      const server = await putServer(env.DB, { id, name, url, token });
      // Registered or re-registered: a new agent token either way (never the token itself).
      await recordAudit(env.DB, { actor: actorOf(request.principal!.identity), action: "server.put", detail: `name=${name}${url ? ` url=${url}` : ""}`, ip: clientIp(request), server_id: id });
      if (rotated) await hostStub(env, id).dropAgent(AGENT_TOKEN_ROTATED);
      return Response.json({ ...server, token });
    },
    { json: true },
  );

  api.route("DELETE", "/api/v1/admin/servers/:id", "admin", async (request, env) => {
    const id = request.params["id"] ?? "";
    const deleted = await deleteServer(env.DB, id);
    if (!deleted) throw new SessionApiError(404, "SERVER_NOT_FOUND", "No such server");
    await recordAudit(env.DB, { actor: actorOf(request.principal!.identity), action: "server.delete", ip: clientIp(request), server_id: id });
    // Users' and share links' open WebSockets on it close (4004 / 4001); the admin's stay. The
    // links' rows went with the server: the ones it deleted say where their sockets are.
    await recheckSockets(env, { serverId: id, users: null });
    await closeShareSockets(env, id, deleted.shares, "Terminal server removed");
    await hostStub(env, id).dropAgent(AGENT_SERVER_REMOVED);
    return Response.json({ status: "deleted", id });
  });

  // --- users, groups, memberships, grants, tokens, the audit log; servers' enabled flag and URL ---

  mountIdentityAdmin(api);

  // Anything else under the family's prefixes.
  const noRoute = (request: Request): never => {
    throw new SessionApiError(404, "NOT_FOUND", `No route for ${request.method} ${new URL(request.url).pathname}`);
  };
  api.route("ALL", "/api/v1/auth/*", "admin", noRoute);
  api.route("ALL", "/api/v1/admin/*", "admin", noRoute);
  return api;
}
