/**
 * The gate every request under a server's mount (`/api/v1/terminals/{server_id}/{path}`) passes
 * before the API families run (index.ts): it identifies the caller (auth.ts) and runs the
 * terminals proxy's checks in the contract's order (proxy-checks.ts): unknown 404, disabled
 * 403, denied 403, unreachable 503, invalid path 400, and a `read` grant asking for a change
 * 403. The request then continues with the sanitised (decoded) path in place of the one sent —
 * to an agent server's routes, or (answered here) to a URL server upstream (url-servers.ts).
 * Every proxied request is audited before it is served.
 *
 * Off the mount the gate does nothing: each route's guard (family.ts) decides, and refuses a
 * user anything but the terminals list and their own browser session (403 ADMIN_ONLY).
 */
import { authenticate, sameOrigin, type Principal } from "./auth.ts";
import { AUDIT_DETAIL_MAX_CHARS, clientIp, ReadRepeats, recordAudit } from "./audit.ts";
import { actorOf } from "./caller.ts";
import type { Env } from "./env.ts";
import type { Identity } from "./identities.ts";
import { checkProxyRequest, refusalResponse, type Access } from "./proxy-checks.ts";
import { proxyLookups } from "./server-access.ts";
import { proxyToUrlServer, URL_SERVER_HOPS_HEADER, urlServerUpstream } from "./url-servers.ts";
import { isWebSocketUpgrade } from "./http.ts";
import { sanitizeTerminalPath } from "../shared/terminal-path.ts";
import { isProxySocketPath, routeProxySocket } from "./ws-proxy.ts";

const SERVER_MOUNT_RE = /^\/api\/v1\/terminals\/([^/]+)\/(.*)$/;

/** True for paths under `/api/v1/terminals/{server_id}/`. */
export function isServerMountPath(pathname: string): boolean {
  return SERVER_MOUNT_RE.test(pathname);
}

/** A request that passed the proxy's checks: the server, the sanitised path and the caller's access. */
export interface ProxiedRequest {
  serverId: string;
  path: string;
  /** The caller's access for this request (to the terminal it addresses, else to the server). */
  access: Access;
  /** The only terminals the caller may reach (per-terminal grants, a share link); null: all. */
  terminals: ReadonlySet<number> | null;
  /** The caller's grant on the whole server, null for none. */
  serverAccess: Access | null;
}

/** What the gate established for a request it let through. */
export interface GatedCall {
  /** The caller (null: anonymous, on a public route). */
  principal: Principal | null;
  /** The checks it passed (null for an anonymous caller: no grant was asked for). */
  proxied: ProxiedRequest | null;
}

/**
 * Requests the gate let through, with what it found: a request is gated once (a rewritten
 * request carries its record, so it is not checked twice), and the families' guards read the
 * caller from here instead of authenticating again.
 */
const gatedCalls = new WeakMap<Request, GatedCall>();
/** Reads through a mount already recorded by this isolate, not recorded again for a while (audit.ts). */
const readRepeats = new ReadRepeats();

/** What the gate recorded for `request`, or undefined when it did not gate it. */
export function gatedCall(request: Request): GatedCall | undefined {
  return gatedCalls.get(request);
}

/** Stands for "no caller" in lookups that take one (never granted anything). */
const ANONYMOUS: Identity = Object.freeze({ userId: "", role: "user", tokenId: null, readOnly: true });

// Routes that answer without credentials under a server's mount (open-terminal-api.ts marks them
// `public`; the WebSocket authenticates its first message).
const PUBLIC_ON_MOUNT: readonly RegExp[] = [/^health$/, /^api\/config$/, /^openapi\.json$/, /^api\/terminals\/[^/]+$/];

/** The public routes that are not a terminal's (a share link's bearer is anonymous on them). */
const PUBLIC_INFO_ON_MOUNT: readonly RegExp[] = PUBLIC_ON_MOUNT.slice(0, 3);

function decodedServerId(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return "";
  }
}

/** The session id of a sanitised `api/terminals/{id}` path. */
function decodedSession(path: string): string {
  return path.slice("api/terminals/".length);
}

/**
 * Gates `request`: answers a refusal (or a URL server's answer), or the request the families
 * should route — the same one, or one with the sanitised path.
 */
export async function gate(request: Request, env: Env): Promise<Request | Response> {
  if (gatedCalls.has(request)) return request;
  const url = new URL(request.url);
  const mount = SERVER_MOUNT_RE.exec(url.pathname);
  if (!mount) return request;
  const serverId = decodedServerId(mount[1]!);
  // The proxy's WebSocket authenticates by its first message, then runs these checks as close
  // codes (ws-proxy.ts): it is routed before any of them, whoever calls.
  const socketPath = request.method === "GET" && isWebSocketUpgrade(request) ? sanitizeTerminalPath(mount[2]!) : null;
  if (socketPath !== null && isProxySocketPath(socketPath)) {
    const answered = await routeProxySocket(request, env, serverId, decodedSession(socketPath));
    if (answered) return answered;
    gatedCalls.set(request, { principal: null, proxied: null });
    return request;
  }
  let principal = await authenticate(request, env);
  // A cookie carries no authority across origins (auth.ts). Under a server's mount every request
  // has a side effect — it is audited, and a URL server's or a proxied app's GET may change
  // state — so whatever the method it is the caller-less request's, which the route's guard
  // refuses (403 ORIGIN_CHECK_FAILED, family.ts) unless the route is public; nothing is audited.
  if (principal?.via === "cookie" && !sameOrigin(request)) principal = null;
  // A share link reaches one terminal; on a public route it is ignored, as no credential is needed.
  if (principal?.identity.share && request.method === "GET" && PUBLIC_INFO_ON_MOUNT.some((re) => re.test(mount[2]!))) principal = null;
  if (!principal) {
    // A non-public route: the route's guard answers 401 (before saying whether the server exists).
    if (request.method !== "GET" || !PUBLIC_ON_MOUNT.some((re) => re.test(mount[2]!))) return request;
    // Public routes under a server's mount still pass the checks, with no grant asked for; a URL
    // server is never proxied without credentials (401).
    const lookups = { ...proxyLookups(env, ANONYMOUS), access: async () => "write" as const };
    const checked = await checkProxyRequest(lookups, serverId, mount[2]!, request.method, url.search);
    if (!checked.ok) return refusalResponse(checked);
    if (checked.server.kind === "url") return Response.json({ error: "Not authenticated", code: "UNAUTHORIZED" }, { status: 401 });
    gatedCalls.set(request, { principal: null, proxied: null });
    return request;
  }
  const checked = await checkProxyRequest(proxyLookups(env, principal.identity), serverId, mount[2]!, request.method, url.search);
  if (!checked.ok) return refusalResponse(checked);
  const proxied: ProxiedRequest = { serverId, path: checked.path, access: checked.access, terminals: checked.terminals, serverAccess: checked.serverAccess };
  const share = principal.identity.share;
  const record = async () => {
    const event = {
      actor: actorOf(principal.identity),
      action: share ? ("share.use" as const) : ("proxy" as const),
      server_id: serverId,
      terminal_id: share?.terminalId ?? null,
      detail: `${request.method} /${proxied.path} (${proxied.access})`,
      ip: clientIp(request),
    };
    // A poll's repeats are left out (AUDIT_READ_REPEAT_MS); each hop of a chain of edges counts apart.
    const read = request.method === "GET" || request.method === "HEAD";
    // Only what the row would hold (a long path is cut as recordAudit cuts it): a key is never large.
    const key = JSON.stringify([event.actor.slice(0, 200), event.action, serverId, event.terminal_id, event.detail.slice(0, AUDIT_DETAIL_MAX_CHARS), event.ip, request.headers.get(URL_SERVER_HOPS_HEADER)?.slice(0, 8)]);
    if (read && !readRepeats.shouldRecord(key)) return;
    // Written before the request is served, so the log never misses a request that ran.
    await recordAudit(env.DB, event);
  };
  if (checked.server.kind === "url") {
    const upstream = await urlServerUpstream(env, serverId);
    if (!upstream) return Response.json({ error: "Terminal server URL not configured", code: "SERVER_UNREACHABLE" }, { status: 503 });
    await record();
    return proxyToUrlServer(request, upstream, checked.path, principal.identity, checked.access);
  }
  await record();
  const clean = `/api/v1/terminals/${serverId}/${checked.path}`;
  const routed = clean === url.pathname ? request : new Request(new URL(clean + url.search, url.origin), request);
  gatedCalls.set(routed, { principal, proxied });
  return routed;
}
