/**
 * Which server a request addresses, and the two places server-scoped routes are mounted: at the
 * top level (the default server) and under `/api/v1/terminals/{server_id}/` (that server). This
 * file is the one place the mounts are declared; families register each route on them through
 * `ApiFamily.route` (family.ts).
 */
import { isServerId } from "../shared/validation.ts";
import type { Config, Env } from "./env.ts";
import { TerminalsError } from "./errors.ts";
import { getServer } from "./registry.ts";

/** A mount of the server-scoped families: its path prefix (an itty pattern) and its name. */
export interface Mount {
  name: "server" | "root";
  prefix: string;
}

/** `/api/v1/terminals/{server_id}/…`: the named server. */
export const SERVER_MOUNT: Mount = { name: "server", prefix: "/api/v1/terminals/:server" };
/** `/…`: the default server. */
export const ROOT_MOUNT: Mount = { name: "root", prefix: "" };
/**
 * Both mounts, the server one first: its routes are the more specific, so a catch-all at the
 * top level (`/api/*`) never swallows a path under a server's prefix.
 */
export const MOUNTS: readonly Mount[] = [SERVER_MOUNT, ROOT_MOUNT];

export interface Scope {
  serverId: string;
  /** The path prefix clients use for this server ("" for the default server). */
  base: string;
}

/**
 * The server a request addresses on `mount`. An invalid or unknown server is the terminals
 * family's 400/404 (`TerminalsError`), whichever family the rest of the path belongs to.
 */
export async function resolveScope(mount: Mount, params: Record<string, string | undefined>, env: Env, config: Config): Promise<Scope> {
  if (mount.name === "root") return { serverId: config.defaultServer, base: "" };
  let serverId: string;
  try {
    serverId = decodeURIComponent(params["server"] ?? "");
  } catch {
    serverId = "";
  }
  if (!isServerId(serverId)) throw new TerminalsError(400, "INVALID_SERVER_ID", "Invalid server id");
  if (!(await getServer(env.DB, serverId))) throw new TerminalsError(404, "SERVER_NOT_FOUND", "Terminal server not found");
  return { serverId, base: `/api/v1/terminals/${serverId}` };
}
