/**
 * Closing a credential's open WebSockets when it is revoked. A WebSocket authenticates once, at
 * its start; what it was opened with must still be able to end it: a per-user API token revoked
 * (admin API, `edgetty token revoke`), a browser session signed out, a user disabled or deleted.
 *
 * The Durable Objects that accept such sockets (a TerminalDO for terminal attaches and the Open
 * Terminal WebSocket, a server's HostDO for WebSocket relays to a URL server) keep the socket's
 * {@link Credential} in its attachment, and record themselves here, in D1 table `live_sockets`
 * (migration 0007): one row per (credential, holder), written when the first socket of that
 * credential joins the holder and deleted when the holder's last one closes. Revoking reads the
 * rows (at most {@link REVOKE_FANOUT_MAX}), deletes them and calls each holder's
 * `closeCredentialSockets`, which closes the matching sockets with {@link CredentialClose}.
 * Expiry needs no index: each holder arms its alarm for the earliest expiry among its sockets.
 *
 * The race between a join and a revocation is closed by order: a holder writes its row, then
 * checks the credential again (`credentialLive`); revoking deletes the credential, then reads the
 * rows. Whichever comes second sees the other. A row whose socket vanished without a close event
 * (a redeploy drops every socket) is harmless: revoking calls a holder that closes nothing, and
 * the row goes when its credential expires or is revoked.
 */
import { sessionIdentity, type Principal } from "./auth.ts";
import { browserSessionLive, liveSessionSubject } from "./browser-sessions.ts";
import { hostStub, terminalStub } from "./addresses.ts";
import { ADMIN_KEY_IDENTITY } from "./caller.ts";
import type { Env } from "./env.ts";
import { identityForTokenId, type Identity } from "./identities.ts";
import { accessFor } from "./identity-grants.ts";
import { log } from "./log.ts";
import { ProxyRefusals, refusalClose } from "./proxy-checks.ts";
import { getAccessServer } from "./server-access.ts";

/** Holders one credential may be recorded at (terminals it has sockets open on, at once). */
export const LIVE_HOLDERS_PER_CREDENTIAL_MAX = 256;
/** Holders one revocation calls at most (a user's credentials together). */
export const REVOKE_FANOUT_MAX = 1_024;

/**
 * What a socket was authenticated with, as its holder remembers it. `id` is `token:<id>` or
 * `session:<cookie digest>`; `userId` is the user behind it ("" for the admin's browser
 * session); `expiresAt` is epoch ms.
 */
export interface Credential {
  id: string;
  userId: string;
  expiresAt: number;
}

/** Which sockets a revocation closes: one credential's, or every credential of one user's. */
export type CredentialMatch = { credential: string } | { userId: string };

/** Close codes and reasons of sockets ended by their credential (the 4001 of failed auth). */
export const CredentialClose = {
  TOKEN_REVOKED: { code: 4001, reason: "Token revoked" },
  SIGNED_OUT: { code: 4001, reason: "Signed out" },
  USER_DISABLED: { code: 4001, reason: "User disabled" },
  EXPIRED: { code: 4001, reason: "credential expired" },
  // A grant change (recheckSockets): the proxy's own close codes and reasons for the same refusals.
  SERVER_NOT_FOUND: refusalClose(ProxyRefusals.SERVER_NOT_FOUND),
  SERVER_DISABLED: refusalClose(ProxyRefusals.SERVER_DISABLED),
  ACCESS_DENIED: refusalClose(ProxyRefusals.ACCESS_DENIED),
  READ_ONLY: refusalClose(ProxyRefusals.READ_ONLY),
} as const;

/** A close code and reason. */
export interface CloseInfo {
  code: number;
  reason: string;
}

/**
 * The revocable credential behind a caller, or null for one that cannot be revoked on its own:
 * the admin API key (rotating it is a redeploy) and Cloudflare Access assertions (short-lived,
 * revoked at Access).
 */
export function credentialOf(principal: Principal | null): Credential | null {
  if (!principal) return null;
  const userId = principal.identity === ADMIN_KEY_IDENTITY ? "" : principal.identity.userId;
  if (principal.via === "cookie") return { id: `session:${principal.session}`, userId, expiresAt: principal.expiresAt };
  if (principal.identity.tokenId !== null) return { id: `token:${principal.identity.tokenId}`, userId, expiresAt: principal.identity.expiresAt ?? Number.MAX_SAFE_INTEGER };
  return null;
}

/**
 * What a socket remembers of the credential that opened it, so that the credential's end closes
 * it: a share link's `share:<id>` and expiry (its one terminal closes it on revocation and at
 * expiry), else a user's token or browser session (`cred`, {@link credentialOf}); null for a
 * credential that cannot end on its own (the API key, an Access assertion).
 */
export function socketEnds(identity: Identity, cred: Credential | null): { credential: string; until: number; user?: string } | null {
  if (identity.share) return { credential: `share:${identity.share.id}`, until: identity.share.expiresAt };
  return cred ? { credential: cred.id, until: cred.expiresAt, user: cred.userId } : null;
}

/** True when `cred` falls under `match`. */
export function credentialMatches(cred: Credential, match: CredentialMatch): boolean {
  return "credential" in match ? cred.id === match.credential : cred.userId !== "" && cred.userId === match.userId;
}

/** True while the credential still authenticates (not revoked, not expired, its user enabled). */
export async function credentialLive(db: D1Database, cred: Credential, now = Date.now()): Promise<boolean> {
  if (cred.expiresAt <= now) return false;
  const [kind, id] = [cred.id.slice(0, cred.id.indexOf(":")), cred.id.slice(cred.id.indexOf(":") + 1)];
  if (kind === "session") {
    if (!(await browserSessionLive(db, id, now))) return false;
    if (cred.userId === "") return true;
    return (await db.prepare("SELECT 1 AS x FROM users WHERE id = ? AND disabled = 0").bind(cred.userId).first()) !== null;
  }
  if (kind !== "token") return false;
  const row = await db
    .prepare("SELECT 1 AS x FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ? AND t.expires_at > ? AND u.disabled = 0")
    .bind(id, now)
    .first();
  return row !== null;
}

/**
 * Who `cred` is now (not revoked, unexpired, its user enabled; the role it had at sign-in or
 * creation, lowered to the user's current one), or null when that cannot be told: a dead
 * credential (its revocation closes its sockets) or a session recorded before subjects were.
 */
export async function credentialIdentity(db: D1Database, cred: Credential, now = Date.now()): Promise<Identity | null> {
  if (cred.expiresAt <= now) return null;
  const colon = cred.id.indexOf(":");
  const [kind, id] = [cred.id.slice(0, colon), cred.id.slice(colon + 1)];
  if (kind === "token") return identityForTokenId(db, id, now);
  if (kind !== "session") return null;
  const subject = await liveSessionSubject(db, id, now);
  return subject ? sessionIdentity(db, subject) : null;
}

/**
 * Whether a socket opened with `cred` on server `serverId` (terminal `terminalId`, null for a
 * URL server's relay, which is checked against the whole server) may stay open after a grant,
 * membership or server change: null when it may, else how to close it — the server removed or disabled,
 * no grant left (4003 as the proxy's checks refuse), or a writing socket now holding only `read`.
 * Admins keep their sockets; a credential that is gone is left to its revocation.
 */
export async function recheckCredential(db: D1Database, cred: Credential, serverId: string, terminalId: number | null, writable: boolean, now = Date.now()): Promise<CloseInfo | null> {
  const identity = await credentialIdentity(db, cred, now);
  if (identity === null || identity.role === "admin") return null;
  const server = await getAccessServer(db, serverId);
  if (server === null) return CredentialClose.SERVER_NOT_FOUND;
  if (!server.enabled) return CredentialClose.SERVER_DISABLED;
  const access = await accessFor(db, identity, serverId, terminalId ?? undefined);
  if (access === null) return CredentialClose.ACCESS_DENIED;
  return writable && access !== "write" ? CredentialClose.READ_ONLY : null;
}

/**
 * Which holders a grant-side change may affect: the sockets of `users` (null: every user's) on
 * server `serverId` (one terminal when `terminalId` is set; null: every server of theirs).
 */
export interface RecheckScope {
  serverId: string | null;
  terminalId?: number;
  users: readonly string[] | null;
}

/** Most users one re-check names (a group's members). */
export const RECHECK_USERS_MAX = 1_000;

/**
 * After a grant was removed or lowered, a membership removed, a group deleted or a server
 * disabled: asks every holder recorded for `scope` (at most {@link REVOKE_FANOUT_MAX}) to
 * re-check its users' sockets ({@link recheckCredential}) and close those that lost their
 * access; answers how many closed. Call after the change is written, so new sockets are refused
 * by the proxy's checks and the sweep sees the new state.
 */
export async function recheckSockets(env: Pick<Env, "DB" | "HOST" | "TERMINAL">, scope: RecheckScope): Promise<number> {
  const db = env.DB;
  if (scope.users !== null && scope.users.length === 0) return 0;
  const where: string[] = [];
  const binds: unknown[] = [];
  if (scope.users !== null) {
    where.push("user_id IN (SELECT value FROM json_each(?))");
    binds.push(JSON.stringify(scope.users.slice(0, RECHECK_USERS_MAX)));
  } else where.push("user_id != ''");
  if (scope.serverId !== null) {
    if (scope.terminalId) {
      where.push("holder = ?");
      binds.push(terminalHolder(scope.serverId, scope.terminalId));
    } else {
      where.push("(holder = ? OR substr(holder, 1, ?) = ?)");
      const prefix = `terminal:${scope.serverId}:`;
      binds.push(hostHolder(scope.serverId), prefix.length, prefix);
    }
  }
  const { results } = await db
    .prepare(`SELECT DISTINCT holder FROM live_sockets WHERE ${where.join(" AND ")} LIMIT ?`)
    .bind(...binds, REVOKE_FANOUT_MAX)
    .all<{ holder: string }>();
  const closed = await Promise.all(
    results.map(async ({ holder }) => {
      try {
        return (await holderStub(env, holder)?.recheckSockets(scope.users === null ? null : [...scope.users])) ?? 0;
      } catch (error) {
        log("error", "recheck.holder_failed", "a holder could not re-check its sockets after a grant change", { holder, error });
        return 0;
      }
    }),
  );
  return closed.reduce((a, b) => a + b, 0);
}

/** A holder's address in `live_sockets`: a TerminalDO or a HostDO. */
export function terminalHolder(serverId: string, terminalId: number): string {
  return `terminal:${serverId}:${terminalId}`;
}
export function hostHolder(serverId: string): string {
  return `host:${serverId}`;
}

/** What every holder answers to. */
interface HolderStub {
  closeCredentialSockets(match: CredentialMatch, close: CloseInfo): Promise<number>;
  recheckSockets(users: string[] | null): Promise<number>;
  holdsCredential(id: string): Promise<boolean>;
}

function holderStub(env: Pick<Env, "HOST" | "TERMINAL">, holder: string): HolderStub | null {
  const t = /^terminal:([a-z0-9][a-z0-9-]{0,62}):(\d{1,5})$/.exec(holder);
  if (t) return terminalStub(env, t[1]!, Number(t[2])) as unknown as HolderStub;
  const h = /^host:([a-z0-9][a-z0-9-]{0,62})$/.exec(holder);
  if (h) return hostStub(env, h[1]!) as unknown as HolderStub;
  return null;
}

/**
 * Records that `holder` has a socket open with `cred`, then checks the credential again:
 * `held`, or `revoked` (no longer live: revoked meanwhile) or `full` (it already has sockets at
 * {@link LIVE_HOLDERS_PER_CREDENTIAL_MAX} holders): refuse the socket.
 */
export async function holdCredential(
  env: Pick<Env, "DB" | "HOST" | "TERMINAL">,
  cred: Credential,
  holder: string,
  now = Date.now(),
  maxHolders = LIVE_HOLDERS_PER_CREDENTIAL_MAX,
): Promise<Admission> {
  const db = env.DB;
  const count = async () => (await db.prepare("SELECT COUNT(*) AS n FROM live_sockets WHERE credential = ? AND holder != ?").bind(cred.id, holder).first<{ n: number }>())?.n ?? 0;
  if ((await count()) >= maxHolders) {
    // Rows whose sockets vanished without a close (a redeploy): ask each holder, forget the empty.
    const { results } = await db.prepare("SELECT holder FROM live_sockets WHERE credential = ? LIMIT ?").bind(cred.id, maxHolders).all<{ holder: string }>();
    const held = await Promise.all(results.map(async (r) => (await holderStub(env, r.holder)?.holdsCredential(cred.id).catch(() => true)) ?? false));
    const empty = results.filter((_, i) => !held[i]).map((r) => r.holder);
    if (empty.length > 0) await db.batch(empty.map((h) => db.prepare("DELETE FROM live_sockets WHERE credential = ? AND holder = ?").bind(cred.id, h)));
    if ((await count()) >= maxHolders) return "full";
  }
  await db.batch([
    db.prepare("DELETE FROM live_sockets WHERE expires_at <= ?").bind(now),
    db
      .prepare("INSERT OR REPLACE INTO live_sockets (credential, holder, user_id, expires_at, created_at) VALUES (?, ?, ?, ?, ?)")
      .bind(cred.id, holder, cred.userId, cred.expiresAt, now),
  ]);
  if (await credentialLive(db, cred, now)) return "held";
  await releaseCredential(db, cred.id, holder);
  return "revoked";
}

/** What {@link holdCredential} decided. */
export type Admission = "held" | "revoked" | "full";

/** How a socket refused at admission is closed. */
export function admissionClose(admission: Exclude<Admission, "held">): CloseInfo {
  return admission === "full" ? { code: 4003, reason: "Too many open WebSockets for this credential" } : CredentialClose.TOKEN_REVOKED;
}

/** The holder's last socket of `credentialId` closed: forget the row. */
export async function releaseCredential(db: D1Database, credentialId: string, holder: string): Promise<void> {
  await db.prepare("DELETE FROM live_sockets WHERE credential = ? AND holder = ?").bind(credentialId, holder).run();
}

/**
 * Closes every open WebSocket that `match` covers, at every holder recorded for it, with
 * `close`; answers how many sockets closed. Call after the credential stopped authenticating
 * (deleted, signed out, user disabled), so no new socket can join behind the sweep.
 */
export async function closeCredentialSockets(env: Pick<Env, "DB" | "HOST" | "TERMINAL">, match: CredentialMatch, close: CloseInfo): Promise<number> {
  const db = env.DB;
  const where = "credential" in match ? "credential = ?" : "user_id = ?";
  const key = "credential" in match ? match.credential : match.userId;
  if (key === "") return 0;
  const { results } = await db.prepare(`SELECT credential, holder FROM live_sockets WHERE ${where} LIMIT ?`).bind(key, REVOKE_FANOUT_MAX).all<{ credential: string; holder: string }>();
  await db.prepare(`DELETE FROM live_sockets WHERE ${where}`).bind(key).run();
  const holders = [...new Set(results.map((r) => r.holder))];
  const closed = await Promise.all(
    holders.map(async (holder) => {
      try {
        return (await holderStub(env, holder)?.closeCredentialSockets(match, close)) ?? 0;
      } catch (error) {
        log("error", "revoke.holder_failed", "a holder could not close a revoked credential's sockets", { holder, error });
        return 0;
      }
    }),
  );
  return closed.reduce((a, b) => a + b, 0);
}

/** An open socket a holder accepted, with the credential it authenticated. */
export interface HeldSocket {
  ws: WebSocket;
  cred: Credential;
  /** It may write (type, resize): a grant lowered to `read` closes it. */
  writable: boolean;
}

/** What {@link HeldCredentials} needs from the Durable Object that holds the sockets. */
export interface CredentialHolder {
  readonly env: Pick<Env, "DB" | "HOST" | "TERMINAL">;
  /** This holder's address (terminalHolder / hostHolder). */
  holder(): string;
  /** The open sockets that carry a credential. */
  held(): HeldSocket[];
  /** Closes one socket (and forgets it wherever the holder tracks clients). */
  close(ws: WebSocket, close: CloseInfo): void;
  /** Wake the holder at `at` (epoch ms) to call `onExpiry()`; null: nothing to expire. */
  armExpiry(at: number | null): Promise<void>;
}

/** The holder side: admits credentials, closes their sockets on revocation and at expiry. */
export class HeldCredentials {
  constructor(private readonly host: CredentialHolder) {}

  /** Before a socket with `cred` joins: records this holder for it; anything but `held` refuses the socket. */
  admit(cred: Credential): Promise<Admission> {
    return holdCredential(this.host.env, cred, this.host.holder());
  }

  /** After a socket joined or left: points the expiry alarm at the earliest credential expiry. */
  async rearm(): Promise<void> {
    let earliest: number | null = null;
    for (const { cred } of this.host.held()) earliest = Math.min(earliest ?? Infinity, cred.expiresAt);
    await this.host.armExpiry(earliest);
  }

  /** A socket with `cred` closed: when it was the holder's last with that credential, forget the row. */
  async released(cred: Credential, closing: WebSocket): Promise<void> {
    if (this.host.held().some((h) => h.ws !== closing && h.cred.id === cred.id)) return;
    await releaseCredential(this.host.env.DB, cred.id, this.host.holder());
    await this.rearm();
  }

  /** Closes the sockets `match` covers; answers how many. */
  close(match: CredentialMatch, close: CloseInfo): number {
    let n = 0;
    for (const { ws, cred } of this.host.held()) {
      if (!credentialMatches(cred, match)) continue;
      this.host.close(ws, close);
      n++;
    }
    return n;
  }

  /**
   * Re-checks the sockets of `users` (null: every user's) on this holder's server (`terminalId`:
   * this terminal; null for a URL server's relays) after a grant-side change, closing those that
   * lost their access ({@link recheckCredential}); answers how many closed. One look-up per
   * credential, however many sockets it has here.
   */
  async recheck(users: readonly string[] | null, serverId: string, terminalId: number | null): Promise<number> {
    const wanted = users === null ? null : new Set(users);
    const verdicts = new Map<string, Promise<CloseInfo | null>>();
    let closed = 0;
    for (const { ws, cred, writable } of this.host.held()) {
      if (cred.userId === "" || (wanted !== null && !wanted.has(cred.userId))) continue;
      const key = `${cred.id}|${writable}`;
      if (!verdicts.has(key)) verdicts.set(key, recheckCredential(this.host.env.DB, cred, serverId, terminalId, writable));
      const close = await verdicts.get(key)!;
      if (close === null || ws.readyState !== WebSocket.OPEN) continue;
      this.host.close(ws, close);
      closed++;
    }
    // Rows of credentials left with no socket here go as each socket's close is handled (released).
    if (closed > 0) await this.rearm();
    return closed;
  }

  holds(id: string): boolean {
    return this.host.held().some((h) => h.cred.id === id);
  }

  /** The expiry alarm: sockets whose credential expired close (4001 credential expired). */
  async onExpiry(now = Date.now()): Promise<void> {
    const expired = new Set<string>();
    for (const { ws, cred } of this.host.held()) {
      if (cred.expiresAt > now) continue;
      this.host.close(ws, CredentialClose.EXPIRED);
      expired.add(cred.id);
    }
    for (const id of expired) await releaseCredential(this.host.env.DB, id, this.host.holder());
    await this.rearm();
  }
}
