/**
 * The gate every API request passes after the public routes: it resolves the caller
 * (caller.ts) and decides what that caller may reach.
 *
 * - Admins (the API key, its browser session, an admin user's token) reach every route.
 * - Users reach only `GET /api/v1/terminals/` (their servers) and the per-server mount
 *   `/api/v1/terminals/{server_id}/{path}`; every other route answers 403 ADMIN_ONLY.
 * - On the per-server mount, every caller goes through the terminals proxy's checks in the
 *   contract's order (proxy-checks.ts): unknown 404, disabled 403, denied 403, unreachable 503,
 *   invalid path 400, and a `read` grant asking for a change 403. The request then continues
 *   with the sanitised (decoded) path in place of the one sent — to an agent server's routes, or
 *   (`answer`) to a URL server upstream (url-servers.ts).
 */
import { ApiError } from "../shared/errors.ts";
import { authenticate, bearerToken } from "./auth.ts";
import { accessConfigFor, ADMIN_KEY_IDENTITY, identifyAccess, identifyBearer } from "./caller.ts";
import type { Env } from "./env.ts";
import type { Identity } from "./identities.ts";
import { checkProxyRequest, refusalResponse, type Access } from "./proxy-checks.ts";
import { proxyLookups } from "./server-access.ts";
import { proxyToUrlServer, urlServerUpstream } from "./url-servers.ts";

const SERVER_MOUNT_RE = /^\/api\/v1\/terminals\/([^/]+)\/(.*)$/;

/** True for paths under `/api/v1/terminals/{server_id}/`. */
export function isServerMountPath(pathname: string): boolean {
  return SERVER_MOUNT_RE.test(pathname);
}

/**
 * A public route (`health`, `api/config`, `openapi.json`) under a server's mount, called without
 * credentials: the server must exist, be enabled and reachable and the path be valid (the
 * proxy's checks; the route itself is public, or authenticates its WebSocket's first message,
 * so no grant is asked for); a URL server is never proxied without credentials (401).
 * Answers the refusal, or null to go on.
 */
export async function gateAnonymous(request: Request, env: Env): Promise<Response | null> {
  const mount = SERVER_MOUNT_RE.exec(new URL(request.url).pathname);
  if (!mount) return null;
  let serverId: string;
  try {
    serverId = decodeURIComponent(mount[1]!);
  } catch {
    serverId = "";
  }
  const lookups = { ...proxyLookups(env, ANONYMOUS), access: async () => "write" as const };
  const checked = await checkProxyRequest(lookups, serverId, mount[2]!, request.method);
  if (!checked.ok) return refusalResponse(checked);
  if (checked.server.kind === "url") return Response.json({ error: "Not authenticated", code: "UNAUTHORIZED" }, { status: 401 });
  return null;
}

/** Stands for "no caller" in lookups that take one (never granted anything). */
const ANONYMOUS: Identity = Object.freeze({ userId: "", role: "user", tokenId: null, readOnly: true });

/** The caller of a request, or null: a bearer token decides alone; else a session cookie; else Access. */
export async function identifyRequest(request: Request, env: Env): Promise<Identity | null> {
  const bearer = bearerToken(request);
  if (bearer !== null) return identifyBearer(env.DB, bearer, env.EDGETTY_API_KEY);
  if (await authenticate(request, env.EDGETTY_API_KEY)) return ADMIN_KEY_IDENTITY;
  return identifyAccess(env.DB, request, accessConfigFor(env));
}

/** What the gate decided: go on (possibly with a rewritten request), or answer now. */
export type GateResult =
  | { pass: true; request: Request | null; proxied: ProxiedRequest | null; answer?: () => Promise<Response> }
  | { pass: false; response: Response };

/** A request that passed the proxy's checks: the server, the sanitised path and the caller's access. */
export interface ProxiedRequest {
  serverId: string;
  path: string;
  access: Access;
}

/**
 * Gates an authenticated `caller`. On the per-server mount, `request` is replaced (the `request`
 * of the result) when sanitising changed its path.
 */
export async function gateRequest(request: Request, env: Env, caller: Identity): Promise<GateResult> {
  const url = new URL(request.url);
  const mount = SERVER_MOUNT_RE.exec(url.pathname);
  if (mount) {
    let serverId: string;
    try {
      serverId = decodeURIComponent(mount[1]!);
    } catch {
      serverId = "";
    }
    const checked = await checkProxyRequest(proxyLookups(env, caller), serverId, mount[2]!, request.method);
    if (!checked.ok) return { pass: false, response: refusalResponse(checked) };
    if (checked.server.kind === "url") {
      const upstream = await urlServerUpstream(env, serverId);
      if (!upstream) return { pass: false, response: Response.json({ error: "Terminal server URL not configured", code: "SERVER_UNREACHABLE" }, { status: 503 }) };
      const proxied = { serverId, path: checked.path, access: checked.access };
      return { pass: true, request: null, proxied, answer: () => proxyToUrlServer(request, upstream, checked.path, caller.userId) };
    }
    const proxied = { serverId, path: checked.path, access: checked.access };
    const clean = `/api/v1/terminals/${serverId}/${checked.path}`;
    if (clean === url.pathname) return { pass: true, request: null, proxied };
    const rewritten = new URL(clean + url.search, url.origin);
    return { pass: true, request: new Request(rewritten, request), proxied };
  }
  if (caller.role === "admin") return { pass: true, request: null, proxied: null };
  if (request.method === "GET" && (url.pathname === "/api/v1/terminals" || url.pathname === "/api/v1/terminals/")) return { pass: true, request: null, proxied: null };
  throw new ApiError(403, "ADMIN_ONLY", "This route is for admins; users reach their servers under /api/v1/terminals/");
}
