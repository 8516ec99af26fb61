/**
 * The admin API's records as they travel (`/api/v1/admin/*`, `/api/v1/auth/session`,
 * `GET /api/v1/terminals/`): what the edge answers (edge/identities.ts, edge/identity-grants.ts, edge/audit.ts,
 * edge/registry.ts, edge/server-access.ts, edge/terminals-api.ts) and the typed client reads
 * (client/). Times are epoch milliseconds unless a field says ISO 8601.
 */

/** A role: admins do everything; users reach what is granted to them or their groups. */
export type Role = "admin" | "user";

/** A grant's level; `write` includes `read`. */
export type Access = "read" | "write";

/** Token scopes: `read-only` caps every grant (and an admin token) at `read`. */
export const TOKEN_SCOPES = ["read-only"] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

/** A user as the admin API shows it. */
export interface UserRecord {
  id: string;
  name: string;
  email: string | null;
  role: Role;
  disabled: boolean;
  /** Epoch ms. */
  created_at: number;
}

/** A group with its members' user ids. */
export interface GroupRecord {
  id: string;
  name: string;
  /** Epoch ms. */
  created_at: number;
  members: string[];
}

/** A token as listed: never its secret or hash. */
export interface TokenRecord {
  /** The public id (`ett_<id>_…`'s middle part), used to revoke it. */
  id: string;
  user_id: string;
  name: string;
  role: Role;
  scopes: TokenScope[];
  /** Epoch ms. */
  expires_at: number;
  /** Epoch ms, updated at most once a minute; null before first use. */
  last_used_at: number | null;
  /** Epoch ms. */
  created_at: number;
}

/** `POST /api/v1/admin/tokens`: the record plus the token itself, shown this once. */
export interface CreatedToken extends TokenRecord {
  /** `ett_<16 hex>_<base64url secret>`: the bearer credential. */
  token: string;
}

/** A grant of a server (terminal_id 0) or one terminal to a user or a group. */
export interface GrantRecord {
  server_id: string;
  /** 0: the whole server. */
  terminal_id: number;
  principal_type: "user" | "group";
  principal_id: string;
  access: Access;
  /** Epoch ms. */
  created_at: number;
}

/** One audit event. */
export interface AuditEvent {
  id: number;
  /** Epoch ms. */
  at: number;
  /** `user:<id>`, `admin-key`, `share:<id>` or `agent:<server>`. */
  actor: string;
  /** `sign-in`, `user.create`, `grant.put`, `proxy`… (edge/audit.ts lists them). */
  action: string;
  server_id: string | null;
  terminal_id: number | null;
  detail: string;
  /** The client address Cloudflare saw (`CF-Connecting-IP`), or empty. */
  ip: string;
}

/** `GET /api/v1/admin/audit`: newest first; pass `next_before` as `before` for the next page (null: no more). */
export interface AuditPage {
  events: AuditEvent[];
  next_before: number | null;
}

/** A server of the registry (`GET /api/v1/admin/servers`). */
export interface ServerRecord {
  id: string;
  name: string;
  url: string;
  /** ISO 8601. */
  created_at: string;
}

/** `PUT /api/v1/admin/servers/{id}`: the record and its agent token (shown this once). */
export interface PutServerResult extends ServerRecord {
  token: string;
}

/** A server with the flags the proxy's checks read (`PUT /api/v1/admin/servers/{id}/enabled`). */
export interface AccessServerRecord {
  id: string;
  name: string;
  url: string;
  enabled: boolean;
  /** `agent`: reached over its agent's link; `url`: an Open Terminal server the edge proxies to. */
  kind: "agent" | "url";
}

/** One item of `GET /api/v1/terminals/` (Open WebUI's `{id, url, name}` plus edgetty's keys). */
export interface TerminalServer {
  id: string;
  /** The server's configured URL, or its base under this edge (`…/api/v1/terminals/{id}`). */
  url: string;
  name: string;
  enabled: boolean;
  /** `agent`: reached over its agent's link; `url`: an Open Terminal server the edge proxies to. */
  kind: "agent" | "url";
  /** What the caller may do there: `write`, `read` (watch only), or null when only single terminals of it are granted. */
  access: Access | null;
  /** Its agent is connected now. */
  online: boolean;
  /** The server the un-prefixed routes address. */
  default: boolean;
  /** Once an agent has connected: its version, process start (ISO 8601) and last contact. */
  agent?: { version: string; started_at: string | null; last_seen: string | null };
}

/** `GET /api/v1/auth/session`: who the credential is. */
export type WhoAmI = { role: "admin" } | { role: Role; user_id: string; read_only: boolean };
