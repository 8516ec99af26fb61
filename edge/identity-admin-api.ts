/**
 * The admin API for identities (admin callers only; the mount checks that): users, groups and
 * memberships, per-user API tokens, grants, and the audit log. Every change is audited with the
 * acting caller and the client address. Errors are ApiErrors, rendered by the mount's family.
 *
 *   GET|POST   /api/v1/admin/users            PATCH|DELETE /api/v1/admin/users/:id
 *   GET|POST   /api/v1/admin/groups           DELETE       /api/v1/admin/groups/:id
 *   PUT|DELETE /api/v1/admin/groups/:id/members/:user
 *   GET|PUT|DELETE /api/v1/admin/grants       (PUT body / DELETE query: server_id, terminal_id,
 *                                              principal_type, principal_id[, access])
 *   GET|POST   /api/v1/admin/tokens           DELETE       /api/v1/admin/tokens/:id
 *   GET        /api/v1/admin/audit?before=<id>&limit=<n>
 *   PUT        /api/v1/admin/servers/:id/enabled   {"enabled": bool}
 *   PUT        /api/v1/admin/servers/:id/url       {"url", "key"}: make it a URL server
 */
import { ApiError } from "../shared/errors.ts";
import { AUDIT_PAGE_MAX, clientIp, listAudit, recordAudit, type AuditAction } from "./audit.ts";
import { actorOf } from "./caller.ts";
import type { Env } from "./env.ts";
import type { ApiFamily, Method, RouteRequest } from "./family.ts";
import { readJsonObject } from "./http.ts";
import { setServerEnabled } from "./server-access.ts";
import { setUrlServer } from "./url-servers.ts";
import { endTokenSessions } from "./browser-sessions.ts";
import { closeCredentialSockets, CredentialClose, RECHECK_USERS_MAX, recheckSockets } from "./live-sockets.ts";
import { closeServerShareSockets } from "./share-links.ts";
import {
  addMember,
  createGroup,
  createToken,
  createUser,
  deleteGroup,
  deleteUser,
  getUser,
  listGroups,
  listTokens,
  listUsers,
  removeMember,
  revokeToken,
  updateUser,
} from "./identities.ts";
import { deleteGrant, listGrants, putGrant } from "./identity-grants.ts";

/** A path parameter, percent-decoded; 400 INVALID_PARAMETERS when its escapes are not UTF-8 (`%`, `%E0`). */
function param(request: RouteRequest, name: string): string {
  try {
    return decodeURIComponent(request.params[name] ?? "");
  } catch {
    throw new ApiError(400, "INVALID_PARAMETERS", `The path's ${name} is not valid percent-encoded UTF-8`);
  }
}

function queryString(request: RouteRequest, name: string): string | undefined {
  const v = request.query[name];
  return typeof v === "string" ? v : undefined;
}

async function audit(request: RouteRequest, env: Env, actor: string, action: AuditAction, detail: string, serverId?: string, terminalId?: number): Promise<void> {
  await recordAudit(env.DB, { actor, action, detail, ip: clientIp(request), server_id: serverId ?? null, terminal_id: terminalId ?? null });
}

function notFound(what: string, id: string): ApiError {
  return new ApiError(404, `${what.toUpperCase()}_NOT_FOUND`, `No ${what} '${id}'`);
}

type Handler = (r: RouteRequest, env: Env, actor: string) => Promise<Response>;

/** The members of group `groupId` (at most RECHECK_USERS_MAX), whose sockets a change to the group's grants re-checks. */
async function groupMembers(db: D1Database, groupId: string): Promise<string[]> {
  const { results } = await db.prepare("SELECT user_id FROM memberships WHERE group_id = ? LIMIT ?").bind(groupId, RECHECK_USERS_MAX).all<{ user_id: string }>();
  return results.map((r) => r.user_id);
}

/** The users a grant to `type`:`id` reaches: the user, or the group's members. */
async function grantUsers(db: D1Database, type: string, id: string): Promise<string[]> {
  return type === "user" ? [id] : type === "group" ? groupMembers(db, id) : [];
}

/**
 * Mounts the identity admin routes on the admin family, every one `admin` (admins only: the API
 * key, its browser session, or an admin user); the acting caller is audited as `actorOf`.
 */
export function mountIdentityAdmin(api: ApiFamily): void {
  const route = (method: Method, path: string, handler: Handler) =>
    api.route(method, path, "admin", (r, env) => handler(r, env, actorOf(r.principal!.identity)), { json: method !== "GET" && method !== "DELETE" });

  route("GET", "/api/v1/admin/users", async (_r, env) => Response.json(await listUsers(env.DB)));
  route("POST", "/api/v1/admin/users", async (r, env, actor) => {
    const user = await createUser(env.DB, await readJsonObject(r));
    await audit(r, env, actor, "user.create", `${user.id} role=${user.role}`);
    return Response.json(user, { status: 201 });
  });
  route("GET", "/api/v1/admin/users/:id", async (r, env) => {
    const user = await getUser(env.DB, param(r, "id"));
    if (!user) throw notFound("user", param(r, "id"));
    return Response.json(user);
  });
  route("PATCH", "/api/v1/admin/users/:id", async (r, env, actor) => {
    const user = await updateUser(env.DB, param(r, "id"), await readJsonObject(r));
    await audit(r, env, actor, "user.update", `${user.id} role=${user.role} disabled=${user.disabled}`);
    // A disabled user's credentials stopped working: their open WebSockets close too.
    if (user.disabled) await closeCredentialSockets(env, { userId: user.id }, CredentialClose.USER_DISABLED);
    // A user (no longer admin) keeps only the sockets their grants still allow.
    else if (user.role === "user") await recheckSockets(env, { serverId: null, users: [user.id] });
    return Response.json(user);
  });
  route("DELETE", "/api/v1/admin/users/:id", async (r, env, actor) => {
    const id = param(r, "id");
    if (!(await deleteUser(env.DB, id))) throw notFound("user", id);
    await audit(r, env, actor, "user.delete", id);
    await closeCredentialSockets(env, { userId: id }, CredentialClose.USER_DISABLED);
    return Response.json({ status: "deleted", id });
  });

  route("GET", "/api/v1/admin/groups", async (_r, env) => Response.json(await listGroups(env.DB)));
  route("POST", "/api/v1/admin/groups", async (r, env, actor) => {
    const group = await createGroup(env.DB, await readJsonObject(r));
    await audit(r, env, actor, "group.create", group.id);
    return Response.json(group, { status: 201 });
  });
  route("DELETE", "/api/v1/admin/groups/:id", async (r, env, actor) => {
    const id = param(r, "id");
    const members = await groupMembers(env.DB, id);
    if (!(await deleteGroup(env.DB, id))) throw notFound("group", id);
    await audit(r, env, actor, "group.delete", id);
    // Its members keep only the sockets their other grants allow.
    await recheckSockets(env, { serverId: null, users: members });
    return Response.json({ status: "deleted", id });
  });
  route("PUT", "/api/v1/admin/groups/:id/members/:user", async (r, env, actor) => {
    await addMember(env.DB, param(r, "id"), param(r, "user"));
    await audit(r, env, actor, "group.member", `+${param(r, "user")} ${param(r, "id")}`);
    return Response.json({ group_id: param(r, "id"), user_id: param(r, "user") });
  });
  route("DELETE", "/api/v1/admin/groups/:id/members/:user", async (r, env, actor) => {
    if (!(await removeMember(env.DB, param(r, "id"), param(r, "user")))) throw new ApiError(404, "MEMBERSHIP_NOT_FOUND", "No such membership");
    await audit(r, env, actor, "group.member", `-${param(r, "user")} ${param(r, "id")}`);
    await recheckSockets(env, { serverId: null, users: [param(r, "user")] });
    return Response.json({ status: "deleted" });
  });

  route("GET", "/api/v1/admin/grants", async (r, env) => Response.json(await listGrants(env.DB, queryString(r, "server_id"))));
  route("PUT", "/api/v1/admin/grants", async (r, env, actor) => {
    const grant = await putGrant(env.DB, await readJsonObject(r));
    await audit(r, env, actor, "grant.put", `${grant.principal_type}:${grant.principal_id} ${grant.access}`, grant.server_id, grant.terminal_id || undefined);
    // A grant lowered to `read`: writing sockets it alone allowed close.
    if (grant.access === "read") {
      const users = await grantUsers(env.DB, grant.principal_type, grant.principal_id);
      await recheckSockets(env, { serverId: grant.server_id, ...(grant.terminal_id ? { terminalId: grant.terminal_id } : {}), users });
    }
    return Response.json(grant);
  });
  route("DELETE", "/api/v1/admin/grants", async (r, env, actor) => {
    const key = {
      server_id: queryString(r, "server_id") ?? "",
      terminal_id: Number(queryString(r, "terminal_id") ?? 0),
      principal_type: queryString(r, "principal_type") ?? "",
      principal_id: queryString(r, "principal_id") ?? "",
    };
    if (!Number.isInteger(key.terminal_id)) throw new ApiError(400, "INVALID_TERMINAL_ID", "terminal_id must be an integer");
    if (!(await deleteGrant(env.DB, key))) throw new ApiError(404, "GRANT_NOT_FOUND", "No such grant");
    await audit(r, env, actor, "grant.delete", `${key.principal_type}:${key.principal_id}`, key.server_id, key.terminal_id || undefined);
    // Sockets opened under the grant close unless another grant still allows them.
    const users = await grantUsers(env.DB, key.principal_type, key.principal_id);
    const closed = await recheckSockets(env, { serverId: key.server_id, ...(key.terminal_id ? { terminalId: key.terminal_id } : {}), users });
    return Response.json({ status: "deleted", closed_websockets: closed });
  });

  route("GET", "/api/v1/admin/tokens", async (r, env) => Response.json(await listTokens(env.DB, queryString(r, "user_id"))));
  route("POST", "/api/v1/admin/tokens", async (r, env, actor) => {
    const body = await readJsonObject(r);
    if (typeof body["user_id"] !== "string") throw new ApiError(400, "INVALID_PARAMETERS", "user_id is required");
    const token = await createToken(env.DB, body["user_id"], body);
    await audit(r, env, actor, "token.create", `${token.id} for ${token.user_id} role=${token.role}`);
    return Response.json(token, { status: 201, headers: { "Cache-Control": "no-store" } });
  });
  route("DELETE", "/api/v1/admin/tokens/:id", async (r, env, actor) => {
    const id = param(r, "id");
    if (!(await revokeToken(env.DB, id))) throw new ApiError(404, "TOKEN_NOT_FOUND", `No token '${id}'`);
    await audit(r, env, actor, "token.revoke", id);
    // Revoked first, so no socket joins behind this sweep (live-sockets.ts).
    let closed = await closeCredentialSockets(env, { credential: `token:${id}` }, CredentialClose.TOKEN_REVOKED);
    // Browsers signed in with the token end with it, and so do the WebSockets their cookies opened.
    for (const digest of await endTokenSessions(env.DB, id)) {
      closed += await closeCredentialSockets(env, { credential: `session:${digest}` }, CredentialClose.TOKEN_REVOKED);
    }
    return Response.json({ status: "revoked", id, closed_websockets: closed });
  });

  route("PUT", "/api/v1/admin/servers/:id/enabled", async (r, env, actor) => {
    const body = await readJsonObject(r);
    if (typeof body["enabled"] !== "boolean") throw new ApiError(400, "INVALID_PARAMETERS", "enabled must be true or false");
    const server = await setServerEnabled(env.DB, param(r, "id"), body["enabled"]);
    await audit(r, env, actor, "server.update", `enabled=${server.enabled}`, server.id);
    // Disabled: users' and share links' open WebSockets on it close (the admin's stay).
    if (!server.enabled) {
      await recheckSockets(env, { serverId: server.id, users: null });
      await closeServerShareSockets(env, server.id, "Terminal server disabled");
    }
    return Response.json(server);
  });

  route("PUT", "/api/v1/admin/servers/:id/url", async (r, env, actor) => {
    const server = await setUrlServer(env, param(r, "id"), await readJsonObject(r));
    await audit(r, env, actor, "server.update", `url=${server.url}`, server.id);
    return Response.json(server);
  });

  route("GET", "/api/v1/admin/audit", async (r, env) => {
    const before = queryString(r, "before");
    const limit = queryString(r, "limit");
    const page: { before?: number; limit?: number } = {};
    if (before !== undefined) {
      if (!/^\d{1,15}$/.test(before)) throw new ApiError(400, "INVALID_PARAMETERS", "before must be an event id");
      page.before = Number(before);
    }
    if (limit !== undefined) {
      if (!/^\d{1,4}$/.test(limit) || Number(limit) < 1 || Number(limit) > AUDIT_PAGE_MAX) throw new ApiError(400, "INVALID_PARAMETERS", `limit must be 1-${AUDIT_PAGE_MAX}`);
      page.limit = Number(limit);
    }
    return Response.json(await listAudit(env.DB, page));
  });
}
