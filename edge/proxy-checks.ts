/**
 * The order of checks of the terminals proxy (`/api/v1/terminals/{server_id}/{path}` and its
 * WebSocket), after reference/open-webui-terminals.md §2.3 Rev B: unknown server 404, disabled
 * 403, access denied 403, unreachable 503, invalid path 400 — each with its `{"error": …}` body —
 * then edgetty's own last step: the grant covers this request (a grant on one terminal reaches
 * only that terminal's routes, else 403 Access denied; a `read` grant asking for a route that
 * needs `write`, 403 Read-only access). Pure: the caller supplies the lookups, so each step is
 * testable on its own.
 */
import { sanitizeTerminalPath } from "../shared/terminal-path.ts";
import { parseTerminalId } from "../shared/validation.ts";
import type { Access } from "../shared/admin.ts";

/** A grant's level; `write` includes `read` (shared/admin.ts). */
export type { Access };

/** What the checks need to know of a server. */
export interface ProxyServer {
  id: string;
  enabled: boolean;
}

/** The lookups the checks run, in order; each is called only when the previous step passed. */
export interface ProxyLookups<S extends ProxyServer> {
  server(id: string): Promise<S | null>;
  /** The caller's access to the whole server: its grant, `write` for admins, null for none. */
  access(server: S): Promise<Access | null>;
  /**
   * The caller's grants on single terminals of the server (grants with a terminal id, a share
   * link's terminal); asked only when `access` is not `write`. Absent: none.
   */
  terminals?(server: S): Promise<ReadonlyMap<number, Access>>;
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
  /** The caller's access for this request (to the terminal it addresses, or the server). */
  access: Access;
  /**
   * The terminals a caller without a server-wide grant may reach (its terminal grants); null
   * when the grant covers the whole server. A session list is filtered to these.
   */
  terminals: ReadonlySet<number> | null;
  /** The caller's grant on the whole server, null for none (creating a terminal takes `write` here). */
  serverAccess: Access | null;
}

/** Body of a refusal, as Open WebUI answers (`error`), plus edgetty's stable `code`. */
export function refusalResponse(refusal: ProxyRefusal): Response {
  return Response.json({ error: refusal.error, code: refusal.code }, { status: refusal.status });
}

/**
 * The refusals of the contract's checks (reference §2.4): HTTP status, WebSocket close code,
 * stable code and `{"error"}` text. One table, so a socket closed later for the same reason
 * (live-sockets.ts, after a grant or server change) says exactly what its HTTP refusal would.
 */
export const ProxyRefusals = {
  SERVER_NOT_FOUND: refusal(404, 4004, "SERVER_NOT_FOUND", "Terminal server not found"),
  SERVER_DISABLED: refusal(403, 4003, "SERVER_DISABLED", "Terminal server disabled"),
  ACCESS_DENIED: refusal(403, 4003, "ACCESS_DENIED", "Access denied"),
  SERVER_UNREACHABLE: refusal(503, 4003, "SERVER_UNREACHABLE", "Terminal server not reachable"),
  INVALID_PATH: refusal(400, 4400, "INVALID_PATH", "Invalid path"),
  READ_ONLY: refusal(403, 4003, "READ_ONLY", "Read-only access"),
} as const;

/** A refusal's WebSocket close code and reason. */
export function refusalClose(r: ProxyRefusal): { code: number; reason: string } {
  return { code: r.closeCode, reason: r.error };
}

function refusal(status: ProxyRefusal["status"], closeCode: ProxyRefusal["closeCode"], code: string, error: string): ProxyRefusal {
  return { ok: false, status, closeCode, code, error };
}

/** Runs the checks in the contract's order, one lookup per step. */
/** Runs the checks in the contract's order, one lookup per step. `search` is the query (`?…` or ""). */
export async function checkProxyRequest<S extends ProxyServer>(
  lookups: ProxyLookups<S>,
  serverId: string,
  rawPath: string,
  method: string,
  search = "",
  /** The terminal the request reaches when the edge has resolved it itself (an `/api/terminals` socket's session); never from the client. */
  resolved?: number,
): Promise<ProxyPass<S> | ProxyRefusal> {
  const server = await lookups.server(serverId);
  if (!server) return ProxyRefusals.SERVER_NOT_FOUND;
  if (!server.enabled) return ProxyRefusals.SERVER_DISABLED;
  const whole = await lookups.access(server);
  const terminals = whole !== "write" && lookups.terminals ? await lookups.terminals(server) : NO_TERMINALS;
  if (!whole && terminals.size === 0) return ProxyRefusals.ACCESS_DENIED;
  if (!(await lookups.reachable(server))) return ProxyRefusals.SERVER_UNREACHABLE;
  const path = sanitizeTerminalPath(rawPath);
  if (path === null) return ProxyRefusals.INVALID_PATH;
  const terminal = resolved ?? addressedTerminal(path, search);
  const one = terminal === null ? null : (terminals.get(terminal) ?? null);
  let access: Access | null = whole === "write" || one === "write" ? "write" : (whole ?? one);
  // Without a server-wide grant, the session list is shown (filtered to the granted terminals).
  if (access === null && LISTING_RE.test(path) && SAFE_METHODS.has(method.toUpperCase())) access = "read";
  if (!access) return ProxyRefusals.ACCESS_DENIED;
  if (requiredAccess(method, path) === "write" && access !== "write") return ProxyRefusals.READ_ONLY;
  return { ok: true, server, path, access, terminals: whole ? null : new Set(terminals.keys()), serverAccess: whole ?? null };
}

const NO_TERMINALS: ReadonlyMap<number, Access> = new Map();
const LISTING_RE = /^api\/v1\/terminal\/sessions\/?$/;
/** Where the session API's routes take their terminal from the query: the route, and its default when the query has none. */
const QUERY_TERMINAL_ROUTES: Readonly<Record<string, number | null>> = { ws: null, raw: 1, screenshot: null, history: null, share: null };

/**
 * The terminal a session API path addresses, as its route reads it (a path segment first, else
 * `terminal_id` in the query; `raw` defaults to terminal 1), or null for routes that address no
 * single terminal (or an invalid id: the route then answers 400 to those who may call it).
 */
export function addressedTerminal(path: string, search = ""): number | null {
  const m = /^api\/v1\/terminal\/(?:(?:history|share)\/)?(\d{1,5})(?:\/[0-9a-f]{1,32})?$/.exec(path);
  if (m) return parseTerminalId(m[1]);
  const q = /^api\/v1\/terminal\/(ws|raw|screenshot|history|share)$/.exec(path);
  if (!q) return null;
  const given = new URLSearchParams(search).get("terminal_id");
  if (given === null || given === "") return QUERY_TERMINAL_ROUTES[q[1]!] ?? null;
  return parseTerminalId(given);
}

// Routes a `read` grant may call with GET/HEAD/OPTIONS: listing and looking (a WebSocket attach
// is then read-only), never files, ports, system facts, execute, creation or input. Everything
// not listed needs `write` (fail closed). The families declare the same levels per route
// (family.ts); test/edge/route-access.test.ts checks both against one table.
const READ_ROUTES: RegExp[] = [
  /^health$/,
  /^api\/config$/,
  /^openapi\.json$/,
  /^docs$/,
  /^api\/v1\/terminal\/sessions\/?$/,
  /^api\/v1\/terminal\/history(\/\d{1,5})?$/,
  /^api\/v1\/terminal\/screenshot$/,
  /^api\/v1\/terminal\/raw$/,
  /^api\/v1\/terminal\/ws$/,
  /^api\/terminals\/?$/,
  /^api\/terminals\/[^/]+$/,
];

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * The access a proxied request needs: `read` only for safe methods on the listing/viewing
 * routes above; `write` for everything else (create, delete, resize, input, execute, files,
 * share links).
 */
export function requiredAccess(method: string, path: string): Access {
  if (!SAFE_METHODS.has(method.toUpperCase())) return "write";
  return READ_ROUTES.some((re) => re.test(path)) ? "read" : "write";
}
