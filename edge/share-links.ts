/**
 * Share links: a URL that opens one terminal read-only in the web app with no other credential,
 * until it expires or is revoked. The link carries a random bearer token `ets_<id>_<secret>`
 * (in the URL's fragment, so it never reaches a server log or a Referer); D1 (`share_links`,
 * migration 0006) keeps only its SHA-256, compared in constant time, with its terminal and expiry.
 *
 * Why a stored random token rather than an HMAC-signed one: revocation and listing need a row
 * per link anyway, and with the row a signature adds nothing but a key to rotate; every use is
 * checked against the row, so deleting it (or its expiry passing) stops the link on the next
 * request. Open WebSockets are closed by their TerminalDO (terminal-do.ts `closeCredential`, and
 * its expiry alarm).
 */
import { ApiError } from "../shared/errors.ts";
import { isServerId, jsonIntegerIn } from "../shared/validation.ts";
import type { ShareLinkListing } from "../shared/session-api.ts";
import { randomToken, safeEqual, sha256Hex } from "./auth.ts";
import { terminalStub } from "./addresses.ts";
import type { Env } from "./env.ts";
import type { Identity } from "./identities.ts";

/** Prefix of every share token, so leaked ones are easy to recognise. */
export const SHARE_TOKEN_PREFIX = "ets_";
/** Random bytes in a share token's secret part (256 bits). */
export const SHARE_SECRET_BYTES = 32;
/** Lifetime of a link created without `ttl_s`, in seconds (1 hour). */
export const SHARE_TTL_DEFAULT_S = 60 * 60;
/** Longest lifetime of a link, in seconds (7 days). */
export const SHARE_TTL_MAX_S = 7 * 24 * 60 * 60;
/** Most live links one terminal has at once. */
export const SHARE_LINKS_PER_TERMINAL_MAX = 20;
/** The `Sec-WebSocket-Protocol` a browser offers, with the token as a second protocol, to attach by a share link. */
export const SHARE_WS_PROTOCOL = "edgetty.share";
/** The web app's page that opens a share link (its fragment: `server`, `terminal`, `token`). */
export const SHARE_PAGE_PATH = "/share";

const TOKEN_RE = /^ets_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** A share link as listed: never its token or hash. */
export type ShareLink = ShareLinkListing;

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The public id of a well-formed share token, else null. */
export function shareTokenId(token: string): string | null {
  const m = TOKEN_RE.exec(token);
  return m ? m[1]! : null;
}

/** The share token a WebSocket upgrade offers as a subprotocol (`edgetty.share, ets_…`), or null. */
export function shareTokenFromProtocols(request: Request): string | null {
  const header = request.headers.get("Sec-WebSocket-Protocol");
  if (!header) return null;
  const offered = header.split(",").map((p) => p.trim());
  if (!offered.includes(SHARE_WS_PROTOCOL)) return null;
  return offered.find((p) => shareTokenId(p) !== null) ?? null;
}

/** The link's lifetime in seconds from a request's `ttl_s`; 400 outside 1..SHARE_TTL_MAX_S. */
export function shareTtl(value: unknown): number {
  if (value === undefined || value === null) return SHARE_TTL_DEFAULT_S;
  const ttl = jsonIntegerIn(value, 1, SHARE_TTL_MAX_S);
  if (ttl === null) throw new ApiError(400, "INVALID_PARAMETERS", `ttl_s must be an integer from 1 to ${SHARE_TTL_MAX_S}`);
  return ttl;
}

/**
 * Makes a link to terminal `terminalId` of `serverId` for `ttlS` seconds. The answer holds the
 * token, shown this once. 429 when the terminal already has SHARE_LINKS_PER_TERMINAL_MAX live ones.
 */
export async function createShareLink(
  db: D1Database,
  link: { serverId: string; terminalId: number; createdBy: string; ttlS: number },
  now = Date.now(),
): Promise<ShareLink & { token: string }> {
  await db.prepare("DELETE FROM share_links WHERE expires_at <= ?").bind(now).run();
  const live = await db.prepare("SELECT COUNT(*) AS n FROM share_links WHERE server_id = ? AND terminal_id = ?").bind(link.serverId, link.terminalId).first<{ n: number }>();
  if ((live?.n ?? 0) >= SHARE_LINKS_PER_TERMINAL_MAX) {
    throw new ApiError(429, "TOO_MANY_SHARE_LINKS", `a terminal has at most ${SHARE_LINKS_PER_TERMINAL_MAX} live share links; revoke one`);
  }
  const id = hex(crypto.getRandomValues(new Uint8Array(8)));
  const token = `${SHARE_TOKEN_PREFIX}${id}_${randomToken(SHARE_SECRET_BYTES)}`;
  const expires = now + link.ttlS * 1000;
  await db
    .prepare("INSERT INTO share_links (id, hash, server_id, terminal_id, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
    .bind(id, await sha256Hex(token), link.serverId, link.terminalId, link.createdBy, now, expires)
    .run();
  return { id, server_id: link.serverId, terminal_id: link.terminalId, created_by: link.createdBy, created_at: now, expires_at: expires, token };
}

/** The live links of one terminal, newest first. */
export async function listShareLinks(db: D1Database, serverId: string, terminalId: number, now = Date.now()): Promise<ShareLink[]> {
  const { results } = await db
    .prepare("SELECT id, server_id, terminal_id, created_by, created_at, expires_at FROM share_links WHERE server_id = ? AND terminal_id = ? AND expires_at > ? ORDER BY created_at DESC LIMIT ?")
    .bind(serverId, terminalId, now, SHARE_LINKS_PER_TERMINAL_MAX)
    .all<ShareLink>();
  return results;
}

/** Revokes link `id` of that terminal; false when there is none. */
export async function revokeShareLink(db: D1Database, serverId: string, terminalId: number, id: string): Promise<boolean> {
  const result = await db.prepare("DELETE FROM share_links WHERE id = ? AND server_id = ? AND terminal_id = ?").bind(id, serverId, terminalId).run();
  return (result.meta.changes ?? 0) > 0;
}

/** Removes every link to a terminal whose session ended (terminal-do.ts): a new session under the same id is another screen. */
export async function endShareLinks(db: D1Database, serverId: string, terminalId: number): Promise<void> {
  await db.prepare("DELETE FROM share_links WHERE server_id = ? AND terminal_id = ?").bind(serverId, terminalId).run();
}

/** Most share links of one server whose sockets a server's disabling closes (20 per terminal). */
export const SERVER_SHARES_CLOSE_MAX = 1_000;

/**
 * Closes the open WebSockets of every live share link to a terminal of `serverId` (the server
 * was disabled: the proxy's check 2 now refuses the links, and their sockets end too); answers
 * how many closed. The links stay, and work again if the server is enabled again.
 */
export async function closeServerShareSockets(env: Pick<Env, "DB" | "TERMINAL">, serverId: string, reason: string, now = Date.now()): Promise<number> {
  const { results } = await env.DB.prepare("SELECT id, terminal_id FROM share_links WHERE server_id = ? AND expires_at > ? LIMIT ?")
    .bind(serverId, now, SERVER_SHARES_CLOSE_MAX)
    .all<{ id: string; terminal_id: number }>();
  return closeShareSockets(env, serverId, results, reason);
}

/**
 * Closes the open WebSockets of `shares` (links to terminals of `serverId`, at most
 * {@link SERVER_SHARES_CLOSE_MAX}) with 4001 and `reason`; answers how many closed. For links
 * already deleted (a removed server: registry.ts deleteServer answers them), whose rows no
 * longer say where their sockets are.
 */
export async function closeShareSockets(env: Pick<Env, "TERMINAL">, serverId: string, shares: readonly { id: string; terminal_id: number }[], reason: string): Promise<number> {
  const closed = await Promise.all(
    shares.slice(0, SERVER_SHARES_CLOSE_MAX).map((r) => terminalStub(env, serverId, r.terminal_id).closeCredential(`share:${r.id}`, reason).catch(() => 0)),
  );
  return closed.reduce((a, b) => a + b, 0);
}

/**
 * The identity behind a share token (`share:<id>`, read-only, scoped to its terminal), or null
 * when it is malformed, unknown, revoked or expired. Checked against D1 on every call.
 */
export async function identityForShare(db: D1Database, token: string, now = Date.now()): Promise<Identity | null> {
  const id = shareTokenId(token);
  if (!id) return null;
  const row = await db
    .prepare("SELECT hash, server_id, terminal_id, expires_at FROM share_links WHERE id = ?")
    .bind(id)
    .first<{ hash: string; server_id: string; terminal_id: number; expires_at: number }>();
  // Hash even for unknown ids, so timing does not tell which ids exist.
  const matches = await safeEqual(await sha256Hex(token), row?.hash ?? "");
  if (!row || !matches || row.expires_at <= now || !isServerId(row.server_id)) return null;
  return {
    userId: `share:${id}`,
    role: "user",
    tokenId: null,
    readOnly: true,
    share: { id, serverId: row.server_id, terminalId: row.terminal_id, expiresAt: row.expires_at },
  };
}

/** The web app URL that opens a link: the token rides in the fragment, never sent to a server. */
export function shareUrl(origin: string, link: { server_id: string; terminal_id: number }, token: string): string {
  const fragment = new URLSearchParams({ server: link.server_id, terminal: String(link.terminal_id), token });
  return `${origin}${SHARE_PAGE_PATH}#${fragment.toString()}`;
}
