/**
 * Which servers a caller may use, and the registry-backed lookups of the terminals proxy's
 * checks (proxy-checks.ts): a server's `enabled` flag (migration 0004), the caller's grant
 * (identity-grants.ts) and whether its agent is connected (the HostDO).
 */
import { ApiError } from "../shared/errors.ts";
import { isServerId } from "../shared/validation.ts";
import { hostStub } from "./addresses.ts";
import type { Env } from "./env.ts";
import { type Identity } from "./identities.ts";
import { grantedServerIds, grantsOn, type ServerGrants } from "./identity-grants.ts";
import type { ProxyLookups, ProxyServer } from "./proxy-checks.ts";

/** A server as the proxy's checks see it. */
export interface AccessServer extends ProxyServer {
  name: string;
  url: string;
  /** `agent`: reached over its agent's link; `url`: an Open Terminal server at `url` (url-servers.ts). */
  kind: "agent" | "url";
}

/** Most servers one list answers. */
export const SERVER_LIST_MAX = 1000;

type Row = { id: string; name: string; url: string; enabled: number; kind: string };
const toServer = (r: Row): AccessServer => ({ id: r.id, name: r.name, url: r.url, enabled: r.enabled !== 0, kind: r.kind === "url" ? "url" : "agent" });

/** One server with its enabled flag, or null. */
export async function getAccessServer(db: D1Database, id: string): Promise<AccessServer | null> {
  if (!isServerId(id)) return null;
  const row = await db.prepare("SELECT id, name, url, enabled, kind FROM servers WHERE id = ?").bind(id).first<Row>();
  return row ? toServer(row) : null;
}

/** Enables or disables a server; 404 when unknown. */
export async function setServerEnabled(db: D1Database, id: string, enabled: boolean): Promise<AccessServer> {
  const result = await db.prepare("UPDATE servers SET enabled = ? WHERE id = ?").bind(enabled ? 1 : 0, id).run();
  if ((result.meta.changes ?? 0) === 0) throw new ApiError(404, "SERVER_NOT_FOUND", `No server '${id}'`);
  return (await getAccessServer(db, id))!;
}

/**
 * The servers `caller` may use, in id order: every server for admins, else the enabled ones
 * the caller or one of their groups holds a grant on.
 */
export async function serversFor(db: D1Database, caller: Identity): Promise<AccessServer[]> {
  const { results } = await db.prepare("SELECT id, name, url, enabled, kind FROM servers ORDER BY id LIMIT ?").bind(SERVER_LIST_MAX).all<Row>();
  const servers = results.map(toServer);
  if (caller.role === "admin") return servers;
  const granted = await grantedServerIds(db, caller);
  return servers.filter((s) => s.enabled && granted.has(s.id));
}

/** The proxy's lookups for `caller`, backed by D1 and the server's HostDO. */
export function proxyLookups(env: Env, caller: Identity): ProxyLookups<AccessServer> {
  // One D1 read answers both the server-wide and the per-terminal step.
  let grants: Promise<ServerGrants | null> | null = null;
  const grantsOf = (server: AccessServer) => (grants ??= grantsOn(env.DB, caller, server.id));
  return {
    server: (id) => getAccessServer(env.DB, id),
    access: async (server) => (await grantsOf(server))?.server ?? null,
    // A URL server has no terminals of edgetty's: only a server-wide grant reaches it.
    terminals: async (server) => (server.kind === "url" ? new Map() : ((await grantsOf(server))?.terminals ?? new Map())),
    // A URL server is reachable when it has a URL (Open WebUI's "URL not configured" check); an agent server while its agent is connected.
    reachable: async (server) => (server.kind === "url" ? server.url !== "" : (await hostStub(env, server.id).status()).online),
  };
}
