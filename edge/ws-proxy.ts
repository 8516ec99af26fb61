/**
 * The terminals proxy's WebSocket, `/api/v1/terminals/{server_id}/api/terminals/{session_id}`
 * (reference/open-webui-terminals.md §2.4). The upgrade is accepted without credentials; the
 * first text message must be `{"type":"auth","token":…}` within TERMINAL_WS_AUTH_TIMEOUT_MS.
 * The token is any edgetty bearer credential (the API key, a user's `ett_…` token); then the
 * proxy's checks run in their order (proxy-checks.ts) and close the socket instead of answering:
 * 4001 bad or missing auth, 4004 unknown server, 4003 disabled, denied, unreachable, read-only.
 * Every socket that passes is audited (`proxy`, `WS /api/terminals/{id}`) before it relays.
 *
 * Where a socket goes, decided before auth and alike from the client's side (accepted, then
 * silent until it authenticates), so nothing is learnt about servers without a credential:
 * - an agent server's: its TerminalDO (the Open Terminal WebSocket, raw-terminal.ts, in proxy
 *   mode), which authenticates the first message with {@link authorizeProxySocket} itself, so
 *   the socket stays hibernatable and one hop;
 * - a URL server's: its HostDO, which dials the URL server's own WebSocket with the stored key
 *   ({@link UrlServerSockets}) and relays, so revocation can reach the relay;
 * - an unknown server's: this Worker, which answers 4001 or, once the token checks out, 4004.
 */
import { TERMINAL_WS_AUTH_TIMEOUT_MS } from "../shared/open-terminal.ts";
import { hostStub } from "./addresses.ts";
import { clientIp, recordAudit } from "./audit.ts";
import type { Principal } from "./auth.ts";
import { actorOf, identifyBearer } from "./caller.ts";
import type { Env } from "./env.ts";
import type { Identity } from "./identities.ts";
import { credentialOf, type CloseInfo, type Credential } from "./live-sockets.ts";
import { checkProxyRequest, ProxyRefusals, refusalClose } from "./proxy-checks.ts";
import { getAccessServer, proxyLookups, type AccessServer } from "./server-access.ts";
import { hopsOf, URL_SERVER_HOPS_HEADER } from "./url-servers.ts";

/** Close codes and reasons of the proxy WebSocket's first-message auth (reference §2.4). */
export const ProxyWsClose = {
  EXPECTED_AUTH: { code: 4001, reason: "Expected auth message" },
  INVALID_TOKEN: { code: 4001, reason: "Invalid token" },
  AUTH_TIMEOUT: { code: 4001, reason: "Auth timeout or invalid payload" },
  SERVER_NOT_FOUND: refusalClose(ProxyRefusals.SERVER_NOT_FOUND),
  URL_NOT_CONFIGURED: { code: 4003, reason: "Terminal server URL not configured" },
  PROXY_LOOP: { code: 4508, reason: "Terminal proxy loop" },
} as const;

/** The HostDO path a URL server's proxy WebSocket is fetched at. */
export const URL_WS_PATH = "/url-ws";
/** Messages a client may send before its auth is checked; more close it (4001). */
export const PREAUTH_QUEUE_MAX = 64;

const SESSION_PATH_RE = /^api\/terminals\/[^/]+$/;

/** True for the sanitised path of the proxy WebSocket (`api/terminals/{session_id}`). */
export function isProxySocketPath(path: string): boolean {
  return SESSION_PATH_RE.test(path);
}

/**
 * The token of a first message: a string for `{"type":"auth"}` (empty when it has none),
 * `undefined` for JSON of another type ("Expected auth message"), null for anything that is not
 * a JSON text message ("Auth timeout or invalid payload").
 */
export function firstMessageToken(message: ArrayBuffer | string): string | undefined | null {
  if (typeof message !== "string") return null;
  let v: unknown;
  try {
    v = JSON.parse(message);
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (o["type"] !== "auth") return undefined;
  return typeof o["token"] === "string" ? o["token"] : "";
}

/** A socket that passed the proxy's checks: who it is, with what, on which server. */
export interface ProxySocketPass {
  ok: true;
  identity: Identity;
  /** The revocable credential it authenticated with (null: the API key). */
  cred: Credential | null;
  server: AccessServer;
  /** Its grant on the server: `read` joins an agent server's session read-only. */
  access: "read" | "write";
}

/**
 * Authenticates a proxy WebSocket's first-message token and runs the proxy's checks for
 * `session` on `serverId`; audits a pass. `token` as {@link firstMessageToken} answers it.
 * `terminal`: the session's terminal when the edge knows it (an agent server's TerminalDO), so a
 * grant on that one terminal or a share link of it reaches it, as at the top level.
 */
export async function authorizeProxySocket(
  env: Env,
  token: string | undefined | null,
  serverId: string,
  session: string,
  ip: string,
  terminal?: number,
): Promise<ProxySocketPass | { ok: false; close: CloseInfo }> {
  if (token === null) return { ok: false, close: ProxyWsClose.AUTH_TIMEOUT };
  if (token === undefined) return { ok: false, close: ProxyWsClose.EXPECTED_AUTH };
  const identity = token === "" ? null : await identifyBearer(env.DB, token, env.EDGETTY_API_KEY);
  if (!identity) return { ok: false, close: ProxyWsClose.INVALID_TOKEN };
  const path = `api/terminals/${encodeURIComponent(session)}`;
  const checked = await checkProxyRequest(proxyLookups(env, identity), serverId, path, "GET", "", terminal);
  if (!checked.ok) return { ok: false, close: { code: checked.closeCode === 4400 ? 4003 : checked.closeCode, reason: checked.error } };
  await recordAudit(env.DB, { actor: actorOf(identity), action: "proxy", server_id: serverId, detail: `WS /${path} (${checked.access})`, ip });
  const principal: Principal = { role: identity.role, via: "bearer", identity };
  return { ok: true, identity, cred: credentialOf(principal), server: checked.server, access: checked.access };
}

/**
 * Accepts `ws` in this isolate and waits for its first message: a non-auth payload, a wrong
 * token or silence past the auth window close it (4001); otherwise `admitted` takes over with
 * the messages that arrived meanwhile. Used where the socket cannot hibernate anyway (an unknown
 * server's socket in the Worker, a URL server's relay in its HostDO).
 */
export function awaitFirstMessage(
  ws: WebSocket,
  authorize: (token: string | undefined | null) => Promise<{ ok: true } | { ok: false; close: CloseInfo }>,
  admitted: (queued: (string | ArrayBuffer | Blob)[]) => void,
): void {
  let state: "waiting" | "checking" | "done" = "waiting";
  // Binary messages of an accepted socket may arrive as Blobs: kept as they came, in order.
  const queued: (string | ArrayBuffer | Blob)[] = [];
  const close = (c: CloseInfo) => {
    state = "done";
    clearTimeout(timer);
    try {
      ws.close(c.code, c.reason);
    } catch {
      /* already closed */
    }
  };
  const timer = setTimeout(() => close(ProxyWsClose.AUTH_TIMEOUT), TERMINAL_WS_AUTH_TIMEOUT_MS);
  const onMessage = (event: MessageEvent) => {
    const data = event.data as string | ArrayBuffer | Blob;
    if (state === "done") return;
    if (state === "checking") {
      if (queued.length >= PREAUTH_QUEUE_MAX) return close(ProxyWsClose.AUTH_TIMEOUT);
      queued.push(data);
      return;
    }
    state = "checking";
    const token = typeof data === "string" ? firstMessageToken(data) : null;
    authorize(token).then(
      (verdict) => {
        if (state === "done") return; // timed out meanwhile
        if (!verdict.ok) return close(verdict.close);
        state = "done";
        clearTimeout(timer);
        ws.removeEventListener("message", onMessage);
        admitted(queued);
      },
      () => close({ code: 1011, reason: "auth failed" }),
    );
  };
  ws.addEventListener("message", onMessage);
  ws.addEventListener("close", () => {
    state = "done";
    clearTimeout(timer);
  });
}

/** An unknown server's socket, answered in the Worker: 4001 for bad auth, else 4004. */
function unknownServerSocket(env: Env, ip: string): Response {
  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  server.accept();
  awaitFirstMessage(
    server,
    async (token) => {
      const verdict = await authorizeProxySocket(env, token, "", "", ip);
      return verdict.ok ? { ok: false, close: ProxyWsClose.SERVER_NOT_FOUND } : verdict;
    },
    () => {},
  );
  return new Response(null, { status: 101, webSocket: client });
}

/** The request a URL server's HostDO gets for one proxy WebSocket. */
export function urlSocketRequest(request: Request, session: string): Request {
  const url = new URL(`https://host${URL_WS_PATH}`);
  url.searchParams.set("session", session);
  const userId = new URL(request.url).searchParams.get("user_id");
  if (userId !== null) url.searchParams.set("user_id", userId);
  const headers = new Headers({ Upgrade: "websocket", [URL_SERVER_HOPS_HEADER]: String(hopsOf(request)) });
  const ip = request.headers.get("CF-Connecting-IP");
  if (ip) headers.set("CF-Connecting-IP", ip);
  return new Request(url, { headers });
}

/**
 * Routes a proxy WebSocket upgrade under a server's mount (the gate calls it before any check):
 * undefined lets the families route it (an agent server's: the Open Terminal WebSocket route,
 * in proxy mode); otherwise the answer (a URL server's HostDO, or an unknown server's socket).
 */
export async function routeProxySocket(request: Request, env: Env, serverId: string, session: string): Promise<Response | undefined> {
  const server = await getAccessServer(env.DB, serverId);
  if (server?.kind === "agent") return undefined;
  if (server?.kind === "url") return hostStub(env, serverId).fetch(urlSocketRequest(request, session));
  return unknownServerSocket(env, clientIp(request));
}
