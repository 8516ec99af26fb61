/**
 * Which server a request addresses: the default server for the top-level routes, or the one
 * named in `/api/v1/terminals/{server_id}/…`. Every server-scoped route is mounted twice, once
 * per form, by `mountBoth`; the handler is the same.
 */
import type { IRequest, RouterType } from "itty-router";
import { ApiError } from "../shared/errors.ts";
import { isServerId } from "../shared/validation.ts";
import type { Config, Env } from "./env.ts";
import type { Family } from "./errors.ts";
import { getServer } from "./registry.ts";

export const SCOPE_PREFIX = "/api/v1/terminals/:server";

/** An error of the Open WebUI terminals family (it wraps every server-scoped route). */
export class ScopeError extends ApiError {
  readonly family: Family = "terminals";
}

export interface Scope {
  serverId: string;
  /** The path prefix clients use for this server ("" for the default server). */
  base: string;
}

export async function resolveScope(request: IRequest, env: Env, config: Config): Promise<Scope> {
  const named = request.params["server"];
  if (named === undefined) return { serverId: config.defaultServer, base: "" };
  const serverId = decodeURIComponent(named);
  if (!isServerId(serverId)) throw new ScopeError(400, "INVALID_SERVER_ID", "Invalid server id");
  if (!(await getServer(env.DB, serverId))) throw new ScopeError(404, "SERVER_NOT_FOUND", "Terminal server not found");
  return { serverId, base: `/api/v1/terminals/${serverId}` };
}

type Method = "get" | "post" | "put" | "delete" | "all";
type Handler = (request: IRequest, env: Env, ctx: ExecutionContext) => unknown;

/** Mounts a server-scoped route at the top level and under the per-server prefix. */
export function mountBoth(router: RouterType<IRequest, [Env, ExecutionContext]>, method: Method, path: string, handler: Handler): void {
  router[method](path, handler);
  router[method](SCOPE_PREFIX + path, handler);
}
