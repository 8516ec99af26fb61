// The admin API as the admin pages use it (edge/admin-api.ts, edge/identity-admin-api.ts; shapes in
// docs/identities.md): servers, users, groups and memberships, grants, tokens and the audit log.
// Every call goes through Api.json, so the session cookie authenticates it from the edge's own
// origin (the edge refuses cookie-authenticated changes from anywhere else) and a 401 signs out.
import type { AuditEvent, AuditPage, CreatedToken, GrantRecord as Grant, GroupRecord as Group, TokenRecord as TokenInfo, UserRecord as User } from "../../shared/admin.ts";
import type { Api, ServerEntry } from "./api.ts";

// The record shapes are the edge's own (shared/admin.ts), under the names the pages use.
export type { AuditEvent, AuditPage, CreatedToken, Grant, Group, TokenInfo, User };

/** A server as `PUT /api/v1/admin/servers/{id}` answers it: with its agent token, shown once. */
export interface AddedServer {
  id: string;
  name: string;
  token: string;
}

/** Audit events per page the audit page asks for (the edge allows up to 500). */
export const AUDIT_PAGE_SIZE = 50;

const e = encodeURIComponent;

/** Typed calls to the admin API; each throws ApiError with the edge's message on refusal. */
export class AdminClient {
  constructor(private readonly api: Api) {}

  private send<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.api.json<T>(path, body === undefined ? { method } : { method, body: JSON.stringify(body) });
  }

  /** Every server with its state (the admin's view of `GET /api/v1/terminals/`). */
  servers(): Promise<ServerEntry[]> {
    return this.api.servers();
  }

  /** Registers an agent server; the answer holds its new agent token. */
  addServer(id: string, name: string): Promise<AddedServer> {
    return this.send("PUT", `/api/v1/admin/servers/${e(id)}`, name ? { name } : {});
  }

  /** Makes a registered server a URL server: an Open Terminal server at `url`, reached with `key`. */
  setServerUrl(id: string, url: string, key: string): Promise<unknown> {
    return this.send("PUT", `/api/v1/admin/servers/${e(id)}/url`, { url, key });
  }

  setServerEnabled(id: string, enabled: boolean): Promise<unknown> {
    return this.send("PUT", `/api/v1/admin/servers/${e(id)}/enabled`, { enabled });
  }

  removeServer(id: string): Promise<unknown> {
    return this.send("DELETE", `/api/v1/admin/servers/${e(id)}`);
  }

  users(): Promise<User[]> {
    return this.send("GET", "/api/v1/admin/users");
  }

  addUser(user: { id: string; name?: string; email?: string; role: "admin" | "user" }): Promise<User> {
    return this.send("POST", "/api/v1/admin/users", user);
  }

  updateUser(id: string, patch: { disabled?: boolean; role?: "admin" | "user" }): Promise<User> {
    return this.send("PATCH", `/api/v1/admin/users/${e(id)}`, patch);
  }

  removeUser(id: string): Promise<unknown> {
    return this.send("DELETE", `/api/v1/admin/users/${e(id)}`);
  }

  groups(): Promise<Group[]> {
    return this.send("GET", "/api/v1/admin/groups");
  }

  addGroup(group: { id: string; name?: string }): Promise<Group> {
    return this.send("POST", "/api/v1/admin/groups", group);
  }

  removeGroup(id: string): Promise<unknown> {
    return this.send("DELETE", `/api/v1/admin/groups/${e(id)}`);
  }

  addMember(groupId: string, userId: string): Promise<unknown> {
    return this.send("PUT", `/api/v1/admin/groups/${e(groupId)}/members/${e(userId)}`);
  }

  removeMember(groupId: string, userId: string): Promise<unknown> {
    return this.send("DELETE", `/api/v1/admin/groups/${e(groupId)}/members/${e(userId)}`);
  }

  grants(): Promise<Grant[]> {
    return this.send("GET", "/api/v1/admin/grants");
  }

  putGrant(grant: Omit<Grant, "created_at">): Promise<Grant> {
    return this.send("PUT", "/api/v1/admin/grants", grant);
  }

  removeGrant(grant: Pick<Grant, "server_id" | "terminal_id" | "principal_type" | "principal_id">): Promise<unknown> {
    const q = new URLSearchParams({
      server_id: grant.server_id,
      terminal_id: String(grant.terminal_id),
      principal_type: grant.principal_type,
      principal_id: grant.principal_id,
    });
    return this.send("DELETE", `/api/v1/admin/grants?${q}`);
  }

  tokens(): Promise<TokenInfo[]> {
    return this.send("GET", "/api/v1/admin/tokens");
  }

  /** Creates a token; `ttl_s` in seconds. The answer's `token` is shown once, never again. */
  createToken(req: { user_id: string; name?: string; ttl_s: number; scopes: string[]; role?: "admin" }): Promise<CreatedToken> {
    return this.send("POST", "/api/v1/admin/tokens", req);
  }

  revokeToken(id: string): Promise<unknown> {
    return this.send("DELETE", `/api/v1/admin/tokens/${e(id)}`);
  }

  /** One page of the audit log: the newest events, or those older than event `before`. */
  audit(before: number | null, limit = AUDIT_PAGE_SIZE): Promise<AuditPage> {
    const q = new URLSearchParams({ limit: String(limit) });
    if (before !== null) q.set("before", String(before));
    return this.send("GET", `/api/v1/admin/audit?${q}`);
  }
}

/** What every admin page gets: the admin API and the edge's own URL (for agent commands). */
export interface AdminContext {
  client: AdminClient;
  /** The edge's origin as the browser reaches it, e.g. `https://edgetty.example.com`. */
  edge: string;
}
