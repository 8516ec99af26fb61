/**
 * A TerminalDO's client admission: whether a session-API client may join at all
 * ({@link joinRefusal}) and which credential that can end it carries ({@link readClientEnds}); who
 * a raw (Open Terminal) client's first-message token is and what it may do here
 * ({@link authorizeRawToken}); and the credentials that can end while their sockets are open
 * ({@link ClientCredentials}): share links (closed by their one terminal) and users' tokens and
 * browser sessions (recorded in D1 through live-sockets.ts so a revocation finds this terminal).
 * Sockets close with {@link CREDENTIAL_CLOSE_CODE} when their credential expires (the DO's
 * "expiry" alarm slot) or is revoked.
 */
import { recordAudit } from "./audit.ts";
import { hasRoom } from "./client-slots.ts";
import { ApiError } from "./errors.ts";
import { actorOf, identifyBearer } from "./caller.ts";
import type { Env } from "./env.ts";
import { accessFor } from "./identity-grants.ts";
import { admissionClose, credentialOf, HeldCredentials, recheckCredential, socketEnds, type CloseInfo, type Credential, type CredentialMatch, type HeldSocket } from "./live-sockets.ts";
import { RAW_TAG, type RawGrant } from "./raw-terminal.ts";
import type { Sink, TerminalHub } from "./terminal-hub.ts";
import { ownerAdmits, type RawOwned } from "./terminal-ws-auth.ts";
import { AGENT_TAG, CLIENT_TAG, type ClientAttachment } from "./terminal-sockets.ts";

/** Close of a socket whose credential expired or was revoked (application code, as the auth closes). */
export const CREDENTIAL_CLOSE_CODE = 4001;

/**
 * Why a session-API client may not join (404 SESSION_NOT_FOUND: no session here; 503
 * AGENT_OFFLINE; 403 MAX_CLIENTS_REACHED when {@link hasRoom} says no), or null when it may.
 */
export function joinRefusal(state: { known: boolean; agentOnline: boolean; clients: number; maxClients: number; readonly: boolean }): ApiError | null {
  if (!state.known) return new ApiError(404, "SESSION_NOT_FOUND", "Terminal session not found");
  if (!state.agentOnline) return new ApiError(503, "AGENT_OFFLINE", "Terminal service unavailable: the host's agent is offline");
  if (!hasRoom(state.clients, state.maxClients, state.readonly)) {
    return new ApiError(403, "MAX_CLIENTS_REACHED", `Server at capacity: at most ${state.maxClients} clients per terminal`);
  }
  return null;
}

/**
 * How long a join waits when the session's data link is down but the Worker found the agent
 * online, in ms. That happens in two windows: the session is ending (the agent closed the data
 * link and its EXIT is on its way through the control link) or the data link is reconnecting.
 * Within this the link is back (the join proceeds) or the session is gone (404), instead of a
 * 503 AGENT_OFFLINE for an agent that is not offline.
 */
export const JOIN_LINK_WAIT_MS = 3_000;
/** Joins waiting so at once, per terminal; past it a join is answered at once. */
export const JOIN_LINK_WAITERS_MAX = 64;

/** Joins waiting for a session's data link to return or for the session to end (see JOIN_LINK_WAIT_MS). */
export class JoinWaiters {
  private readonly waiting = new Set<() => void>();

  /**
   * Resolves once `settled()` holds (re-checked on each `notify`), or after `timeoutMs`; at once
   * when it already holds or JOIN_LINK_WAITERS_MAX joins are waiting. Never rejects.
   */
  wait(settled: () => boolean, timeoutMs = JOIN_LINK_WAIT_MS): Promise<void> {
    if (settled() || this.waiting.size >= JOIN_LINK_WAITERS_MAX) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiting.delete(check);
        resolve();
      };
      const check = () => {
        if (settled()) done();
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiting.add(check);
    });
  }

  /** The data link or the session changed: waiting joins re-check. */
  notify(): void {
    for (const check of [...this.waiting]) check();
  }
}

/** A session-API client's credential that can end, as the Worker passes it on `/client`. */
export interface ClientEnds {
  credential: string;
  /** Expiry, epoch ms. */
  until: number;
  user?: string;
}

/** `/client?credential=…&until=…&user=…`: the credential that can end, or null when none (or malformed). */
export function readClientEnds(url: URL): ClientEnds | null {
  const until = Number(url.searchParams.get("until") ?? "");
  const credential = url.searchParams.get("credential");
  const user = url.searchParams.get("user");
  return credential !== null && Number.isSafeInteger(until) ? { credential, until, ...(user !== null ? { user } : {}) } : null;
}

/**
 * A raw client's first-message token: who it is (caller.ts) and its access to this terminal
 * (identity-grants.ts; a share link reaches only its own terminal), then, when `owned` is given
 * (a top-level `/api/terminals/{id}` socket), the session's owner (terminal-ws-auth.ts
 * ownerAdmits: another user's session is `foreign`, closed 4004). `session` answers the
 * terminal id of the session here, if one is known; joins to a known session are audited.
 */
export async function authorizeRawToken(env: Env, serverId: string, session: () => number | undefined, token: string, owned?: RawOwned): Promise<RawGrant> {
  const identity = await identifyBearer(env.DB, token, env.EDGETTY_API_KEY);
  if (!identity) return null;
  const access = await accessFor(env.DB, identity, serverId, session());
  if (!access) return "denied";
  if (owned && !(await ownerAdmits(identity, owned.owner))) return "foreign";
  const terminalId = session(); // read again: a data-link hello may have come meanwhile
  if (terminalId !== undefined) {
    const action = access === "write" ? "terminal.attach.write" : "terminal.attach.read";
    await recordAudit(env.DB, { actor: actorOf(identity), action, server_id: serverId, terminal_id: terminalId, detail: "open terminal websocket" });
  }
  // A share link or a user's token: its revocation or expiry closes the socket (live-sockets.ts).
  const ends = socketEnds(identity, credentialOf({ role: identity.role, via: "bearer", identity }));
  return { readonly: access !== "write", ...(ends ?? {}) };
}

/**
 * Why a socket of share link `id` may not be on terminal `terminalId` of `serverId` now (4001:
 * revoked, expired or another terminal's, or its server disabled or removed), or null when it may.
 */
async function shareRefusal(db: D1Database, id: string, serverId: string, terminalId: number, now = Date.now()): Promise<CloseInfo | null> {
  const row = await db
    .prepare("SELECT s.expires_at, v.enabled FROM share_links s LEFT JOIN servers v ON v.id = s.server_id WHERE s.id = ? AND s.server_id = ? AND s.terminal_id = ?")
    .bind(id, serverId, terminalId)
    .first<{ expires_at: number; enabled: number | null }>();
  if (row === null) return { code: CREDENTIAL_CLOSE_CODE, reason: "share link revoked" };
  if (row.expires_at <= now) return { code: CREDENTIAL_CLOSE_CODE, reason: "credential expired" };
  if (row.enabled === null) return { code: CREDENTIAL_CLOSE_CODE, reason: "Terminal server removed" };
  return row.enabled === 0 ? { code: CREDENTIAL_CLOSE_CODE, reason: "Terminal server disabled" } : null;
}

/** What {@link ClientCredentials} needs from its TerminalDO. */
export interface ClientCredentialsHost {
  ctx: DurableObjectState;
  env: Env;
  hub: TerminalHub;
  sinkFor(ws: WebSocket): Sink;
  /** This terminal's holder address (live-sockets.ts terminalHolder). */
  holder(): string;
  /** Points the "expiry" alarm slot at `at` (epoch ms); null clears it. */
  armExpiryAt(at: number | null): Promise<void>;
}

/** The credentials of a TerminalDO's open client sockets (session API and raw), read from their attachments. */
export class ClientCredentials {
  /** Users' tokens and browser sessions: revoking one closes its sockets here (live-sockets.ts). */
  private readonly held: HeldCredentials;

  constructor(private readonly host: ClientCredentialsHost) {
    this.held = new HeldCredentials({
      env: host.env,
      holder: () => host.holder(),
      held: () => this.heldSockets(),
      close: (ws, close) => {
        host.hub.removeClient(host.sinkFor(ws));
        host.sinkFor(ws).close(close.code, close.reason);
      },
      // Expiry is the "expiry" slot's, for every credential that ends (armExpiry, closeExpired()).
      armExpiry: () => this.armExpiry(),
    });
  }

  /** Open client sockets (session API and raw) with the attachment each carries. */
  private clientSockets(): [WebSocket, Partial<ClientAttachment>][] {
    const { ctx } = this.host;
    return [...ctx.getWebSockets(CLIENT_TAG), ...ctx.getWebSockets(RAW_TAG)]
      .filter((ws) => ws.readyState === WebSocket.OPEN)
      .map((ws) => [ws, (ws.deserializeAttachment() ?? {}) as Partial<ClientAttachment>]);
  }

  /** Points the expiry slot at the earliest credential expiry among open sockets. */
  async armExpiry(): Promise<void> {
    let earliest = Infinity;
    for (const [, a] of this.clientSockets()) if (typeof a.until === "number") earliest = Math.min(earliest, a.until);
    await this.host.armExpiryAt(earliest === Infinity ? null : earliest);
  }

  private closeSockets(match: (a: Partial<ClientAttachment>) => boolean, reason: string): number {
    let closed = 0;
    for (const [ws, a] of this.clientSockets()) {
      if (!match(a)) continue;
      this.host.hub.removeClient(this.host.sinkFor(ws));
      this.host.sinkFor(ws).close(CREDENTIAL_CLOSE_CODE, reason);
      closed++;
    }
    return closed;
  }

  /**
   * Records this terminal as holding `cred`'s sockets (live-sockets.ts; share links need no
   * record: their revocation calls their one terminal); null admits, else how to refuse.
   */
  async admit(cred: Credential): Promise<CloseInfo | null> {
    if (cred.id.startsWith("share:")) return null;
    const admission = await this.held.admit(cred);
    return admission === "held" ? null : admissionClose(admission);
  }

  /**
   * Just after a client with a credential that can end joined (`ws` accepted, its attachment set):
   * asks D1 again whether it may be here, and closes it if not — a share link revoked, expired or
   * its server disabled (4001), a user's grant gone or lowered under a writer (4003, as the
   * proxy's checks say it). Its auth passed in the Worker before the change, and the change's
   * sweep (share-api.ts, live-sockets.ts) ran before this socket was here to close: checking once
   * the socket is visible to that sweep, whichever of the two comes second sees the other.
   * Answers true when it stays.
   */
  async confirm(ws: WebSocket, serverId: string, terminalId: number): Promise<boolean> {
    const a = (ws.deserializeAttachment() ?? {}) as Partial<ClientAttachment>;
    if (typeof a.credential !== "string") return true;
    let close: CloseInfo | null;
    if (a.credential.startsWith("share:")) {
      close = await shareRefusal(this.host.env.DB, a.credential.slice("share:".length), serverId, terminalId);
    } else {
      const cred = { id: a.credential, userId: a.user ?? "", expiresAt: a.until ?? Number.MAX_SAFE_INTEGER };
      close = await recheckCredential(this.host.env.DB, cred, serverId, terminalId, a.readonly !== true);
    }
    if (close === null || ws.readyState !== WebSocket.OPEN) return close === null;
    this.host.hub.removeClient(this.host.sinkFor(ws));
    this.host.sinkFor(ws).close(close.code, close.reason);
    return false;
  }

  /** Open client sockets opened with a user's token or browser session. */
  private heldSockets(): HeldSocket[] {
    const out: HeldSocket[] = [];
    for (const [ws, a] of this.clientSockets()) {
      if (typeof a.credential !== "string" || a.credential.startsWith("share:")) continue;
      out.push({ ws, cred: { id: a.credential, userId: a.user ?? "", expiresAt: a.until ?? Number.MAX_SAFE_INTEGER }, writable: a.readonly !== true });
    }
    return out;
  }

  /** A socket closed: when it was the last one here with its user's credential, forget the D1 row. */
  async release(ws: WebSocket): Promise<void> {
    if (this.host.ctx.getTags(ws).includes(AGENT_TAG)) return;
    const a = (ws.deserializeAttachment() ?? {}) as Partial<ClientAttachment>;
    if (typeof a.credential === "string" && !a.credential.startsWith("share:")) {
      await this.held.released({ id: a.credential, userId: a.user ?? "", expiresAt: a.until ?? Number.MAX_SAFE_INTEGER }, ws);
    }
  }

  /** Closes the clients whose user's token or browser session `match` covers (a revocation); answers how many. */
  async closeMatching(match: CredentialMatch, close: CloseInfo): Promise<number> {
    const closed = this.held.close(match, close);
    await this.armExpiry();
    return closed;
  }

  /**
   * After a grant-side change: closes the clients of `users` (null: every user's) that may no
   * longer be here, or no longer write (live-sockets.ts recheckCredential); answers how many.
   */
  async recheck(users: readonly string[] | null, serverId: string, terminalId: number): Promise<number> {
    const closed = await this.held.recheck(users, serverId, terminalId);
    await this.armExpiry();
    return closed;
  }

  /** True while a client of this terminal authenticated with credential `id`. */
  holds(id: string): boolean {
    return this.held.holds(id);
  }

  /** Closes every client socket opened with `credential` (`share:<id>`); answers how many. */
  async closeCredential(credential: string, reason: string): Promise<number> {
    const closed = this.closeSockets((a) => a.credential === credential, reason);
    await this.armExpiry();
    return closed;
  }

  /** The expiry slot fired: closes the sockets whose credential expired by `now` (epoch ms), re-arms. */
  async closeExpired(now = Date.now()): Promise<void> {
    this.closeSockets((a) => typeof a.until === "number" && a.until <= now, "credential expired");
    await this.armExpiry();
  }
}
