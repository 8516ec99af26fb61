/**
 * Grants in D1 (schema: edge/migrations/0003_identities.sql): access to a server (terminal_id 0)
 * or to one of its terminals, for a user or a group, and the questions asked of them: what access
 * an identity (identities.ts) has to a server or terminal, its grants on one server, which servers
 * it may use. Admins have write everywhere; read-only tokens and share links are capped at read.
 * Every table and lookup is bounded.
 */
import { ApiError } from "../shared/errors.ts";
import { isServerId, parseTerminalId } from "../shared/validation.ts";
import type { Access, GrantRecord } from "../shared/admin.ts";
import { countRows, LIST_MAX_ROWS, requireId, type Identity } from "./identities.ts";

/** Most grants one registry holds. */
export const MAX_GRANTS = 100_000;

/** Grants (or changes) access to a server (terminal_id 0) or one terminal for a user or group. */
export async function putGrant(
  db: D1Database,
  input: { server_id?: unknown; terminal_id?: unknown; principal_type?: unknown; principal_id?: unknown; access?: unknown },
  now = Date.now(),
): Promise<GrantRecord> {
  const serverId = input.server_id;
  if (typeof serverId !== "string" || !isServerId(serverId)) throw new ApiError(400, "INVALID_SERVER_ID", "server_id must match [a-z0-9][a-z0-9-]{0,62}");
  // Absent, null or 0 is the whole server; anything else must name a terminal. (Number() read
  // "", [] and false as 0, a whole-server grant for a caller who meant one terminal.)
  const given = input.terminal_id;
  const terminal = given === undefined || given === null || given === 0 ? 0 : parseTerminalId(given);
  if (terminal === null) throw new ApiError(400, "INVALID_TERMINAL_ID", "terminal_id must be 1-65535 (or absent for the whole server)");
  if (input.principal_type !== "user" && input.principal_type !== "group") throw new ApiError(400, "INVALID_PARAMETERS", "principal_type must be user or group");
  const principal = requireId(input.principal_id, input.principal_type);
  const access = input.access ?? "write";
  if (access !== "read" && access !== "write") throw new ApiError(400, "INVALID_PARAMETERS", "access must be read or write");
  const table = input.principal_type === "user" ? "users" : "groups";
  if (!(await db.prepare(`SELECT 1 AS x FROM ${table} WHERE id = ?`).bind(principal).first())) {
    throw new ApiError(404, input.principal_type === "user" ? "USER_NOT_FOUND" : "GROUP_NOT_FOUND", `No ${input.principal_type} '${principal}'`);
  }
  // Only a registered server: a grant waiting for an id would hand a host registered later to its grantee.
  if (!(await db.prepare("SELECT 1 AS x FROM servers WHERE id = ?").bind(serverId).first())) {
    throw new ApiError(404, "SERVER_NOT_FOUND", `No server '${serverId}'`);
  }
  if ((await countRows(db, "SELECT COUNT(*) AS n FROM grants")) >= MAX_GRANTS) throw new ApiError(429, "TOO_MANY_GRANTS", `at most ${MAX_GRANTS} grants`);
  await db
    .prepare(
      `INSERT INTO grants (server_id, terminal_id, principal_type, principal_id, access, created_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (server_id, terminal_id, principal_type, principal_id) DO UPDATE SET access = excluded.access`,
    )
    .bind(serverId, terminal, input.principal_type, principal, access, now)
    .run();
  return { server_id: serverId, terminal_id: terminal, principal_type: input.principal_type, principal_id: principal, access, created_at: now };
}

export async function deleteGrant(db: D1Database, key: { server_id: string; terminal_id: number; principal_type: string; principal_id: string }): Promise<boolean> {
  const result = await db
    .prepare("DELETE FROM grants WHERE server_id = ? AND terminal_id = ? AND principal_type = ? AND principal_id = ?")
    .bind(key.server_id, key.terminal_id, key.principal_type, key.principal_id)
    .run();
  return (result.meta.changes ?? 0) > 0;
}

export async function listGrants(db: D1Database, serverId?: string): Promise<GrantRecord[]> {
  const cols = "server_id, terminal_id, principal_type, principal_id, access, created_at";
  const stmt = serverId
    ? db.prepare(`SELECT ${cols} FROM grants WHERE server_id = ? ORDER BY terminal_id, principal_type, principal_id LIMIT ?`).bind(serverId, LIST_MAX_ROWS)
    : db.prepare(`SELECT ${cols} FROM grants ORDER BY server_id, terminal_id, principal_type, principal_id LIMIT ?`).bind(LIST_MAX_ROWS);
  return (await stmt.all<GrantRecord>()).results;
}

// Grants that apply to a user directly or through a group.
const USER_GRANTS = `SELECT server_id, terminal_id, access FROM grants
  WHERE (principal_type = 'user' AND principal_id = ?1)
     OR (principal_type = 'group' AND principal_id IN (SELECT group_id FROM memberships WHERE user_id = ?1))`;

function cap(access: Access, identity: Identity): Access {
  return identity.readOnly ? "read" : access;
}

/**
 * The identity's access to a server, or to one terminal of it when `terminalId` is given:
 * admins `write`; users the best of their own and their groups' grants on the server and on
 * that terminal; null for none. A read-only token caps the answer at `read`.
 */
export async function accessFor(db: D1Database, identity: Identity, serverId: string, terminalId?: number): Promise<Access | null> {
  if (identity.share) return identity.share.serverId === serverId && identity.share.terminalId === terminalId ? "read" : null;
  if (identity.role === "admin") return cap("write", identity);
  const { results } = await db
    .prepare(`SELECT access FROM (${USER_GRANTS}) WHERE server_id = ?2 AND terminal_id IN (0, ?3)`)
    .bind(identity.userId, serverId, terminalId ?? 0)
    .all<{ access: Access }>();
  if (results.length === 0) return null;
  return cap(results.some((r) => r.access === "write") ? "write" : "read", identity);
}

/**
 * What a caller may do on one server: `server` is its access to the whole server (null: none);
 * `terminals` its access to single terminals beyond that (grants with a terminal id, or a share
 * link's terminal). Read-only tokens and share links are capped at `read`.
 */
export interface ServerGrants {
  server: Access | null;
  terminals: ReadonlyMap<number, Access>;
}

/** Most per-terminal grants one caller's lookup on one server reads. */
export const TERMINAL_GRANTS_MAX = 1_000;

/** The identity's grants on `serverId`, or null when it holds none there. */
export async function grantsOn(db: D1Database, identity: Identity, serverId: string): Promise<ServerGrants | null> {
  if (identity.share) {
    if (identity.share.serverId !== serverId) return null;
    return { server: null, terminals: new Map([[identity.share.terminalId, "read"]]) };
  }
  if (identity.role === "admin") return { server: cap("write", identity), terminals: new Map() };
  const { results } = await db
    .prepare(`SELECT terminal_id, access FROM (${USER_GRANTS}) WHERE server_id = ?2 LIMIT ?3`)
    .bind(identity.userId, serverId, TERMINAL_GRANTS_MAX)
    .all<{ terminal_id: number; access: Access }>();
  if (results.length === 0) return null;
  let server: Access | null = null;
  const terminals = new Map<number, Access>();
  for (const row of results) {
    if (row.terminal_id === 0) server = best(server, row.access);
    else terminals.set(row.terminal_id, best(terminals.get(row.terminal_id) ?? null, row.access));
  }
  if (server !== null) server = cap(server, identity);
  for (const [id, access] of terminals) terminals.set(id, cap(best(server, access), identity));
  return { server, terminals };
}

/** The caller's access to terminal `terminalId` (or, null, to the server as a whole) under `grants`. */
export function accessTo(grants: ServerGrants, terminalId: number | null): Access | null {
  const terminal = terminalId === null ? null : (grants.terminals.get(terminalId) ?? null);
  return grants.server === null && terminal === null ? null : best(grants.server, terminal);
}

function best(a: Access | null, b: Access | null): Access {
  return a === "write" || b === "write" ? "write" : (a ?? b ?? "read");
}

/** Ids of the servers a user holds any grant on (the whole server or one of its terminals). */
export async function grantedServerIds(db: D1Database, identity: Identity): Promise<Set<string>> {
  const { results } = await db.prepare(`SELECT DISTINCT server_id FROM (${USER_GRANTS}) LIMIT ?2`).bind(identity.userId, LIST_MAX_ROWS).all<{ server_id: string }>();
  return new Set(results.map((r) => r.server_id));
}

/**
 * The identity's server-wide access to each server it may use, by server id: `write` for every
 * listed server for admins; for users the best of their own and their groups' whole-server grants
 * (a server granted only terminal by terminal has no entry). A read-only token caps each at `read`.
 */
export async function serverAccessMap(db: D1Database, identity: Identity, serverIds: readonly string[]): Promise<Map<string, Access>> {
  if (identity.role === "admin") return new Map(serverIds.map((id) => [id, cap("write", identity)]));
  const { results } = await db
    .prepare(`SELECT server_id, MAX(access = 'write') AS w FROM (${USER_GRANTS}) WHERE terminal_id = 0 GROUP BY server_id LIMIT ?2`)
    .bind(identity.userId, LIST_MAX_ROWS)
    .all<{ server_id: string; w: number }>();
  return new Map(results.map((r) => [r.server_id, cap(r.w ? "write" : "read", identity)]));
}
