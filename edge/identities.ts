/**
 * Users, groups, memberships and per-user API tokens in D1 (schema:
 * edge/migrations/0003_identities.sql), and who a bearer token is. Grants, and what access a user
 * has to a server or one of its terminals, are in identity-grants.ts. Every list and table is bounded.
 */
import { ApiError } from "../shared/errors.ts";
import { jsonIntegerIn } from "../shared/validation.ts";
import { apiTokenId, apiTokenMatches, generateApiToken } from "./api-tokens.ts";
import { TOKEN_SCOPES, type GrantRecord, type GroupRecord, type Role, type TokenRecord, type TokenScope, type UserRecord } from "../shared/admin.ts";

// The records' wire shapes live in shared/admin.ts (the typed client reads them too).
export { TOKEN_SCOPES, type GrantRecord, type GroupRecord, type Role, type TokenRecord, type TokenScope, type UserRecord };

/** Most users one registry holds. */
export const MAX_USERS = 10_000;
/** Most groups one registry holds. */
export const MAX_GROUPS = 1_000;
/** Most groups one user belongs to. */
export const MAX_GROUPS_PER_USER = 100;
/** Most live tokens one user holds. */
export const MAX_TOKENS_PER_USER = 50;
/** Longest token lifetime, in seconds (one year); tokens always expire. */
export const TOKEN_TTL_MAX_S = 366 * 24 * 60 * 60;
/** Lifetime of a token created without one, in seconds (90 days). */
export const TOKEN_TTL_DEFAULT_S = 90 * 24 * 60 * 60;
/** How stale `last_used_at` may get before a request writes it again, in ms (saves D1 writes). */
export const LAST_USED_RESOLUTION_MS = 60_000;
/** Longest display name, in characters. */
export const NAME_MAX_CHARS = 200;
/** Rows a list answers at most. */
export const LIST_MAX_ROWS = 1_000;

const PRINCIPAL_ID_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const EMAIL_RE = /^[^\s@]{1,64}@[^\s@]{1,190}$/;

/** True for user and group ids: lower-case letters, digits, `.`, `_`, `-`; 1-63 characters. */
export function isPrincipalId(id: unknown): id is string {
  return typeof id === "string" && PRINCIPAL_ID_RE.test(id);
}

/** The one terminal a share link (share-links.ts) opens, read-only, until `expiresAt` (epoch ms). */
export interface ShareScope {
  id: string;
  serverId: string;
  terminalId: number;
  expiresAt: number;
}

/**
 * The caller behind a credential. `tokenId` is null for the admin key and Access identities.
 * `share` is set for a share link's bearer: then `userId` is `share:<id>`, the role `user`,
 * `readOnly` true, and the caller reaches that one terminal's read routes and nothing else.
 */
export interface Identity {
  userId: string;
  role: Role;
  tokenId: string | null;
  readOnly: boolean;
  share?: ShareScope;
  /** When the credential stops working (epoch ms): set for per-user tokens, absent otherwise. */
  expiresAt?: number;
}

type UserRow = Omit<UserRecord, "disabled"> & { disabled: number };

function toUser(row: UserRow): UserRecord {
  return { ...row, disabled: row.disabled !== 0 };
}

function name(value: unknown, fallback: string): string {
  if (value === undefined || value === null || value === "") return fallback;
  if (typeof value !== "string" || value.length > NAME_MAX_CHARS) throw new ApiError(400, "INVALID_PARAMETERS", `name must be a string of at most ${NAME_MAX_CHARS} characters`);
  return value;
}

/** `id` as a user or group id; 400 INVALID_PARAMETERS naming `what` otherwise. */
export function requireId(id: unknown, what: string): string {
  if (!isPrincipalId(id)) throw new ApiError(400, "INVALID_PARAMETERS", `${what} id must match [a-z0-9][a-z0-9._-]{0,62}`);
  return id;
}

function role(value: unknown, fallback: Role): Role {
  if (value === undefined) return fallback;
  if (value !== "admin" && value !== "user") throw new ApiError(400, "INVALID_PARAMETERS", "role must be admin or user");
  return value;
}

/** The `n` column of a `SELECT COUNT(*) AS n` query (0 when there is no row). */
export async function countRows(db: D1Database, sql: string, ...args: unknown[]): Promise<number> {
  return (await db.prepare(sql).bind(...args).first<{ n: number }>())?.n ?? 0;
}

// ── users ──────────────────────────────────────────────────────────────────────────────────

/** Creates a user; 409 USER_EXISTS when the id or email is taken. */
export async function createUser(db: D1Database, input: { id?: unknown; name?: unknown; email?: unknown; role?: unknown }, now = Date.now()): Promise<UserRecord> {
  const id = requireId(input.id, "user");
  let email: string | null = null;
  if (input.email !== undefined && input.email !== null && input.email !== "") {
    if (typeof input.email !== "string" || !EMAIL_RE.test(input.email)) throw new ApiError(400, "INVALID_PARAMETERS", "email must look like name@domain");
    email = input.email.toLowerCase();
  }
  const user = { id, name: name(input.name, id), email, role: role(input.role, "user") };
  if ((await countRows(db, "SELECT COUNT(*) AS n FROM users")) >= MAX_USERS) throw new ApiError(429, "TOO_MANY_USERS", `at most ${MAX_USERS} users`);
  try {
    await db.prepare("INSERT INTO users (id, name, email, role, disabled, created_at) VALUES (?, ?, ?, ?, 0, ?)").bind(user.id, user.name, user.email, user.role, now).run();
  } catch (error) {
    if (String(error).includes("UNIQUE")) throw new ApiError(409, "USER_EXISTS", "A user with this id or email exists");
    throw error;
  }
  return { ...user, disabled: false, created_at: now };
}

export async function getUser(db: D1Database, id: string): Promise<UserRecord | null> {
  if (!isPrincipalId(id)) return null;
  const row = await db.prepare("SELECT id, name, email, role, disabled, created_at FROM users WHERE id = ?").bind(id).first<UserRow>();
  return row ? toUser(row) : null;
}

export async function listUsers(db: D1Database): Promise<UserRecord[]> {
  const { results } = await db.prepare("SELECT id, name, email, role, disabled, created_at FROM users ORDER BY id LIMIT ?").bind(LIST_MAX_ROWS).all<UserRow>();
  return results.map(toUser);
}

/** Changes a user's name, role or disabled flag; a disabled user's tokens stop working at once. */
export async function updateUser(db: D1Database, id: string, patch: { name?: unknown; role?: unknown; disabled?: unknown }): Promise<UserRecord> {
  const user = await getUser(db, id);
  if (!user) throw new ApiError(404, "USER_NOT_FOUND", `No user '${id}'`);
  if (patch.disabled !== undefined && typeof patch.disabled !== "boolean") throw new ApiError(400, "INVALID_PARAMETERS", "disabled must be true or false");
  const next = { name: name(patch.name, user.name), role: role(patch.role, user.role), disabled: (patch.disabled as boolean | undefined) ?? user.disabled };
  await db.prepare("UPDATE users SET name = ?, role = ?, disabled = ? WHERE id = ?").bind(next.name, next.role, next.disabled ? 1 : 0, id).run();
  return { ...user, ...next };
}

/** Deletes a user with their memberships, tokens and grants. */
export async function deleteUser(db: D1Database, id: string): Promise<boolean> {
  if (!isPrincipalId(id)) return false;
  const [, result] = await db.batch([
    db.prepare("DELETE FROM grants WHERE principal_type = 'user' AND principal_id = ?").bind(id),
    db.prepare("DELETE FROM users WHERE id = ?").bind(id),
  ]);
  return (result!.meta.changes ?? 0) > 0;
}

/** The enabled user with this email (as Cloudflare Access asserts it), or null. */
export async function userByEmail(db: D1Database, email: string): Promise<UserRecord | null> {
  const row = await db.prepare("SELECT id, name, email, role, disabled, created_at FROM users WHERE email = ? AND disabled = 0").bind(email.toLowerCase()).first<UserRow>();
  return row ? toUser(row) : null;
}

// ── groups ─────────────────────────────────────────────────────────────────────────────────

export async function createGroup(db: D1Database, input: { id?: unknown; name?: unknown }, now = Date.now()): Promise<GroupRecord> {
  const id = requireId(input.id, "group");
  const groupName = name(input.name, id);
  if ((await countRows(db, "SELECT COUNT(*) AS n FROM groups")) >= MAX_GROUPS) throw new ApiError(429, "TOO_MANY_GROUPS", `at most ${MAX_GROUPS} groups`);
  try {
    await db.prepare("INSERT INTO groups (id, name, created_at) VALUES (?, ?, ?)").bind(id, groupName, now).run();
  } catch (error) {
    if (String(error).includes("UNIQUE")) throw new ApiError(409, "GROUP_EXISTS", `Group '${id}' exists`);
    throw error;
  }
  return { id, name: groupName, created_at: now, members: [] };
}

export async function listGroups(db: D1Database): Promise<GroupRecord[]> {
  const [groups, members] = await db.batch<Record<string, unknown>>([
    db.prepare("SELECT id, name, created_at FROM groups ORDER BY id LIMIT ?").bind(LIST_MAX_ROWS),
    db.prepare("SELECT group_id, user_id FROM memberships ORDER BY user_id LIMIT ?").bind(LIST_MAX_ROWS * 10),
  ]);
  const byGroup = new Map<string, string[]>();
  for (const m of members!.results as { group_id: string; user_id: string }[]) {
    const list = byGroup.get(m.group_id) ?? [];
    list.push(m.user_id);
    byGroup.set(m.group_id, list);
  }
  return (groups!.results as Omit<GroupRecord, "members">[]).map((g) => ({ ...g, members: byGroup.get(g.id) ?? [] }));
}

/** Deletes a group with its memberships and grants. */
export async function deleteGroup(db: D1Database, id: string): Promise<boolean> {
  if (!isPrincipalId(id)) return false;
  const [, result] = await db.batch([
    db.prepare("DELETE FROM grants WHERE principal_type = 'group' AND principal_id = ?").bind(id),
    db.prepare("DELETE FROM groups WHERE id = ?").bind(id),
  ]);
  return (result!.meta.changes ?? 0) > 0;
}

/** Adds a user to a group (idempotent); 404 when either is unknown. */
export async function addMember(db: D1Database, groupId: string, userId: string): Promise<void> {
  if (!(await getUser(db, userId))) throw new ApiError(404, "USER_NOT_FOUND", `No user '${userId}'`);
  if (!isPrincipalId(groupId) || !(await db.prepare("SELECT 1 AS x FROM groups WHERE id = ?").bind(groupId).first())) {
    throw new ApiError(404, "GROUP_NOT_FOUND", `No group '${groupId}'`);
  }
  if ((await countRows(db, "SELECT COUNT(*) AS n FROM memberships WHERE user_id = ?", userId)) >= MAX_GROUPS_PER_USER) {
    throw new ApiError(429, "TOO_MANY_GROUPS", `a user belongs to at most ${MAX_GROUPS_PER_USER} groups`);
  }
  await db.prepare("INSERT OR IGNORE INTO memberships (group_id, user_id) VALUES (?, ?)").bind(groupId, userId).run();
}

export async function removeMember(db: D1Database, groupId: string, userId: string): Promise<boolean> {
  const result = await db.prepare("DELETE FROM memberships WHERE group_id = ? AND user_id = ?").bind(groupId, userId).run();
  return (result.meta.changes ?? 0) > 0;
}

// ── tokens ─────────────────────────────────────────────────────────────────────────────────

function scopes(value: unknown): TokenScope[] {
  if (value === undefined || value === null) return [];
  const list = typeof value === "string" ? value.split(/[\s,]+/).filter(Boolean) : value;
  if (!Array.isArray(list) || !list.every((s): s is TokenScope => (TOKEN_SCOPES as readonly unknown[]).includes(s))) {
    throw new ApiError(400, "INVALID_PARAMETERS", `scopes must be a list of: ${TOKEN_SCOPES.join(", ")}`);
  }
  return [...new Set(list)];
}

/**
 * Creates a token for a user: its role is at most the user's, its lifetime `ttl_s` seconds
 * (default {@link TOKEN_TTL_DEFAULT_S}, at most {@link TOKEN_TTL_MAX_S}). The answer holds the
 * token itself, shown this once.
 */
export async function createToken(
  db: D1Database,
  userId: string,
  input: { name?: unknown; role?: unknown; scopes?: unknown; ttl_s?: unknown },
  now = Date.now(),
): Promise<TokenRecord & { token: string }> {
  const user = await getUser(db, userId);
  if (!user) throw new ApiError(404, "USER_NOT_FOUND", `No user '${userId}'`);
  const tokenRole = role(input.role, user.role);
  if (tokenRole === "admin" && user.role !== "admin") throw new ApiError(400, "INVALID_PARAMETERS", "a user's token cannot be an admin token");
  const ttl = input.ttl_s === undefined ? TOKEN_TTL_DEFAULT_S : jsonIntegerIn(input.ttl_s, 1, TOKEN_TTL_MAX_S);
  if (ttl === null) throw new ApiError(400, "INVALID_PARAMETERS", `ttl_s must be an integer from 1 to ${TOKEN_TTL_MAX_S} seconds (${TOKEN_TTL_MAX_S / 86_400} days)`);
  const tokenScopes = scopes(input.scopes);
  const tokenName = name(input.name, "");
  await db.prepare("DELETE FROM api_tokens WHERE user_id = ? AND expires_at <= ?").bind(userId, now).run();
  if ((await countRows(db, "SELECT COUNT(*) AS n FROM api_tokens WHERE user_id = ?", userId)) >= MAX_TOKENS_PER_USER) {
    throw new ApiError(429, "TOO_MANY_TOKENS", `a user holds at most ${MAX_TOKENS_PER_USER} tokens`);
  }
  const fresh = await generateApiToken();
  const expires = now + ttl * 1000;
  await db
    .prepare("INSERT INTO api_tokens (id, hash, user_id, name, role, scopes, expires_at, last_used_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)")
    .bind(fresh.id, fresh.hash, userId, tokenName, tokenRole, tokenScopes.join(" "), expires, now)
    .run();
  return { id: fresh.id, user_id: userId, name: tokenName, role: tokenRole, scopes: tokenScopes, expires_at: expires, last_used_at: null, created_at: now, token: fresh.token };
}

type TokenRow = Omit<TokenRecord, "scopes"> & { scopes: string };

function toToken(row: TokenRow): TokenRecord {
  return { ...row, scopes: row.scopes.split(" ").filter(Boolean) as TokenScope[] };
}

/** Tokens (all, or one user's), newest first, without secrets. */
export async function listTokens(db: D1Database, userId?: string): Promise<TokenRecord[]> {
  const cols = "id, user_id, name, role, scopes, expires_at, last_used_at, created_at";
  const stmt = userId
    ? db.prepare(`SELECT ${cols} FROM api_tokens WHERE user_id = ? ORDER BY created_at DESC LIMIT ?`).bind(userId, LIST_MAX_ROWS)
    : db.prepare(`SELECT ${cols} FROM api_tokens ORDER BY created_at DESC LIMIT ?`).bind(LIST_MAX_ROWS);
  return (await stmt.all<TokenRow>()).results.map(toToken);
}

/** Revokes a token: the next request with it is refused. */
export async function revokeToken(db: D1Database, id: string): Promise<boolean> {
  const result = await db.prepare("DELETE FROM api_tokens WHERE id = ?").bind(id).run();
  return (result.meta.changes ?? 0) > 0;
}

/**
 * The identity behind a per-user API token, or null when it is malformed, unknown, revoked,
 * expired or its user is disabled. Checked against D1 on every call, so revocation and expiry
 * take effect on the next request.
 */
export async function identityForToken(db: D1Database, token: string, now = Date.now()): Promise<Identity | null> {
  const id = apiTokenId(token);
  if (!id) return null;
  const row = await db
    .prepare(
      `SELECT t.hash, t.user_id, t.role, t.scopes, t.expires_at, t.last_used_at, u.role AS user_role, u.disabled
       FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?`,
    )
    .bind(id)
    .first<{ hash: string; user_id: string; role: Role; scopes: string; expires_at: number; last_used_at: number | null; user_role: Role; disabled: number }>();
  // Hash even for unknown ids, so timing does not tell which ids exist.
  const matches = await apiTokenMatches(token, row?.hash ?? "");
  if (!row || !matches || row.expires_at <= now || row.disabled !== 0) return null;
  if (row.last_used_at === null || now - row.last_used_at >= LAST_USED_RESOLUTION_MS) {
    await db.prepare("UPDATE api_tokens SET last_used_at = ? WHERE id = ?").bind(now, id).run();
  }
  return tokenIdentity(id, row);
}

function tokenIdentity(id: string, row: { user_id: string; role: Role; scopes: string; expires_at: number; user_role: Role }): Identity {
  // A token never outranks its user, even if the user was demoted after it was made.
  const effective: Role = row.role === "admin" && row.user_role === "admin" ? "admin" : "user";
  return { userId: row.user_id, role: effective, tokenId: id, readOnly: row.scopes.split(" ").includes("read-only"), expiresAt: row.expires_at };
}

/**
 * The identity of the live token with public id `id` (not revoked, unexpired, its user enabled),
 * or null: for re-checking what a socket opened with it may still do (live-sockets.ts). Never
 * authenticates a request: that takes the whole token ({@link identityForToken}).
 */
export async function identityForTokenId(db: D1Database, id: string, now = Date.now()): Promise<Identity | null> {
  const row = await db
    .prepare(
      `SELECT t.user_id, t.role, t.scopes, t.expires_at, u.role AS user_role
       FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ? AND t.expires_at > ? AND u.disabled = 0`,
    )
    .bind(id, now)
    .first<{ user_id: string; role: Role; scopes: string; expires_at: number; user_role: Role }>();
  return row ? tokenIdentity(id, row) : null;
}
