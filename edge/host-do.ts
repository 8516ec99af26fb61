/**
 * HostDO: one per server. Holds the agent's control link (host-link.ts: a hibernatable WebSocket,
 * the one request table, the exec relay and the tunnels), the index of the server's sessions
 * (host-store.ts: SQLite, so listings work while the agent is away), and serves the Worker's and
 * TerminalDOs' calls: create, kill, list, screen, stats. Reconciles the index with the agent's
 * own list whenever the agent (re)connects.
 *
 * Nothing the agent sends is trusted: every frame is decoded by shared/links/control.ts, a reply
 * is checked against the op it answers, and a hello's sessions are checked one by one (a bad
 * entry is refused alone, and the index changes all at once or not at all).
 */
import { DurableObject } from "cloudflare:workers";
import * as v from "valibot";
import {
  checkSessions,
  decodeAgentToHost,
  SessionMetaSchema,
  type AgentFacts,
  type AgentToHost,
  type CreateSessionParams,
  type LiveSession,
  type SessionMeta,
} from "../shared/links/control.ts";
import type { ExitReason } from "../shared/links/client.ts";
import { LinkDecodeError } from "../shared/links/codec.ts";
import { ApiError } from "../shared/errors.ts";
import { createTimeoutMs } from "../shared/kind-validation.ts";
import { EPHEMERAL_ID_MIN } from "../shared/validation.ts";
import { readConfig, terminalConfig, type Env } from "./env.ts";
import { fail, ok, unwrap, type Result } from "./errors.ts";
import type { ScreenRequest, ScreenResult } from "../shared/screen.ts";
import { log } from "./log.ts";
import { sanitizeAgentFacts } from "./agent-facts.ts";
import type { Counters, ServerStats } from "./stats.ts";
import { HostStore } from "./host-store.ts";
import { loadIdentity, terminalStub } from "./addresses.ts";
import { isTunnelMessage, type TunnelAgentMsg } from "../shared/links/tunnel.ts";
import { AGENT_LIST_TIMEOUT_MS, AGENT_REQUEST_TIMEOUT_MS, HostLink } from "./host-link.ts";
import type { CloseInfo, CredentialMatch } from "./live-sockets.ts";
import { UrlServerSockets } from "./url-server-ws.ts";
import { URL_WS_PATH } from "./ws-proxy.ts";
import { answerClose } from "./ws-close.ts";
import { SessionNames, type NamedSession } from "./open-terminal-names.ts";
import type { SessionListing } from "../shared/session-api.ts";

/** Refused hello entries named in one log line (the count is always logged). */
const REFUSED_LOGGED_MAX = 5;

/** A session as the terminal session API lists it (shared/session-api.ts). */
export type { SessionListing };

export interface HostStatus {
  online: boolean;
  agent: AgentFacts | null;
  sessions: number;
  /** When the agent was last heard from (ISO 8601): now while online; null if never. */
  last_seen: string | null;
}

export class HostDO extends DurableObject<Env> {
  /** The session index, host facts and counters (SQLite). */
  private readonly store: HostStore;
  /** The agent's control link: its socket, the one request table, the exec relay and the tunnels. */
  private readonly link = new HostLink({ ctx: this.ctx, serverId: () => this.serverId, countError: () => void this.addStats({ errors: 1 }) });
  /** Sessions a DELETE or the idle timeout is ending right now, with why (their EXIT says it; bounded by maxSessionsPerServer). */
  private readonly deleting = new Map<number, ExitReason>();
  /**
   * Terminal ids whose create awaits the agent's answer, with the last exit the agent reported for
   * that id meanwhile: a process that ends before its data link is up is "exited" before it is
   * "created", and indexing it after that would list a session nothing runs (attaching to it: 503
   * AGENT_OFFLINE). The exit names its session by `started_at`: a create that reuses the id of a
   * session still ending waits for that one's exit first, and that exit is not the new session's.
   */
  private readonly creating = new Map<number, { exit?: { exit_code: number; signal: number }; startedAt?: string | undefined; ephemeral?: boolean }>();
  /** Names and owners of `/api/terminals` sessions. */
  private readonly names: SessionNames;
  /** A URL server's proxy WebSockets, relayed from here (url-server-ws.ts). */
  private readonly urlSockets: UrlServerSockets;
  /** This object's server id: its name (addresses.ts), read once at construction. */
  private serverId = "";

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new HostStore(ctx.storage.sql);
    this.names = new SessionNames(ctx.storage.sql);
    this.urlSockets = new UrlServerSockets(env, () => this.serverId);
    void ctx.blockConcurrencyWhile(async () => {
      // The SQL row is where objects made before names were read from ctx.id.name kept theirs.
      this.serverId = (await loadIdentity(ctx, "server_id")) ?? this.store.hostValue("server_id") ?? "";
    });
  }

  // --- agent control link -----------------------------------------------------------------------

  override async fetch(request: Request): Promise<Response> {
    // A URL server's proxy WebSocket (url-server-ws.ts).
    if (new URL(request.url).pathname === URL_WS_PATH) return this.urlSockets.fetch(request);
    // An Open Terminal execute call or tunnel (host-link.ts), else the agent's control link.
    const relayed = this.link.relay(new URL(request.url).pathname, request);
    if (relayed) return relayed;
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected an agent WebSocket", { status: 400 });
    }
    this.addStats({ agent_connects: 1, reconnects: this.store.hostValue("connected_at") === null ? 0 : 1 });
    this.store.setHostValue("connected_at", new Date().toISOString());
    return this.link.accept();
  }

  /**
   * One control frame from the agent. A frame the link refuses is dropped alone (logged, naming
   * this server); if it names a request in flight, that request fails with 502 instead of waiting
   * for its timeout. The link stays up.
   */
  override async webSocketMessage(ws: WebSocket, message: ArrayBuffer | string): Promise<void> {
    let msg: AgentToHost;
    try {
      if (typeof message !== "string") {
        // Binary frames are tunnel bodies (tunnel.ts); any other kind is refused.
        this.link.onBinary(message);
        return;
      }
      msg = decodeAgentToHost(message);
    } catch (error) {
      if (error instanceof LinkDecodeError) this.link.refuse(error.message, error.id);
      else log("error", "host.ws_message_failed", "HostDO.webSocketMessage failed", { server: this.serverId, error });
      return;
    }
    try {
      switch (msg.t) {
        case "hello":
          this.store.setHostValue("agent", JSON.stringify(sanitizeAgentFacts(msg.agent)));
          await this.reconcile(msg.sessions);
          break;
        case "reply":
          this.link.onReply(msg);
          break;
        case "exited": {
          const creating = this.creating.get(msg.terminal_id);
          // Its create's answer is still to come: the session is ended once that has indexed it.
          if (creating && !this.store.indexed(msg.terminal_id)) {
            creating.exit = msg.exit;
            creating.startedAt = msg.started_at;
          } else await this.removeSession(msg.terminal_id, msg.exit);
          break;
        }
        default:
          if (isTunnelMessage(msg)) this.link.onTunnelMessage(msg as TunnelAgentMsg);
          else this.link.onExecMessage(msg);
      }
    } catch (error) {
      this.addStats({ errors: 1 });
      log("error", "host.ws_message_failed", "HostDO.webSocketMessage failed", { server: this.serverId, error });
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    answerClose(ws, code, reason);
    try {
      if (this.link.isLast(ws)) {
        this.store.setHostValue("last_seen", new Date().toISOString());
        this.link.gone(new ApiError(503, "AGENT_OFFLINE", "The host's agent went offline"));
      }
    } catch (error) {
      log("error", "host.ws_close_failed", "HostDO.webSocketClose failed", { server: this.serverId, error });
    }
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    log("warn", "host.ws_error", "the agent control link failed", { server: this.serverId, error });
    await this.webSocketClose(ws, 1011, "");
  }

  private agentSocket(): WebSocket | null {
    return this.link.socket();
  }

  // --- the session index ----------------------------------------------------------------------

  private terminal(terminalId: number) {
    return terminalStub(this.env, this.serverId, terminalId);
  }

  /**
   * The agent says what it runs: adopt what it has, forget what it lost. Its list is checked entry
   * by entry (a malformed or repeated entry, or one past the config's maxSessionsPerServer, is refused
   * alone and logged); the index then changes in one transaction, all or nothing. The TerminalDOs
   * are told afterwards, each on its own: one that fails is logged and the rest carry on.
   */
  private async reconcile(entries: unknown[]): Promise<void> {
    const config = readConfig(this.env);
    const { accepted, refused } = checkSessions(entries, config.maxSessionsPerServer);
    if (refused.length > 0) {
      const named = refused.slice(0, REFUSED_LOGGED_MAX).join("; ");
      const more = refused.length > REFUSED_LOGGED_MAX ? `; and ${refused.length - REFUSED_LOGGED_MAX} more` : "";
      log("warn", "host.hello_entries_refused", `refused ${refused.length} of ${entries.length} sessions in the agent's hello: ${named}${more}`, { server: this.serverId });
    }
    const liveIds = new Set(accepted.map((s) => s.terminal_id));
    const gone = this.store.allIndexed().filter((m) => !liveIds.has(m.terminal_id));
    const added = accepted.filter((s) => !this.store.indexed(s.terminal_id)).map((s) => v.parse(SessionMetaSchema, s));
    this.ctx.storage.transactionSync(() => {
      for (const meta of gone) this.store.remove(meta.terminal_id);
      for (const meta of added) this.store.index(meta);
    });
    const results = await Promise.allSettled([
      ...gone.map((m) => this.terminal(m.terminal_id).end({ exit_code: -1, signal: 0, reason: this.deleting.get(m.terminal_id) ?? "lost" }, !this.deleting.has(m.terminal_id))),
      ...added.map(async (m) => unwrap(await this.terminal(m.terminal_id).configure(m, terminalConfig(config, m.ephemeral)))),
    ]);
    for (const r of results) {
      if (r.status === "rejected") log("error", "host.reconcile_terminal_failed", "telling a TerminalDO about reconciliation failed", { server: this.serverId, error: r.reason });
    }
  }

  /**
   * Forgets a session and ends it at its TerminalDO. A session that ended by itself (its process
   * exited, or the agent lost it) keeps its command history readable; a deleted one does not.
   */
  private async removeSession(terminalId: number, exit: { exit_code: number; signal: number }, keepHistory = true): Promise<void> {
    if (!this.store.indexed(terminalId)) return; // already gone (e.g. the agent's late "exited" after a DELETE)
    this.store.remove(terminalId);
    this.names.forgetTerminal(terminalId);
    const reason = this.deleting.get(terminalId);
    await this.terminal(terminalId).end(reason ? { ...exit, reason } : exit, keepHistory && reason === undefined);
  }

  // --- RPC from the Worker and TerminalDOs ------------------------------------------------------

  /**
   * Creates a session, or answers "exists" for a live one. `terminal_id` 0 asks for a free id
   * (ephemeral sessions, and WebSocket attaches without an id). `maxEphemeral`: refuse (429
   * TOO_MANY_SESSIONS) when the server already holds that many ephemeral sessions of the
   * ephemeral id range (the Open Terminal API's OPEN_TERMINAL_MAX_SESSIONS). Both limits count
   * the creates still waiting for the agent, so calls at once cannot pass them together.
   */
  async createSession(params: CreateSessionParams, maxEphemeral?: number): Promise<Result<{ status: "created" | "exists"; meta: SessionMeta }>> {
    try {
      if (params.terminal_id !== 0) {
        const existing = this.store.indexed(params.terminal_id);
        if (existing && this.agentSocket()) return ok({ status: "exists", meta: existing });
      } else {
        params = { ...params, terminal_id: this.store.allocateEphemeralId(this.creating) };
      }
      const pendingNew = [...this.creating.entries()].filter(([id]) => id !== params.terminal_id && !this.store.indexed(id));
      const { maxSessionsPerServer } = readConfig(this.env);
      if (this.store.count() + pendingNew.length >= maxSessionsPerServer) {
        throw new ApiError(429, "TOO_MANY_SESSIONS", `At most ${maxSessionsPerServer} sessions per server`);
      }
      if (maxEphemeral !== undefined) {
        const isEphemeral = (id: number, ephemeral: boolean | undefined) => ephemeral === true && id >= EPHEMERAL_ID_MIN;
        const held = this.store.allIndexed().filter((m) => isEphemeral(m.terminal_id, m.ephemeral)).length;
        const coming = pendingNew.filter(([id, p]) => isEphemeral(id, p.ephemeral)).length;
        if (held + coming >= maxEphemeral) throw new ApiError(429, "TOO_MANY_SESSIONS", `Maximum number of terminal sessions (${maxEphemeral}) reached`);
      }
      const id = params.terminal_id;
      const pending = this.creating.get(id) ?? { ephemeral: params.ephemeral };
      const mine = !this.creating.has(id);
      this.creating.set(id, pending);
      let result;
      try {
        // A display wait or an SSH login happens before the agent answers (kind-validation.ts).
        result = await this.link.request("create", params, createTimeoutMs(params, AGENT_REQUEST_TIMEOUT_MS));
      } finally {
        if (mine) this.creating.delete(id);
      }
      const meta = result.meta;
      if (meta.terminal_id !== id) {
        log("warn", "host.bad_reply", `the agent created terminal ${meta.terminal_id} when asked for ${id}`, { server: this.serverId });
        throw new ApiError(502, "AGENT_BAD_REPLY", "The host's agent created a different terminal than asked");
      }
      this.store.index(meta);
      unwrap(await this.terminal(meta.terminal_id).configure(meta, terminalConfig(readConfig(this.env), meta.ephemeral)));
      if (result.status === "created") this.addStats({ sessions_created: 1 });
      // It ended while being created: forget it now that it is indexed (its clients get EXIT, its
      // history stays). Not for an exit of the session that had the id before (another start time),
      // nor one that names none (an older agent): the session stays, as it did before.
      if (pending.exit && pending.startedAt === meta.started_at) await this.removeSession(id, pending.exit);
      return ok({ status: result.status, meta });
    } catch (error) {
      return fail(error, "HostDO.createSession");
    }
  }

  /** Kills the session's process group and forgets it; clients get EXIT. */
  async deleteSession(terminalId: number, why: ExitReason = "deleted"): Promise<Result<null>> {
    try {
      if (!this.store.indexed(terminalId)) throw new ApiError(404, "SESSION_NOT_FOUND", "Terminal session not found");
      // The agent's "exited" for this kill may arrive first: it must not keep the history.
      this.deleting.set(terminalId, why);
      // Whichever EXIT reaches the clients first (the agent's for the kill, or ours below) says why.
      // Only words for the clients: a TerminalDO that cannot take them does not stop the DELETE.
      await this.terminal(terminalId)
        .endingBecause(why)
        .catch((error: unknown) => log("warn", "host.ending_reason_failed", "telling a TerminalDO why it ends failed", { server: this.serverId, terminal: terminalId, error }));
      if (this.agentSocket()) {
        try {
          await this.link.request("kill", { terminal_id: terminalId });
        } catch (error) {
          if (!(error instanceof ApiError) || error.status !== 404) throw error;
        }
      }
      // The agent reports the exit too; removing here makes DELETE final even while it is away.
      await this.removeSession(terminalId, { exit_code: -1, signal: 9 }, false);
      log("info", "host.session_removed", `session ${this.serverId}:${terminalId} removed (${why})`, { server: this.serverId, terminal: terminalId, why });
      return ok(null);
    } catch (error) {
      // Not ended after all (the kill failed): a later exit of its own must not say "deleted".
      if (this.deleting.has(terminalId) && this.store.indexed(terminalId)) void this.terminal(terminalId).endingBecause(null).catch(() => {});
      return fail(error, "HostDO.deleteSession");
    } finally {
      this.deleting.delete(terminalId);
    }
  }

  async listSessions(historyLimit: number): Promise<Result<SessionListing[]>> {
    try {
      let live = new Map<number, LiveSession>();
      if (this.agentSocket()) {
        try {
          const { accepted, refused } = checkSessions((await this.link.request("list", {}, AGENT_LIST_TIMEOUT_MS)).sessions, readConfig(this.env).maxSessionsPerServer);
          if (refused.length > 0) log("warn", "host.list_entries_refused", `refused ${refused.length} sessions in the agent's list: ${refused.slice(0, REFUSED_LOGGED_MAX).join("; ")}`, { server: this.serverId });
          live = new Map(accepted.map((s) => [s.terminal_id, s]));
        } catch (error) {
          log("warn", "host.list_failed", "listing live sessions failed", { server: this.serverId, error });
        }
      }
      const metas = this.store.allIndexed();
      const infos = await Promise.all(metas.map((m) => this.terminal(m.terminal_id).info(historyLimit)));
      return ok(
        metas.map((meta, i): SessionListing => {
          const l = live.get(meta.terminal_id);
          const info = infos[i]!;
          const title = l?.title ?? info.title ?? undefined;
          return {
            id: meta.terminal_id,
            shell: meta.shell,
            cwd: l?.cwd ?? meta.cwd,
            started_at: meta.started_at,
            command_history: info.command_history,
            clients: info.clients,
            agent_online: info.agent_online,
            ephemeral: meta.ephemeral,
            ...(l ? { cols: l.cols, rows: l.rows } : {}),
            ...(title ? { title } : {}),
            ...(meta.display ? { display: meta.display } : {}),
          };
        }),
      );
    } catch (error) {
      return fail(error, "HostDO.listSessions");
    }
  }

  /** The index's sessions, oldest id first (the Open Terminal API lists these). */
  async sessionMetas(): Promise<SessionMeta[]> {
    return this.store.allIndexed();
  }

  /** Live sessions with their `/api/terminals` name and owner (unnamed: the decimal id, no owner). */
  async namedSessions(): Promise<{ meta: SessionMeta; name: string; owner: string | null }[]> {
    const names = this.names.all();
    const taken = new Set([...names.values()].map((row) => row.name));
    const sessions: { meta: SessionMeta; name: string; owner: string | null }[] = [];
    for (const meta of this.store.allIndexed()) {
      const row = names.get(meta.terminal_id);
      // A session without a name goes by its id, unless a named one already answers to it (an
      // X-Session-Id "77" and the session API's terminal 77): one name, one session; the other
      // stays reachable through the session API.
      if (!row && taken.has(String(meta.terminal_id))) continue;
      sessions.push({ meta, name: row?.name ?? String(meta.terminal_id), owner: row?.owner ?? null });
    }
    return sessions;
  }

  /** Names a live session for `/api/terminals` (replacing any earlier binding of the name). */
  async nameSession(row: NamedSession): Promise<void> {
    if (this.store.indexed(row.terminal_id)) this.names.bind(row);
  }

  /** Asks the agent for a terminal's raw output, rendered screen or screenshot (shared/screen.ts). */
  async screen(params: ScreenRequest): Promise<Result<ScreenResult>> {
    try {
      if (!this.store.indexed(params.terminal_id)) throw new ApiError(404, "SESSION_NOT_FOUND", "Terminal session not found");
      return ok(await this.link.request("screen", params));
    } catch (error) {
      return fail(error, "HostDO.screen");
    }
  }

  async hasSession(terminalId: number): Promise<boolean> {
    return this.store.indexed(terminalId) !== null;
  }

  /** Adds a TerminalDO's (or this DO's own) counts to this server's counters (stats.ts). */
  async addStats(delta: Partial<Counters>): Promise<void> {
    this.store.addStats(delta);
  }

  /** This server's numbers for `GET /api/v1/admin/stats`. */
  async stats(): Promise<ServerStats> {
    const serverId = this.serverId;
    const counters = this.store.counters();
    const metas = this.store.allIndexed();
    const infos = await Promise.all(metas.map((m) => this.terminal(m.terminal_id).info(0)));
    const online = this.agentSocket() !== null;
    const agent = this.store.hostValue("agent");
    return {
      id: serverId,
      online,
      agent: agent ? (JSON.parse(agent) as AgentFacts) : null,
      connected_at: this.store.hostValue("connected_at"),
      last_seen: online ? new Date().toISOString() : this.store.hostValue("last_seen"),
      sessions: metas.length,
      clients: infos.reduce((sum, info) => sum + info.clients, 0),
      ...counters,
    };
  }

  /** Closes the URL-server WebSockets relayed here that `match` covers (live-sockets.ts); answers how many. */
  async closeCredentialSockets(match: CredentialMatch, close: CloseInfo): Promise<number> {
    return this.urlSockets.closeCredentialSockets(match, close);
  }

  /** A grant, membership or server change: closes the relays of `users` (null: every user's) that lost their access; answers how many. */
  async recheckSockets(users: string[] | null): Promise<number> {
    return this.urlSockets.recheck(users);
  }

  /** True while a WebSocket relayed here was opened with credential `id`. */
  async holdsCredential(id: string): Promise<boolean> {
    return this.urlSockets.credentials.holds(id);
  }

  /**
   * The server's agent token changed (or the server went): closes the agent's control link and
   * every terminal's data link with `close`, so a holder of the old token keeps nothing open (it
   * could otherwise go on receiving users' keystrokes); answers how many links closed. Sessions
   * are bounded by the agent's session limit.
   */
  async dropAgent(close: CloseInfo): Promise<number> {
    let closed = this.link.drop(close);
    const ids = (await this.sessionMetas()).map((m) => m.terminal_id);
    const results = await Promise.allSettled(ids.map((id) => this.terminal(id).dropAgent(close)));
    for (const r of results) if (r.status === "fulfilled") closed += r.value;
    return closed;
  }

  /** True while the agent's control link is up: `status().online`, without reading anything stored (asked on every client join). */
  async agentOnline(): Promise<boolean> {
    return this.agentSocket() !== null;
  }

  async status(): Promise<HostStatus> {
    const agent = this.store.hostValue("agent");
    const online = this.agentSocket() !== null;
    return {
      online,
      agent: agent ? (JSON.parse(agent) as AgentFacts) : null,
      sessions: this.store.count(),
      last_seen: online ? new Date().toISOString() : this.store.hostValue("last_seen"),
    };
  }
}
