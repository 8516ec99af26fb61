/**
 * Who may join a terminal's Open Terminal WebSocket (raw-terminal.ts) by its first message, and
 * what the Worker tells the TerminalDO about a socket it routes there.
 *
 * - At the top level (`/api/terminals/{id}`): terminal-admission.ts authorizeRawToken (a credential and its
 *   grant on the terminal), then the session's owner ({@link ownerAdmits}).
 * - Under a server's mount (`/api/v1/terminals/{server}/api/terminals/{id}`, the terminals
 *   proxy's WebSocket): any credential, then the proxy's checks (ws-proxy.ts), then the
 *   session's owner: a user's credential reaches only that user's sessions
 *   ({@link ownerAdmits}); the API key only sessions made with the key (`admin:…`) or by no
 *   one; another caller is told `Session not found` (4004).
 */
import { sha256Hex } from "./auth.ts";
import { actorOf, ADMIN_KEY_IDENTITY } from "./caller.ts";
import type { Identity } from "./identities.ts";
import type { Env } from "./env.ts";
import { socketEnds, type CloseInfo } from "./live-sockets.ts";
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

/**
 * The owner scope (open-terminal-names.ts) of what a user's credential makes or reaches on the
 * Open Terminal routes: `user:<id>:` + SHA-256 of its user id, whatever `X-User-Id` (or
 * `?user_id=`) it sends: the same user the edge forwards (url-servers.ts forwardedUserId).
 */
export async function userOwnerScope(identity: Identity): Promise<string> {
  return `${actorOf(identity)}:${await sha256Hex(identity.userId)}`;
}

/**
 * Whether `identity` may reach an `/api/terminals` session owned by `owner` (null: made with the
 * API key and no `X-User-Id`): a user's credential (token, browser session, Access identity)
 * only its own ({@link userOwnerScope}); the API key and a share link (which reaches its one
 * terminal only) are not narrowed here.
 */
export async function ownerAdmits(identity: Identity, owner: string | null): Promise<boolean> {
  if (identity === ADMIN_KEY_IDENTITY || identity.share) return true;
  return owner === (await userOwnerScope(identity));
}

/** What the Worker tells the TerminalDO of a top-level `/api/terminals/{id}` socket: the session's owner. */
export interface RawOwned {
  /** The session's owner scope, null for none. */
  owner: string | null;
}

/** Query parameters of the TerminalDO's `/raw` request that carry a {@link RawOwned}. */
export function rawOwnedQuery(owned: RawOwned): string {
  const q = new URLSearchParams({ owned: "1" });
  if (owned.owner !== null) q.set("owner", owned.owner);
  return q.toString();
}

/** The {@link RawOwned} of a top-level `/raw` request, or undefined when none was sent. */
export function readRawOwned(url: URL): RawOwned | undefined {
  if (url.searchParams.get("owned") !== "1") return undefined;
  return { owner: url.searchParams.get("owner") };
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
  terminal?: number,
): Promise<{ ok: true; grant: JoinGrant } | { ok: false; close: CloseInfo }> {
  const verdict = await authorizeProxySocket(env, token, serverId, proxy.session, proxy.ip, terminal);
  if (!verdict.ok) return verdict;
  const { identity } = verdict;
  if (identity === ADMIN_KEY_IDENTITY || identity.share) {
    const mine = identity === ADMIN_KEY_IDENTITY ? "admin" : actorOf(identity);
    if (proxy.owner !== null && !proxy.owner.startsWith(`${mine}:`)) return { ok: false, close: TerminalWsClose.NOT_FOUND };
  } else if (!(await ownerAdmits(identity, proxy.owner))) {
    return { ok: false, close: TerminalWsClose.NOT_FOUND };
  }
  // A share link's socket too: its revocation or expiry closes it, as at the top level.
  const ends = socketEnds(identity, verdict.cred);
  return { ok: true, grant: { readonly: verdict.access !== "write", ...(ends ?? {}) } };
}
