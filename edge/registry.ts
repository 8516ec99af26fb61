/**
 * The registry of servers (hosts running an agent) in D1: ids, names, public URLs and the
 * SHA-256 of each server's agent token. The schema lives in D1 migrations (edge/migrations/,
 * applied by `wrangler d1 migrations apply`, by `npm start` and by the edge tests' setup).
 */
import { ApiError } from "../shared/errors.ts";
import { isServerId } from "../shared/validation.ts";
import { safeEqual, sha256Hex } from "./auth.ts";

import type { ServerRecord } from "../shared/admin.ts";

/** A server of the registry, as the admin API answers it (shared/admin.ts). */
export type { ServerRecord };

/** Most servers one registry holds. */
export const MAX_SERVERS = 1000;

export async function listServers(db: D1Database): Promise<ServerRecord[]> {
  const { results } = await db
    .prepare("SELECT id, name, url, created_at FROM servers ORDER BY id LIMIT ?")
    .bind(MAX_SERVERS)
    .all<ServerRecord>();
  return results;
}

export async function getServer(db: D1Database, id: string): Promise<ServerRecord | null> {
  if (!isServerId(id)) return null;
  return db.prepare("SELECT id, name, url, created_at FROM servers WHERE id = ?").bind(id).first<ServerRecord>();
}

/** Creates or updates a server; the agent token is stored only as its digest. */
export async function putServer(
  db: D1Database,
  server: { id: string; name: string; url: string; token: string },
): Promise<ServerRecord> {
  if (!isServerId(server.id)) throw new ApiError(400, "INVALID_SERVER_ID", "server id must match [a-z0-9][a-z0-9-]{0,62}");
  const count = await db.prepare("SELECT COUNT(*) AS n FROM servers WHERE id != ?").bind(server.id).first<{ n: number }>();
  if ((count?.n ?? 0) >= MAX_SERVERS) throw new ApiError(429, "TOO_MANY_SERVERS", `at most ${MAX_SERVERS} servers`);
  const created = new Date().toISOString();
  await db
    .prepare(
      `INSERT INTO servers (id, name, url, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
       ON CONFLICT(id) DO UPDATE SET name = ?2, url = ?3, token_hash = ?4`,
    )
    .bind(server.id, server.name, server.url, await sha256Hex(server.token), created)
    .run();
  return (await getServer(db, server.id))!;
}

/** A share link deleted with its server: whose open sockets to close (share-links.ts closeShareSockets). */
export interface DeletedShare {
  id: string;
  terminal_id: number;
}

/**
 * Deletes a server with its grants and share links (one batch, so all or none): a host registered
 * later under the same id must not inherit who could reach the old one. Answers the share links
 * deleted (their open sockets are the caller's to close), or null when there was no such server.
 */
export async function deleteServer(db: D1Database, id: string): Promise<{ shares: DeletedShare[] } | null> {
  const [server, , shares] = await db.batch([
    db.prepare("DELETE FROM servers WHERE id = ?").bind(id),
    db.prepare("DELETE FROM grants WHERE server_id = ?").bind(id),
    db.prepare("DELETE FROM share_links WHERE server_id = ? RETURNING id, terminal_id").bind(id),
  ]);
  if ((server!.meta.changes ?? 0) === 0) return null;
  return { shares: shares!.results as DeletedShare[] };
}

/** True when `token` is the agent token of server `id`. */
export async function verifyAgentToken(db: D1Database, id: string, token: string): Promise<boolean> {
  if (!isServerId(id)) return false;
  const row = await db.prepare("SELECT token_hash FROM servers WHERE id = ?").bind(id).first<{ token_hash: string }>();
  // Compare against a digest even for unknown servers, so timing does not reveal which exist.
  return (await safeEqual(await sha256Hex(token), row?.token_hash ?? "")) && row !== null;
}
