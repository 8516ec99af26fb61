/**
 * HostDO: one per server. Holds the agent's control link (a hibernatable WebSocket), the index of
 * the server's sessions (SQLite, so listings work while the agent is away), and relays requests
 * to the agent: create, kill, list. Reconciles the index with the agent's own list whenever the
 * agent (re)connects.
 */
import { DurableObject } from "cloudflare:workers";
import {
  parseControl,
  type AgentFacts,
  type AgentToHost,
  type ControlOp,
  type ControlOps,
  type CreateSessionParams,
  type HostToAgent,
  type LiveSession,
  type SessionMeta,
} from "../shared/agent-protocol.ts";
import { ApiError } from "../shared/errors.ts";
import { EPHEMERAL_ID_MAX, EPHEMERAL_ID_MIN } from "../shared/validation.ts";
import { createTimeoutMs } from "../shared/kind-validation.ts";
import { readConfig, terminalConfig, type Env } from "./env.ts";
import { fail, ok, unwrap, type Result } from "./errors.ts";
import type { ScreenRequest, ScreenResult } from "../shared/screen.ts";
import { EdgeExecRelay, EXEC_PATH } from "./exec-relay.ts";
import { log } from "./log.ts";
import { sanitizeAgentFacts } from "./agent-facts.ts";
import { cleanDelta, COUNTER_NAMES, zeroCounters, type Counters, type ServerStats } from "./stats.ts";
import { EdgeTunnel, TUNNEL_PATH } from "./http-tunnel.ts";
import { EdgeWsTunnel, WS_TUNNEL_PATH } from "./ws-tunnel.ts";
import { checkTunnelAgentMsg } from "../shared/tunnel-protocol.ts";
import { SessionNames, type NamedSession } from "./open-terminal-names.ts";

/** Most agent requests in flight at once. */
export const MAX_PENDING_REQUESTS = 256;
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

interface Pending {
  resolve(value: unknown): void;
  reject(error: ApiError): void;
  timer: ReturnType<typeof setTimeout>;
}

export class HostDO extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly pending = new Map<number, Pending>();
  private nextRequestId = 1;
  /** Sessions a DELETE is ending right now (bounded by the config's maxSessionsPerServer). */
  private readonly deleting = new Set<number>();
  /** Open Terminal /execute calls relayed to the agent (exec.* messages). */
  private readonly execRelay = new EdgeExecRelay(() => this.agentSocket());
  /** Open Terminal file, port and proxy calls tunnelled to the agent (tun.* messages). */
  private readonly tunnel = new EdgeTunnel(() => this.agentSocket());
  /** WebSockets through `/proxy/{port}/…` (tun.ws* messages). */
  private readonly wsTunnel = new EdgeWsTunnel(() => this.agentSocket());
  /** Names and owners of `/api/terminals` sessions. */
  private readonly names: SessionNames;

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
  }

  // --- agent control link -----------------------------------------------------------------------

  override async fetch(request: Request): Promise<Response> {
    // An Open Terminal execute call (a fetch, not RPC: only a fetch's response stream tells this
    // DO when the HTTP client has gone away).
    const path = new URL(request.url).pathname;
    if (path === EXEC_PATH) return this.execRelay.fetch(request);
    if (path === TUNNEL_PATH) return this.tunnel.fetch(request);
    if (path === WS_TUNNEL_PATH) return this.wsTunnel.fetch(request);
    const serverId = request.headers.get("X-Edgetty-Server");
    if (!serverId || request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected an agent WebSocket", { status: 400 });
    }
    this.setHostValue("server_id", serverId);
    this.addStats({ agent_connects: 1, reconnects: this.hostValue("connected_at") === null ? 0 : 1 });
    this.setHostValue("connected_at", new Date().toISOString());
    for (const old of this.ctx.getWebSockets(AGENT_TAG)) {
      try {
        old.close(4000, "replaced by a newer agent link");
      } catch {
        /* already closed */
      }
    }
    this.failPending(new ApiError(503, "AGENT_OFFLINE", "The agent reconnected before answering"));
    this.execRelay.agentGone();
    this.tunnel.agentGone();
    this.wsTunnel.agentGone();
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server, [AGENT_TAG]);
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: ArrayBuffer | string): Promise<void> {
    try {
      if (typeof message !== "string") {
        const frame = new Uint8Array(message);
        if (!this.wsTunnel.onAgentBinary(frame)) this.tunnel.onAgentBinary(frame);
        return;
      }
      const msg = parseControl<AgentToHost>(message);
      const type = msg.t as string;
      if (type.startsWith("exec.")) return this.execRelay.onAgentMessage(msg);
      if (type.startsWith("tun.ws")) {
        const checked = checkTunnelAgentMsg(msg);
        if (checked) this.wsTunnel.onAgentMessage(checked);
        return;
      }
      if (type.startsWith("tun.")) return this.tunnel.onAgentMessage(msg);
      switch (msg.t) {
        case "hello":
          this.setHostValue("agent", JSON.stringify(sanitizeAgentFacts(msg.agent)));
          await this.reconcile(msg.sessions);
          break;
        case "reply": {
          const p = this.pending.get(msg.id);
          if (!p) break;
          this.pending.delete(msg.id);
          clearTimeout(p.timer);
          if (msg.ok) p.resolve(msg.result);
          else p.reject(new ApiError(msg.error.status, msg.error.code, msg.error.message));
          break;
        }
        case "exited":
          await this.removeSession(msg.terminal_id, msg.exit);
          break;
      }
    } catch (error) {
      this.addStats({ errors: 1 });
      log("error", "host.ws_message_failed", "HostDO.webSocketMessage failed; closing the agent link", { server: this.serverId(), error });
      try {
        ws.close(4400, "malformed control frame");
      } catch {
        /* closed */
      }
    }
  }

  override async webSocketClose(ws: WebSocket): Promise<void> {
    try {
      if (this.ctx.getWebSockets(AGENT_TAG).every((s) => s === ws)) {
        this.setHostValue("last_seen", new Date().toISOString());
        this.failPending(new ApiError(503, "AGENT_OFFLINE", "The host's agent went offline"));
        this.execRelay.agentGone();
        this.tunnel.agentGone();
        this.wsTunnel.agentGone();
      }
    } catch (error) {
      log("error", "host.ws_close_failed", "HostDO.webSocketClose failed", { server: this.serverId(), error });
    }
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    log("warn", "host.ws_error", "the agent control link failed", { server: this.serverId(), error });
    await this.webSocketClose(ws);
  }

  private agentSocket(): WebSocket | null {
    const sockets = this.ctx.getWebSockets(AGENT_TAG).filter((ws) => ws.readyState === WebSocket.OPEN);
    return sockets[sockets.length - 1] ?? null;
  }

  private failPending(error: ApiError): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(error);
    }
    this.pending.clear();
  }

  /** Sends a request to the agent and waits for its reply. */
  private request<K extends ControlOp>(op: K, params: ControlOps[K]["params"], timeoutMs = AGENT_REQUEST_TIMEOUT_MS): Promise<ControlOps[K]["result"]> {
    const ws = this.agentSocket();
    if (!ws) return Promise.reject(new ApiError(503, "AGENT_OFFLINE", "Terminal service unavailable: the host's agent is offline"));
    if (this.pending.size >= MAX_PENDING_REQUESTS) {
      return Promise.reject(new ApiError(429, "AGENT_BUSY", "Too many requests in flight to this host's agent"));
    }
    const id = this.nextRequestId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ApiError(504, "AGENT_TIMEOUT", `The host's agent did not answer ${op} in time`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      ws.send(JSON.stringify({ t: "req", id, op, params } satisfies HostToAgent));
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

  private terminal(serverId: string, terminalId: number) {
    return this.env.TERMINAL.get(this.env.TERMINAL.idFromName(`${serverId}:${terminalId}`));
  }

  private serverId(): string {
    return this.hostValue("server_id") ?? "";
  }

  /** The agent says what it runs: adopt what it has, forget what it lost. */
  private async reconcile(live: LiveSession[]): Promise<void> {
    const serverId = this.serverId();
    const config = readConfig(this.env);
    const liveIds = new Set(live.map((s) => s.terminal_id));
    for (const meta of this.allIndexed()) {
      if (!liveIds.has(meta.terminal_id)) await this.removeSession(meta.terminal_id, { exit_code: -1, signal: 0 });
    }
    for (const session of live) {
      if (!this.indexed(session.terminal_id)) {
        this.sql.exec("INSERT OR REPLACE INTO sessions (terminal_id, meta) VALUES (?, ?)", session.terminal_id, JSON.stringify(session));
        await this.terminal(serverId, session.terminal_id).configure(serverId, session, terminalConfig(config, session.ephemeral));
      }
    }
  }

  /**
   * Forgets a session and ends it at its TerminalDO. A session that ended by itself (its process
   * exited, or the agent lost it) keeps its command history readable; a deleted one does not.
   */
  private async removeSession(terminalId: number, exit: { exit_code: number; signal: number }, keepHistory = true): Promise<void> {
    if (!this.indexed(terminalId)) return; // already gone (e.g. the agent's late "exited" after a DELETE)
    this.sql.exec("DELETE FROM sessions WHERE terminal_id = ?", terminalId);
    this.names.forgetTerminal(terminalId);
    await this.terminal(this.serverId(), terminalId).end(exit, keepHistory && !this.deleting.has(terminalId));
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
  async createSession(serverId: string, params: CreateSessionParams): Promise<Result<{ status: "created" | "exists"; meta: SessionMeta }>> {
    try {
      this.setHostValue("server_id", serverId);
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
      this.sql.exec("INSERT OR REPLACE INTO sessions (terminal_id, meta) VALUES (?, ?)", meta.terminal_id, JSON.stringify(meta));
      unwrap(await this.terminal(serverId, meta.terminal_id).configure(serverId, meta, terminalConfig(readConfig(this.env), meta.ephemeral)));
      if (result.status === "created") this.addStats({ sessions_created: 1 });
      return ok({ status: result.status, meta });
    } catch (error) {
      return fail(error, "HostDO.createSession");
    }
  }

  /** Kills the session's process group and forgets it; clients get EXIT. */
  async deleteSession(serverId: string, terminalId: number, why = "deleted"): Promise<Result<null>> {
    try {
      this.setHostValue("server_id", serverId);
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
      log("info", "host.session_removed", `session ${serverId}:${terminalId} removed (${why})`, { server: serverId, terminal: terminalId, why });
      return ok(null);
    } catch (error) {
      return fail(error, "HostDO.deleteSession");
    } finally {
      this.deleting.delete(terminalId);
    }
  }

  async listSessions(serverId: string, historyLimit: number): Promise<Result<SessionListing[]>> {
    try {
      this.setHostValue("server_id", serverId);
      let live = new Map<number, LiveSession>();
      if (this.agentSocket()) {
        try {
          live = new Map((await this.request("list", {})).sessions.map((s) => [s.terminal_id, s]));
        } catch (error) {
          log("warn", "host.list_failed", "listing live sessions failed", { server: serverId, error });
        }
      }
      const metas = this.allIndexed();
      const infos = await Promise.all(metas.map((m) => this.terminal(serverId, m.terminal_id).info(historyLimit)));
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
  async screen(serverId: string, params: ScreenRequest): Promise<Result<ScreenResult>> {
    try {
      this.setHostValue("server_id", serverId);
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
  async stats(serverId: string): Promise<ServerStats> {
    const counters = zeroCounters();
    for (const row of this.sql.exec<{ name: string; value: number }>("SELECT name, value FROM stats").toArray()) {
      if ((COUNTER_NAMES as readonly string[]).includes(row.name)) counters[row.name as keyof Counters] = row.value;
    }
    const metas = this.allIndexed();
    const infos = await Promise.all(metas.map((m) => this.terminal(serverId, m.terminal_id).info(0)));
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
