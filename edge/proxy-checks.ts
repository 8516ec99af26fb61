/**
 * The order of checks of the terminals proxy (`/api/v1/terminals/{server_id}/{path}` and its
 * WebSocket), after reference/open-webui-terminals.md §2.3 Rev B: unknown server 404, disabled
 * 403, access denied 403, unreachable 503, invalid path 400 — each with its `{"error": …}` body —
 * then edgetty's own last step, a `read` grant asking for a route that needs `write` (403).
 * Pure: the caller supplies the lookups, so each step is testable on its own.
 */
import { sanitizeTerminalPath } from "../shared/terminal-path.ts";

/** A grant's level; `write` includes `read`. */
export type Access = "read" | "write";

/** What the checks need to know of a server. */
export interface ProxyServer {
  id: string;
  enabled: boolean;
}

/** The lookups the checks run, in order; each is called only when the previous step passed. */
export interface ProxyLookups<S extends ProxyServer> {
  server(id: string): Promise<S | null>;
  /** The caller's access to the server: its grant, `write` for admins, null for none. */
  access(server: S): Promise<Access | null>;
  /** True when the server can be reached now (agent connected, or a URL configured). */
  reachable(server: S): Promise<boolean>;
}

/** A refusal: its HTTP status, the WebSocket close code of §2.4 and the `{"error"}` text. */
export interface ProxyRefusal {
  ok: false;
  status: 400 | 403 | 404 | 503;
  closeCode: 4003 | 4004 | 4400;
  error: string;
  code: string;
}

export interface ProxyPass<S> {
  ok: true;
  server: S;
  /** The sanitised path, no leading `/`: what goes upstream. */
  path: string;
  access: Access;
}

/** Body of a refusal, as Open WebUI answers (`error`), plus edgetty's stable `code`. */
export function refusalResponse(refusal: ProxyRefusal): Response {
  return Response.json({ error: refusal.error, code: refusal.code }, { status: refusal.status });
}

function refuse(status: ProxyRefusal["status"], closeCode: ProxyRefusal["closeCode"], code: string, error: string): ProxyRefusal {
  return { ok: false, status, closeCode, code, error };
}

/** Runs the checks in the contract's order, one lookup per step. */
export async function checkProxyRequest<S extends ProxyServer>(
  lookups: ProxyLookups<S>,
  serverId: string,
  rawPath: string,
  method: string,
): Promise<ProxyPass<S> | ProxyRefusal> {
  const server = await lookups.server(serverId);
  if (!server) return refuse(404, 4004, "SERVER_NOT_FOUND", "Terminal server not found");
  if (!server.enabled) return refuse(403, 4003, "SERVER_DISABLED", "Terminal server disabled");
  const access = await lookups.access(server);
  if (!access) return refuse(403, 4003, "ACCESS_DENIED", "Access denied");
  if (!(await lookups.reachable(server))) return refuse(503, 4003, "SERVER_UNREACHABLE", "Terminal server not reachable");
  const path = sanitizeTerminalPath(rawPath);
  if (path === null) return refuse(400, 4400, "INVALID_PATH", "Invalid path");
  if (requiredAccess(method, path) === "write" && access !== "write") return refuse(403, 4003, "READ_ONLY", "Read-only access");
  return { ok: true, server, path, access };
}

// Routes a `read` grant may call with GET/HEAD/OPTIONS: listing and looking, never files,
// execute, creation or input. Everything not listed needs `write` (fail closed).
const READ_ROUTES: RegExp[] = [
  /^health$/,
  /^api\/config$/,
  /^openapi\.json$/,
  /^api\/v1\/terminal\/sessions\/?$/,
  /^api\/v1\/terminal\/history\/\d{1,5}$/,
  /^api\/v1\/terminal\/screenshot$/,
  /^api\/terminals\/?$/,
];

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * The access a proxied request needs: `read` only for safe methods on the listing/viewing
 * routes above; `write` for everything else (create, delete, resize, input, execute, files).
 */
export function requiredAccess(method: string, path: string): Access {
  if (!SAFE_METHODS.has(method.toUpperCase())) return "write";
  return READ_ROUTES.some((re) => re.test(path)) ? "read" : "write";
}
