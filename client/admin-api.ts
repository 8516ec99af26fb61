/**
 * The admin API (`/api/v1/admin/*`, admins only: the API key or an admin user's token; a user's
 * credential gets 403 ADMIN_ONLY) and browser sign-in (`/api/v1/auth/session`). Always addressed
 * at the edge's top level, whatever the mount. Errors in the session API's shape.
 */
import type {
  Access,
  AccessServerRecord,
  AuditEvent,
  AuditPage,
  CreatedToken,
  GrantRecord,
  GroupRecord,
  PutServerResult,
  Role,
  ServerRecord,
  TokenRecord,
  TokenScope,
  UserRecord,
  WhoAmI,
} from "../shared/admin.ts";
import type { StatsBody } from "../shared/stats.ts";
import type { RequestOptions, Transport } from "./transport.ts";

/** A grant's key: which server (and terminal, 0 or absent for the whole server), given to whom. */
export interface GrantKey {
  server_id: string;
  terminal_id?: number;
  principal_type: "user" | "group";
  principal_id: string;
}

/** Admin calls go to the top level (never under a server's mount). */
class Top {
  constructor(protected readonly t: Transport) {}
  protected json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    return this.t.json<T>(method, path, opts, false);
  }
}

/** `/api/v1/admin/servers*` and `/api/v1/admin/stats`. */
export class ServersAdmin extends Top {
  /** The registry. */
  list(): Promise<ServerRecord[]> {
    return this.json("GET", "/api/v1/admin/servers");
  }
  /** Creates or updates a server; answers its agent token (generated unless given, ≥ 16 characters), shown once. */
  put(id: string, fields: { name?: string; url?: string; token?: string } = {}): Promise<PutServerResult> {
    return this.json("PUT", `/api/v1/admin/servers/${encodeURIComponent(id)}`, { json: fields });
  }
  delete(id: string): Promise<{ status: "deleted"; id: string }> {
    return this.json("DELETE", `/api/v1/admin/servers/${encodeURIComponent(id)}`);
  }
  /** Enables or disables a server (a disabled one answers 403 through the proxy, to everyone). */
  setEnabled(id: string, enabled: boolean): Promise<AccessServerRecord> {
    return this.json("PUT", `/api/v1/admin/servers/${encodeURIComponent(id)}/enabled`, { json: { enabled } });
  }
  /** Makes a server a URL server: an Open Terminal server the edge proxies to with `key`. */
  setUrl(id: string, upstream: { url: string; key: string }): Promise<{ id: string; kind: "url"; url: string }> {
    return this.json("PUT", `/api/v1/admin/servers/${encodeURIComponent(id)}/url`, { json: upstream });
  }
  /** Per-server and total numbers. */
  stats(): Promise<StatsBody> {
    return this.json("GET", "/api/v1/admin/stats");
  }
}

/** `/api/v1/admin/users*`. */
export class UsersAdmin extends Top {
  list(): Promise<UserRecord[]> {
    return this.json("GET", "/api/v1/admin/users");
  }
  /** 201; 409 when the id is taken. */
  create(user: { id: string; name?: string; email?: string; role?: Role }): Promise<UserRecord> {
    return this.json("POST", "/api/v1/admin/users", { json: user });
  }
  get(id: string): Promise<UserRecord> {
    return this.json("GET", `/api/v1/admin/users/${encodeURIComponent(id)}`);
  }
  update(id: string, patch: { name?: string; role?: Role; disabled?: boolean }): Promise<UserRecord> {
    return this.json("PATCH", `/api/v1/admin/users/${encodeURIComponent(id)}`, { json: patch });
  }
  /** Deletes the user with their tokens, memberships and grants. */
  delete(id: string): Promise<{ status: "deleted"; id: string }> {
    return this.json("DELETE", `/api/v1/admin/users/${encodeURIComponent(id)}`);
  }
}

/** `/api/v1/admin/groups*`. */
export class GroupsAdmin extends Top {
  list(): Promise<GroupRecord[]> {
    return this.json("GET", "/api/v1/admin/groups");
  }
  create(group: { id: string; name?: string }): Promise<GroupRecord> {
    return this.json("POST", "/api/v1/admin/groups", { json: group });
  }
  delete(id: string): Promise<{ status: "deleted"; id: string }> {
    return this.json("DELETE", `/api/v1/admin/groups/${encodeURIComponent(id)}`);
  }
  addMember(groupId: string, userId: string): Promise<{ group_id: string; user_id: string }> {
    return this.json("PUT", `/api/v1/admin/groups/${encodeURIComponent(groupId)}/members/${encodeURIComponent(userId)}`);
  }
  removeMember(groupId: string, userId: string): Promise<{ status: "deleted" }> {
    return this.json("DELETE", `/api/v1/admin/groups/${encodeURIComponent(groupId)}/members/${encodeURIComponent(userId)}`);
  }
}

/** `/api/v1/admin/grants`. */
export class GrantsAdmin extends Top {
  /** All grants, or one server's. */
  list(serverId?: string): Promise<GrantRecord[]> {
    return this.json("GET", "/api/v1/admin/grants", { query: { server_id: serverId } });
  }
  /** Creates or changes a grant. */
  put(grant: GrantKey & { access: Access }): Promise<GrantRecord> {
    return this.json("PUT", "/api/v1/admin/grants", { json: grant });
  }
  /** Removes a grant; the edge closes the open WebSockets that lost their access with it. */
  delete(key: GrantKey): Promise<{ status: "deleted"; /** Open WebSockets that lost their access and closed. */ closed_websockets: number }> {
    return this.json("DELETE", "/api/v1/admin/grants", { query: { ...key, terminal_id: key.terminal_id ?? 0 } });
  }
}

/** `/api/v1/admin/tokens*`. */
export class TokensAdmin extends Top {
  /** All tokens, or one user's, newest first, without secrets. */
  list(userId?: string): Promise<TokenRecord[]> {
    return this.json("GET", "/api/v1/admin/tokens", { query: { user_id: userId } });
  }
  /** A new token for a user; `token` is its secret, shown only in this answer. `ttl_s` in seconds (default 90 days). */
  create(request: { user_id: string; name?: string; role?: Role; scopes?: TokenScope[]; ttl_s?: number }): Promise<CreatedToken> {
    return this.json("POST", "/api/v1/admin/tokens", { json: request });
  }
  /** Revokes a token: its next request is refused, and its open WebSockets close. */
  revoke(id: string): Promise<{ status: "revoked"; id: string; /** Open WebSockets the revocation closed. */ closed_websockets: number }> {
    return this.json("DELETE", `/api/v1/admin/tokens/${encodeURIComponent(id)}`);
  }
}

/** The admin API. */
export class AdminApi extends Top {
  readonly servers = new ServersAdmin(this.t);
  readonly users = new UsersAdmin(this.t);
  readonly groups = new GroupsAdmin(this.t);
  readonly grants = new GrantsAdmin(this.t);
  readonly tokens = new TokensAdmin(this.t);

  /** One page of the audit log, newest first: events older than `before` (an event id); `limit` 1–500. */
  audit(page: { before?: number; limit?: number } = {}): Promise<AuditPage> {
    return this.json("GET", "/api/v1/admin/audit", { query: page });
  }

  /** Every audit event, newest first, page by page (at most `max` events). */
  async *auditEvents(options: { pageSize?: number; max?: number } = {}): AsyncGenerator<AuditEvent> {
    const { pageSize = 500, max = Infinity } = options;
    let before: number | undefined;
    let seen = 0;
    for (;;) {
      const page = await this.audit({ ...(before !== undefined ? { before } : {}), limit: pageSize });
      for (const event of page.events) {
        if (seen++ >= max) return;
        yield event;
      }
      if (page.next_before === null) return;
      before = page.next_before;
    }
  }
}

/** `/api/v1/auth/session`: the browser's sign-in (a cookie) and who a credential is. */
export class AuthApi extends Top {
  /** Who this client's credential (token or cookie) is. */
  whoami(): Promise<WhoAmI> {
    return this.json("GET", "/api/v1/auth/session");
  }
  /**
   * Signs a browser in with a token (the API key or a per-user token): the edge sets an HttpOnly
   * session cookie that later same-origin calls and WebSockets use.
   */
  async signIn(token: string): Promise<void> {
    await this.t.request("POST", "/api/v1/auth/session", { json: { token } }, false);
  }
  /** Ends the browser session (the cookie stops working everywhere at once). */
  async signOut(): Promise<void> {
    await this.t.request("DELETE", "/api/v1/auth/session", {}, false);
  }
}
