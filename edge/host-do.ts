/**
 * HostDO: one per server. Holds the agent's control link (a hibernatable WebSocket), the index of
 * the server's sessions (SQLite, so listings work while the agent is away), and relays requests
 * to the agent: create, kill, list, screen, and the exec relay's calls. Reconciles the index with
 * the agent's own list whenever the agent (re)connects.
 *
 * Nothing the agent sends is trusted: every frame is decoded by shared/links/control.ts, a reply
 * is checked against the op it answers, and a hello's sessions are checked one by one (a bad
 * entry is refused alone, and the index changes all at once or not at all).
 */
import { DurableObject } from "cloudflare:workers";
import * as v from "valibot";
import {
  checkResult,
  checkSessions,
  decodeAgentToHost,
  encodeControl,
  LINK_INFLIGHT_MAX,
  SessionMetaSchema,
  type AgentFacts,
  type AgentToHost,
  type ControlOp,
  type ControlOps,
  type ControlRequest,
  type CreateSessionParams,
  type LiveSession,
  type SessionMeta,
} from "../shared/links/control.ts";
import { LinkDecodeError } from "../shared/links/codec.ts";
import { Correlator } from "../shared/links/correlator.ts";
import { ApiError } from "../shared/errors.ts";
import { EPHEMERAL_ID_MAX, EPHEMERAL_ID_MIN } from "../shared/validation.ts";
import { createTimeoutMs } from "../shared/kind-validation.ts";
import { readConfig, terminalConfig, type Env } from "./env.ts";
import { fail, ok, unwrap, type Result } from "./errors.ts";
import type { ScreenRequest, ScreenResult } from "../shared/screen.ts";
import { EdgeExecRelay, EXEC_PATH, type ExecJob } from "./exec-relay.ts";
import { log } from "./log.ts";
import { sanitizeAgentFacts } from "./agent-facts.ts";
import { cleanDelta, COUNTER_NAMES, zeroCounters, type Counters, type ServerStats } from "./stats.ts";
import { loadIdentity, terminalStub } from "./addresses.ts";
import { EdgeTunnel, TUNNEL_PATH } from "./http-tunnel.ts";
import { EdgeWsTunnel, WS_TUNNEL_PATH } from "./ws-tunnel.ts";
import { decodeTunnelBinary, isTunnelMessage, TUN_RES_BODY, TUN_WS_BINARY, type TunnelAgentMsg } from "../shared/links/tunnel.ts";
import { SessionNames, type NamedSession } from "./open-terminal-names.ts";

/** Most agent requests in flight at once (exec calls have their own cap; both share the link's). */
export const MAX_PENDING_REQUESTS = 256;
/** Refused hello entries named in one log line (the count is always logged). */
const REFUSED_LOGGED_MAX = 5;
/** How long the agent has to answer a request, in milliseconds. */
export const AGENT_REQUEST_TIMEOUT_MS = 20_000;
/** Random picks tried before scanning for a free ephemeral id. */
const EPHEMERAL_ID_PICKS = 32;

const AGENT_TAG = "agent";

/** A session as the terminal session API lists it. */
export interface SessionListing {
  id: number;
  shell: string;
  cwd: string;
  started_at: string;
  command_history: string[];
  clients: number;
  agent_online: boolean;
  ephemeral: boolean;
  cols?: number;
  rows?: number;
  title?: string;
  display?: string;
}

export interface HostStatus {
  online: boolean;
  agent: AgentFacts | null;
  sessions: number;
  /** When the agent was last heard from (ISO 8601): now while online; null if never. */
  last_seen: string | null;
}

/** A control request waiting for the agent's reply. */
interface Pending {
  kind: "control";
  op: ControlOp;
  resolve(value: unknown): void;
  reject(error: ApiError): void;
  /** Set right after the request gets its id. */
  timer: ReturnType<typeof setTimeout> | null;
}

export class HostDO extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** The one table of what waits on the agent: control requests and exec calls, by request id. */
  private readonly inflight = new Correlator<Pending | ExecJob>(LINK_INFLIGHT_MAX);
  /** Sessions a DELETE is ending right now (bounded by the config's maxSessionsPerServer). */
  private readonly deleting = new Set<number>();
  /** Open Terminal /execute calls relayed to the agent (exec.* messages). */
  private readonly execRelay = new EdgeExecRelay(() => this.agentSocket(), this.inflight);
  /** Open Terminal file, port and proxy calls tunnelled to the agent (tun.* messages, their own rids). */
  private readonly tunnel = new EdgeTunnel(() => this.agentSocket());
  /** WebSockets through `/proxy/{port}/…` (tun.ws* messages). */
  private readonly wsTunnel = new EdgeWsTunnel(() => this.agentSocket());
  /** Names and owners of `/api/terminals` sessions. */
  private readonly names: SessionNames;
  /** This object's server id: its name (addresses.ts), read once at construction. */
  private serverId = "";

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS sessions (
      terminal_id INTEGER PRIMARY KEY,
      meta TEXT NOT NULL
    )`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS host (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS stats (name TEXT PRIMARY KEY, value INTEGER NOT NULL)`);
    this.names = new SessionNames(this.sql);
    void ctx.blockConcurrencyWhile(async () => {
      // The SQL row is where objects made before names were read from ctx.id.name kept theirs.
      this.serverId = (await loadIdentity(ctx, "server_id")) ?? this.hostValue("server_id") ?? "";
    });
  }

  // --- agent control link -----------------------------------------------------------------------

  override async fetch(request: Request): Promise<Response> {
    // An Open Terminal execute call (a fetch, not RPC: only a fetch's response stream tells this
    // DO when the HTTP client has gone away).
    const path = new URL(request.url).pathname;
    if (path === EXEC_PATH) return this.execRelay.fetch(request);
    if (path === TUNNEL_PATH) return this.tunnel.fetch(request);
    if (path === WS_TUNNEL_PATH) return this.wsTunnel.fetch(request);
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected an agent WebSocket", { status: 400 });
    }
    this.addStats({ agent_connects: 1, reconnects: this.hostValue("connected_at") === null ? 0 : 1 });
    this.setHostValue("connected_at", new Date().toISOString());
    for (const old of this.ctx.getWebSockets(AGENT_TAG)) {
      try {
        old.close(4000, "replaced by a newer agent link");
      } catch {
        /* already closed */
      }
    }
    this.agentGone(new ApiError(503, "AGENT_OFFLINE", "The agent reconnected before answering"));
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server, [AGENT_TAG]);
    return new Response(null, { status: 101, webSocket: client });
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
        const frame = decodeTunnelBinary(new Uint8Array(message), [TUN_RES_BODY, TUN_WS_BINARY]);
        if (frame.kind === TUN_WS_BINARY) this.wsTunnel.onAgentBinary(new Uint8Array(message));
        else this.tunnel.onAgentBinary(new Uint8Array(message));
        return;
      }
      msg = decodeAgentToHost(message);
    } catch (error) {
      if (error instanceof LinkDecodeError) this.refuse(error.message, error.id);
      else log("error", "host.ws_message_failed", "HostDO.webSocketMessage failed", { server: this.serverId, error });
      return;
    }
    try {
      switch (msg.t) {
        case "hello":
          this.setHostValue("agent", JSON.stringify(sanitizeAgentFacts(msg.agent)));
          await this.reconcile(msg.sessions);
          break;
        case "reply":
          this.onReply(msg);
          break;
        case "exited":
          await this.removeSession(msg.terminal_id, msg.exit);
          break;
        default:
          if (isTunnelMessage(msg)) this.onTunnelMessage(msg as TunnelAgentMsg);
          else this.execRelay.onAgentMessage(msg);
      }
    } catch (error) {
      this.addStats({ errors: 1 });
      log("error", "host.ws_message_failed", "HostDO.webSocketMessage failed", { server: this.serverId, error });
    }
  }

  /** A checked `tun.*` frame: WebSocket ones to the WebSocket tunnel, the rest to the HTTP tunnel. */
  private onTunnelMessage(msg: TunnelAgentMsg): void {
    if (msg.t.startsWith("tun.ws")) this.wsTunnel.onAgentMessage(msg);
    else this.tunnel.onAgentMessage(msg);
  }

  /** Matches a reply to its request and checks its result against the request's op. */
  private onReply(msg: Extract<AgentToHost, { t: "reply" }>): void {
    const p = this.inflight.get(msg.id);
    if (p?.kind !== "control") return this.refuse(`reply ${msg.id} matches no control request in flight`, null);
    this.inflight.take(msg.id);
    clearTimeout(p.timer);
    if (!msg.ok) return p.reject(new ApiError(msg.error.status, msg.error.code, msg.error.message));
    try {
      p.resolve(checkResult(p.op, msg.id, msg.result));
    } catch (error) {
      if (!(error instanceof LinkDecodeError)) throw error;
      log("warn", "host.bad_reply", `refused the agent's reply: ${error.message}`, { server: this.serverId, op: p.op });
      p.reject(new ApiError(502, "AGENT_BAD_REPLY", `The host's agent answered ${p.op} with a malformed reply`));
    }
  }

  /** Logs a refused frame; a request it names fails now rather than at its timeout. */
  private refuse(reason: string, id: number | null): void {
    this.addStats({ errors: 1 });
    log("warn", "host.frame_refused", `refused a control frame: ${reason}`, { server: this.serverId });
    if (id === null) return;
    const entry = this.inflight.get(id);
    if (entry?.kind === "control") {
      this.inflight.take(id);
      clearTimeout(entry.timer);
      entry.reject(new ApiError(502, "AGENT_BAD_REPLY", `The host's agent answered ${entry.op} with a malformed frame`));
    } else if (entry?.kind === "exec") {
      this.execRelay.badReply(id);
    }
  }

  override async webSocketClose(ws: WebSocket): Promise<void> {
    try {
      if (this.ctx.getWebSockets(AGENT_TAG).every((s) => s === ws)) {
        this.setHostValue("last_seen", new Date().toISOString());
        this.agentGone(new ApiError(503, "AGENT_OFFLINE", "The host's agent went offline"));
      }
    } catch (error) {
      log("error", "host.ws_close_failed", "HostDO.webSocketClose failed", { server: this.serverId, error });
    }
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    log("warn", "host.ws_error", "the agent control link failed", { server: this.serverId, error });
    await this.webSocketClose(ws);
  }

  private agentSocket(): WebSocket | null {
    const sockets = this.ctx.getWebSockets(AGENT_TAG).filter((ws) => ws.readyState === WebSocket.OPEN);
    return sockets[sockets.length - 1] ?? null;
  }

  /** The control link is gone: every control request fails with `error`, every exec call ends. */
  private agentGone(error: ApiError): void {
    const exec: ExecJob[] = [];
    for (const [, entry] of this.inflight.drain()) {
      if (entry.kind === "exec") {
        exec.push(entry);
        continue;
      }
      clearTimeout(entry.timer);
      entry.reject(error);
    }
    this.execRelay.agentGone(exec);
    this.tunnel.agentGone();
    this.wsTunnel.agentGone();
  }

  /** Sends a request to the agent and waits for its reply. */
  private request<K extends ControlOp>(op: K, params: ControlOps[K]["params"], timeoutMs = AGENT_REQUEST_TIMEOUT_MS): Promise<ControlOps[K]["result"]> {
    const ws = this.agentSocket();
    if (!ws) return Promise.reject(new ApiError(503, "AGENT_OFFLINE", "Terminal service unavailable: the host's agent is offline"));
    const busy = () => new ApiError(429, "AGENT_BUSY", "Too many requests in flight to this host's agent");
    if (this.inflight.count("control") >= MAX_PENDING_REQUESTS) return Promise.reject(busy());
    return new Promise((resolve, reject) => {
      const entry: Pending = { kind: "control", op, resolve: resolve as (v: unknown) => void, reject, timer: null };
      const id = this.inflight.open(entry);
      if (id === null) return reject(busy());
      entry.timer = setTimeout(() => {
        if (this.inflight.take(id, entry)) reject(new ApiError(504, "AGENT_TIMEOUT", `The host's agent did not answer ${op} in time`));
      }, timeoutMs);
      ws.send(encodeControl({ t: "req", id, op, params } as ControlRequest));
    });
  }

  // --- the session index ----------------------------------------------------------------------

  private setHostValue(key: string, value: string): void {
    this.sql.exec("INSERT INTO host (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", key, value);
  }

  private hostValue(key: string): string | null {
    const row = this.sql.exec<{ value: string }>("SELECT value FROM host WHERE key = ?", key).toArray()[0];
    return row?.value ?? null;
  }

  private indexed(terminalId: number): SessionMeta | null {
    const row = this.sql.exec<{ meta: string }>("SELECT meta FROM sessions WHERE terminal_id = ?", terminalId).toArray()[0];
    return row ? (JSON.parse(row.meta) as SessionMeta) : null;
  }

  private allIndexed(): SessionMeta[] {
    return this.sql
      .exec<{ meta: string }>("SELECT meta FROM sessions ORDER BY terminal_id")
      .toArray()
      .map((r) => JSON.parse(r.meta) as SessionMeta);
  }

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
    const gone = this.allIndexed().filter((m) => !liveIds.has(m.terminal_id));
    const added = accepted.filter((s) => !this.indexed(s.terminal_id)).map((s) => v.parse(SessionMetaSchema, s));
    this.ctx.storage.transactionSync(() => {
      for (const meta of gone) this.sql.exec("DELETE FROM sessions WHERE terminal_id = ?", meta.terminal_id);
      for (const meta of added) this.indexSession(meta);
    });
    const results = await Promise.allSettled([
      ...gone.map((m) => this.terminal(m.terminal_id).end({ exit_code: -1, signal: 0 }, !this.deleting.has(m.terminal_id))),
      ...added.map(async (m) => unwrap(await this.terminal(m.terminal_id).configure(m, terminalConfig(config, m.ephemeral)))),
    ]);
    for (const r of results) {
      if (r.status === "rejected") log("error", "host.reconcile_terminal_failed", "telling a TerminalDO about reconciliation failed", { server: this.serverId, error: r.reason });
    }
  }

  private indexSession(meta: SessionMeta): void {
    this.sql.exec("INSERT OR REPLACE INTO sessions (terminal_id, meta) VALUES (?, ?)", meta.terminal_id, JSON.stringify(meta));
  }

  /**
   * Forgets a session and ends it at its TerminalDO. A session that ended by itself (its process
   * exited, or the agent lost it) keeps its command history readable; a deleted one does not.
   */
  private async removeSession(terminalId: number, exit: { exit_code: number; signal: number }, keepHistory = true): Promise<void> {
    if (!this.indexed(terminalId)) return; // already gone (e.g. the agent's late "exited" after a DELETE)
    this.sql.exec("DELETE FROM sessions WHERE terminal_id = ?", terminalId);
    this.names.forgetTerminal(terminalId);
    await this.terminal(terminalId).end(exit, keepHistory && !this.deleting.has(terminalId));
  }

  private allocateEphemeralId(): number {
    const taken = new Set(this.allIndexed().map((m) => m.terminal_id));
    const span = EPHEMERAL_ID_MAX - EPHEMERAL_ID_MIN + 1;
    for (let i = 0; i < EPHEMERAL_ID_PICKS; i++) {
      const id = EPHEMERAL_ID_MIN + Math.floor(Math.random() * span);
      if (!taken.has(id)) return id;
    }
    for (let id = EPHEMERAL_ID_MIN; id <= EPHEMERAL_ID_MAX; id++) if (!taken.has(id)) return id;
    throw new ApiError(429, "TOO_MANY_SESSIONS", "No free ephemeral terminal id");
  }

  // --- RPC from the Worker and TerminalDOs ------------------------------------------------------

  /**
   * Creates a session, or answers "exists" for a live one. `terminal_id` 0 asks for a free id
   * (ephemeral sessions, and WebSocket attaches without an id).
   */
  async createSession(params: CreateSessionParams): Promise<Result<{ status: "created" | "exists"; meta: SessionMeta }>> {
    try {
      if (params.terminal_id !== 0) {
        const existing = this.indexed(params.terminal_id);
        if (existing && this.agentSocket()) return ok({ status: "exists", meta: existing });
      } else {
        params = { ...params, terminal_id: this.allocateEphemeralId() };
      }
      const count = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM sessions").one().n;
      const { maxSessionsPerServer } = readConfig(this.env);
      if (count >= maxSessionsPerServer) {
        throw new ApiError(429, "TOO_MANY_SESSIONS", `At most ${maxSessionsPerServer} sessions per server`);
      }
      // A display wait or an SSH login happens before the agent answers (kind-validation.ts).
      const result = await this.request("create", params, createTimeoutMs(params, AGENT_REQUEST_TIMEOUT_MS));
      const meta = result.meta;
      if (meta.terminal_id !== params.terminal_id) {
        log("warn", "host.bad_reply", `the agent created terminal ${meta.terminal_id} when asked for ${params.terminal_id}`, { server: this.serverId });
        throw new ApiError(502, "AGENT_BAD_REPLY", "The host's agent created a different terminal than asked");
      }
      this.indexSession(meta);
      unwrap(await this.terminal(meta.terminal_id).configure(meta, terminalConfig(readConfig(this.env), meta.ephemeral)));
      if (result.status === "created") this.addStats({ sessions_created: 1 });
      return ok({ status: result.status, meta });
    } catch (error) {
      return fail(error, "HostDO.createSession");
    }
  }

  /** Kills the session's process group and forgets it; clients get EXIT. */
  async deleteSession(terminalId: number, why = "deleted"): Promise<Result<null>> {
    try {
      if (!this.indexed(terminalId)) throw new ApiError(404, "SESSION_NOT_FOUND", "Terminal session not found");
      // The agent's "exited" for this kill may arrive first: it must not keep the history.
      this.deleting.add(terminalId);
      if (this.agentSocket()) {
        try {
          await this.request("kill", { terminal_id: terminalId });
        } catch (error) {
          if (!(error instanceof ApiError) || error.status !== 404) throw error;
        }
      }
      // The agent reports the exit too; removing here makes DELETE final even while it is away.
      await this.removeSession(terminalId, { exit_code: -1, signal: 9 }, false);
      log("info", "host.session_removed", `session ${this.serverId}:${terminalId} removed (${why})`, { server: this.serverId, terminal: terminalId, why });
      return ok(null);
    } catch (error) {
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
          const { accepted, refused } = checkSessions((await this.request("list", {})).sessions, readConfig(this.env).maxSessionsPerServer);
          if (refused.length > 0) log("warn", "host.list_entries_refused", `refused ${refused.length} sessions in the agent's list: ${refused.slice(0, REFUSED_LOGGED_MAX).join("; ")}`, { server: this.serverId });
          live = new Map(accepted.map((s) => [s.terminal_id, s]));
        } catch (error) {
          log("warn", "host.list_failed", "listing live sessions failed", { server: this.serverId, error });
        }
      }
      const metas = this.allIndexed();
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
    return this.allIndexed();
  }

  /** Live sessions with their `/api/terminals` name and owner (unnamed: the decimal id, no owner). */
  async namedSessions(): Promise<{ meta: SessionMeta; name: string; owner: string | null }[]> {
    const names = this.names.all();
    return this.allIndexed().map((meta) => {
      const row = names.get(meta.terminal_id);
      return { meta, name: row?.name ?? String(meta.terminal_id), owner: row?.owner ?? null };
    });
  }

  /** Names a live session for `/api/terminals` (replacing any earlier binding of the name). */
  async nameSession(row: NamedSession): Promise<void> {
    if (this.indexed(row.terminal_id)) this.names.bind(row);
  }

  /** Asks the agent for a terminal's raw output, rendered screen or screenshot (shared/screen.ts). */
  async screen(params: ScreenRequest): Promise<Result<ScreenResult>> {
    try {
      if (!this.indexed(params.terminal_id)) throw new ApiError(404, "SESSION_NOT_FOUND", "Terminal session not found");
      return ok(await this.request("screen", params));
    } catch (error) {
      return fail(error, "HostDO.screen");
    }
  }

  async hasSession(terminalId: number): Promise<boolean> {
    return this.indexed(terminalId) !== null;
  }

  /** Adds a TerminalDO's (or this DO's own) counts to this server's counters (stats.ts). */
  async addStats(delta: Partial<Counters>): Promise<void> {
    for (const [name, n] of Object.entries(cleanDelta(delta))) {
      this.sql.exec("INSERT INTO stats (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", name, n);
    }
  }

  /** This server's numbers for `GET /api/v1/admin/stats`. */
  async stats(): Promise<ServerStats> {
    const serverId = this.serverId;
    const counters = zeroCounters();
    for (const row of this.sql.exec<{ name: string; value: number }>("SELECT name, value FROM stats").toArray()) {
      if ((COUNTER_NAMES as readonly string[]).includes(row.name)) counters[row.name as keyof Counters] = row.value;
    }
    const metas = this.allIndexed();
    const infos = await Promise.all(metas.map((m) => this.terminal(m.terminal_id).info(0)));
    const online = this.agentSocket() !== null;
    const agent = this.hostValue("agent");
    return {
      id: serverId,
      online,
      agent: agent ? (JSON.parse(agent) as AgentFacts) : null,
      connected_at: this.hostValue("connected_at"),
      last_seen: online ? new Date().toISOString() : this.hostValue("last_seen"),
      sessions: metas.length,
      clients: infos.reduce((sum, info) => sum + info.clients, 0),
      ...counters,
    };
  }

  async status(): Promise<HostStatus> {
    const agent = this.hostValue("agent");
    const online = this.agentSocket() !== null;
    return {
      online,
      agent: agent ? (JSON.parse(agent) as AgentFacts) : null,
      sessions: this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM sessions").one().n,
      last_seen: online ? new Date().toISOString() : this.hostValue("last_seen"),
    };
  }
}
