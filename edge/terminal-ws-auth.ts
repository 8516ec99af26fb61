/**
 * Who may join a terminal's Open Terminal WebSocket (raw-terminal.ts) by its first message, and
 * what the Worker tells the TerminalDO about a socket it routes there.
 *
 * - At the top level (`/api/terminals/{id}`): TerminalDO.authorizeRaw (a credential and its
 *   grant on the terminal).
 * - Under a server's mount (`/api/v1/terminals/{server}/api/terminals/{id}`, the terminals
 *   proxy's WebSocket): any credential, then the proxy's checks (ws-proxy.ts), then the
 *   session's owner: a session made with an `X-User-Id` belongs to the caller that made it (its
 *   principal part, `admin` or `user:<id>`); another caller is told `Session not found`.
 */
import { actorOf, ADMIN_KEY_IDENTITY } from "./caller.ts";
import type { Env } from "./env.ts";
import type { CloseInfo } from "./live-sockets.ts";
import type { JoinGrant } from "./raw-terminal.ts";
import { TerminalWsClose } from "../shared/open-terminal.ts";
import { authorizeProxySocket } from "./ws-proxy.ts";

/** What the Worker knows of a proxy-mount socket before its auth (kept in its attachment). */
export interface RawProxy {
  /** The `/api/terminals` name the client asked for. */
  session: string;
  /** The session's owner scope (open-terminal-names.ts), null for none. */
  owner: string | null;
  /** The client's address, for the audit log. */
  ip: string;
}

/** Query parameters of the TerminalDO's `/raw` request that carry a {@link RawProxy}. */
export function rawProxyQuery(proxy: RawProxy): string {
  const q = new URLSearchParams({ proxy: "1", session: proxy.session, ip: proxy.ip });
  if (proxy.owner !== null) q.set("owner", proxy.owner);
  return q.toString();
}

/** The {@link RawProxy} of a `/raw` request the Worker made, or undefined at the top level. */
export function readRawProxy(url: URL): RawProxy | undefined {
  if (url.searchParams.get("proxy") !== "1") return undefined;
  return { session: url.searchParams.get("session") ?? "", owner: url.searchParams.get("owner"), ip: url.searchParams.get("ip") ?? "" };
}

/**
 * Checks a proxy-mount socket's first-message token (string, undefined: other JSON, null: not
 * JSON): the proxy's checks (ws-proxy.ts), then the session's owner. Joins read-only with a
 * `read` grant, with its credential when it can be revoked.
 */
export async function verifyProxySocket(
  env: Env,
  serverId: string,
  token: string | undefined | null,
  proxy: RawProxy,
): Promise<{ ok: true; grant: JoinGrant } | { ok: false; close: CloseInfo }> {
  const verdict = await authorizeProxySocket(env, token, serverId, proxy.session, proxy.ip);
  if (!verdict.ok) return verdict;
  if (proxy.owner !== null) {
    const mine = verdict.identity === ADMIN_KEY_IDENTITY ? "admin" : actorOf(verdict.identity);
    if (!proxy.owner.startsWith(`${mine}:`)) return { ok: false, close: TerminalWsClose.NOT_FOUND };
  }
  const cred = verdict.cred;
  return { ok: true, grant: { readonly: verdict.access !== "write", ...(cred ? { credential: cred.id, until: cred.expiresAt, user: cred.userId } : {}) } };
}
