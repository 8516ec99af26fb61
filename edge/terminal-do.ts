/**
 * TerminalDO: one per (server_id, terminal_id). The meeting point of a terminal's agent data link
 * and its clients, all hibernatable WebSockets accepted here; the fan-out logic lives in
 * TerminalHub. Storage keeps what must outlive the instance: the session's metadata, its limits
 * and its window title. An alarm removes the session after it has sat without clients too long.
 * Socket tags, attachments and the join `info` frame are in terminal-sockets.ts; admitting clients by credential
 * and closing them when it ends, in terminal-admission.ts; raw clients, in raw-terminal.ts.
 */
import { DurableObject } from "cloudflare:workers";
import type { ExitInfo, ExitReason, TerminalSize } from "../shared/links/client.ts";
import type { DataHello } from "../shared/links/data.ts";
import type { SessionMeta } from "../shared/links/session.ts";
import type { Env, TerminalConfig } from "./env.ts";
import { DEFAULT_MAX_CLIENTS } from "./env.ts";
import { ApiError, errorResponse, fail, ok, type Result } from "./errors.ts";
import { HistoryStore } from "./history.ts";
import type { CommandRecord } from "../shared/history.ts";
import { TerminalHub, type Sink } from "./terminal-hub.ts";
import { isPendingRaw, RAW_TAG, RawClients, rawSinkOf } from "./raw-terminal.ts";
import { endShareLinks } from "./share-links.ts";
import { AlarmSlots } from "./alarm-slots.ts";
import { log } from "./log.ts";
import { savedReading } from "./client-reading.ts";
import { CounterBatch } from "./stats.ts";
import { hostStub, loadIdentity, parseTerminalName } from "./addresses.ts";
import { terminalHolder, type CloseInfo, type CredentialMatch } from "./live-sockets.ts";
import { readRawOwned, readRawProxy, verifyProxySocket } from "./terminal-ws-auth.ts";
import { AGENT_TAG, CLIENT_TAG, countFrameBytes, infoFrame, type ClientAttachment } from "./terminal-sockets.ts";
import { answerClose } from "./ws-close.ts";
import { authorizeRawToken, ClientCredentials, JoinWaiters, joinRefusal, readClientEnds, type ClientEnds } from "./terminal-admission.ts";

/** Live facts for listings. */
export interface TerminalLiveInfo {
  clients: number;
  /** Most recent command lines, oldest first. */
  command_history: string[];
  agent_online: boolean;
  meta: SessionMeta | null;
  title: string | null;
}

/** Adapts a WebSocket to a Sink; writes after close are dropped, never thrown. */
function sinkOf(ws: WebSocket): Sink {
  return {
    send(bytes) {
      try {
        ws.send(bytes);
      } catch {
        /* closed underneath us: its close event cleans up */
      }
    },
    close(code, reason) {
      try {
        ws.close(code, reason);
      } catch {
        /* already closed */
      }
    },
  };
}

export class TerminalDO extends DurableObject<Env> {
  private readonly hub: TerminalHub;
  /** Open Terminal WebSocket clients (raw PTY bytes, first-message auth). */
  private readonly raw: RawClients;
  /** Clients' credentials that can end: share links, users' tokens and sessions (terminal-admission.ts). */
  private readonly credentials: ClientCredentials;
  /** The one alarm, shared by idle clean-up and raw clients' auth windows. */
  private readonly alarms: AlarmSlots<"idle" | "raw-auth" | "expiry">;
  private readonly sinks = new Map<WebSocket, Sink>();
  /** The socket behind each sink (the reverse of `sinks`), for attachments. */
  private readonly socketOf = new WeakMap<Sink, WebSocket>();
  /** This object's server, from its name `${server_id}:${terminal_id}` (addresses.ts). */
  private serverId = "";
  private meta: SessionMeta | null = null;
  private config: TerminalConfig = { maxClients: DEFAULT_MAX_CLIENTS, idleTimeoutMs: 0 };
  private title: string | null = null;
  /** Command records from the shell (SQLite; see history.ts). */
  private readonly history: HistoryStore;
  /** The session ended by itself and its history is still served. */
  private historyKept = false;
  /** Joins waiting for the data link to return or the session to end. */
  private readonly joins = new JoinWaiters();
  /**
   * The forgettings of ended sessions, one after the other (forgetLater): an EXIT's (which keeps
   * the history) and a DELETE's (which drops it) can come together, and their storage writes
   * must not interleave. end() and configure() wait for it.
   */
  private forgetting: Promise<void> = Promise.resolve();
  /** What an EXIT from the agent does to the history (a DELETE sets it false for its exit). */
  private keepHistoryOnExit = true;
  /** This terminal's counts, reported to its server's HostDO (stats.ts). */
  private readonly counters = new CounterBatch(async (delta) => {
    if (this.serverId) await hostStub(this.env, this.serverId).addStats(delta);
  });

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.history = new HistoryStore(ctx.storage.sql);
    this.hub = new TerminalHub({
      info: (client) => infoFrame({ serverId: this.serverId, meta: this.meta, size: this.size, title: this.title, clients: this.hub.clients.size, agentOnline: this.hub.agentOnline }, client.readonly),
      onHello: (hello) => this.onHello(hello),
      refused: (reason) => {
        this.counters.add("errors");
        log("warn", "terminal.frame_refused", `refused a data-link frame: ${reason}`, { server: this.serverId, terminal: this.meta?.terminal_id });
      },
      onSize: (size) => {
        this.size = size;
        // Kept across hibernation: INFO tells read-only joiners the PTY's size (docs/protocol.md).
        void this.ctx.storage.put("size", size);
      },
      onTitle: (title) => {
        this.title = title;
        void this.ctx.storage.put("title", title);
      },
      onHistory: (record) => {
        if (this.meta) this.history.upsert(record);
      },
      onExit: () => {
        void this.forgetLater(this.keepHistoryOnExit);
      },
      onClientChanged: (sink, client) => {
        const ws = this.socketOf.get(sink);
        if (!ws) return;
        const old = (ws.deserializeAttachment() ?? {}) as Partial<ClientAttachment>;
        ws.serializeAttachment({ ...old, id: client.id, readonly: client.readonly, paused: client.paused, reading: savedReading(client.flow) } satisfies ClientAttachment);
      },
    });
    this.alarms = new AlarmSlots(ctx.storage);
    this.raw = new RawClients({
      ctx,
      hub: this.hub,
      authorize: (token, owned) => authorizeRawToken(this.env, this.serverId, () => this.meta?.terminal_id, token, owned),
      verifyProxy: (token, proxy) => verifyProxySocket(this.env, this.serverId, token, proxy, this.meta?.terminal_id),
      admit: (cred) => this.credentials.admit(cred),
      confirm: (ws) => this.credentials.confirm(ws, this.serverId, this.terminalId()),
      sessionKnown: () => this.meta !== null,
      maxClients: () => this.config.maxClients,
      sinkFor: (ws) => this.sinkFor(ws),
      onJoin: () => {
        this.counters.add("client_connects");
        this.clearIdle();
        void this.credentials.armExpiry();
      },
      armAuthDeadline: (at) => (at === null ? this.alarms.clear("raw-auth") : this.alarms.set("raw-auth", at)),
    });
    // Users' tokens and browser sessions: revoking one closes its sockets here (live-sockets.ts).
    this.credentials = new ClientCredentials({
      ctx,
      env,
      hub: this.hub,
      sinkFor: (ws) => this.sinkFor(ws),
      holder: () => terminalHolder(this.serverId, this.meta?.terminal_id ?? parseTerminalName(ctx.id.name ?? "")?.terminalId ?? 0),
      armExpiryAt: (at) => (at === null ? this.alarms.clear("expiry") : this.alarms.set("expiry", at)),
    });
    void ctx.blockConcurrencyWhile(async () => {
      const stored = await ctx.storage.get(["server_id", "meta", "config", "title", "history_kept", "size"]);
      // "server_id": where objects made before names were read from ctx.id.name kept theirs.
      this.serverId = parseTerminalName((await loadIdentity(ctx, "name")) ?? "")?.serverId ?? (stored.get("server_id") as string | undefined) ?? "";
      this.historyKept = stored.get("history_kept") === true;
      this.meta = (stored.get("meta") as SessionMeta | undefined) ?? null;
      this.config = (stored.get("config") as TerminalConfig | undefined) ?? this.config;
      this.title = (stored.get("title") as string | undefined) ?? null;
      this.size = (stored.get("size") as TerminalSize | undefined) ?? this.size;
      // After hibernation the sockets are still here; their in-memory state is not.
      for (const ws of ctx.getWebSockets(AGENT_TAG)) this.hub.attachAgent(this.sinkFor(ws), true);
      for (const ws of [...ctx.getWebSockets(CLIENT_TAG), ...ctx.getWebSockets(RAW_TAG)]) {
        const a = ws.deserializeAttachment() as ClientAttachment | null;
        if (isPendingRaw(a)) this.raw.restore(ws, a);
        else if (a) this.hub.restoreClient(this.sinkFor(ws), { ...a, offset: null, trustNext: !a.paused }, a.reading);
      }
    });
  }

  private sinkFor(ws: WebSocket): Sink {
    let sink = this.sinks.get(ws);
    if (!sink) {
      sink = this.ctx.getTags(ws).includes(RAW_TAG) ? rawSinkOf(ws) : sinkOf(ws);
      this.sinks.set(ws, sink);
      this.socketOf.set(sink, ws);
    }
    return sink;
  }

  private size = { cols: 80, rows: 24 };

  /**
   * False once this instance has cleared the idle slot and not set it since: a join then costs no
   * storage writes (a join storm would otherwise clear it, and re-arm the alarm, on every join).
   * True at start, as a slot may survive from before an eviction.
   */
  private idleMaybeArmed = true;

  private clearIdle(): void {
    if (!this.idleMaybeArmed) return;
    this.idleMaybeArmed = false;
    void this.alarms.clear("idle");
  }

  private onHello(hello: DataHello): boolean {
    if (this.meta && this.meta.terminal_id !== hello.meta.terminal_id) {
      log("warn", "terminal.hello_refused", `refused a data-link hello for terminal ${hello.meta.terminal_id}`, { server: this.serverId, terminal: this.meta.terminal_id });
      return false;
    }
    // Another session under this terminal id (or the ended one's kept history): not ours.
    if (this.historyKept || (this.meta && this.meta.started_at !== hello.meta.started_at)) this.history.clear();
    if (this.historyKept) {
      this.historyKept = false;
      void this.ctx.storage.delete("history_kept");
    }
    this.meta = hello.meta;
    this.size = hello.size;
    void this.ctx.storage.put({ meta: hello.meta, size: hello.size });
    return true;
  }

  // --- HTTP: the two kinds of WebSocket that meet here ------------------------------------------

  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/agent") {
      this.counters.add("agent_connects");
      if (this.meta) this.counters.add("reconnects");
      return this.acceptAgent();
    }
    if (url.pathname === "/client") {
      return this.acceptClient(url.searchParams.get("readonly") === "1", url.searchParams.get("size_updates") === "1", readClientEnds(url));
    }
    if (url.pathname === "/raw") {
      // Counted as a client connect once it authenticates (onJoin): before that it is nobody.
      return this.raw.accept(readRawProxy(url), readRawOwned(url));
    }
    return errorResponse("terminal", new ApiError(404, "NOT_FOUND", "No such route"));
  }

  private acceptAgent(): Response {
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.closeAgentLinks({ code: 4000, reason: "replaced by a newer link" });
    this.ctx.acceptWebSocket(server, [AGENT_TAG]);
    this.hub.attachAgent(this.sinkFor(server), false);
    this.joins.notify();
    return new Response(null, { status: 101, webSocket: client });
  }

  private async acceptClient(readonly: boolean, sizeUpdates: boolean, ends: ClientEnds | null): Promise<Response> {
    // The Worker found the agent online: a missing data link is a session ending or relinking.
    await this.joins.wait(() => this.meta === null || this.hub.agentOnline);
    const full = joinRefusal({ known: this.meta !== null, agentOnline: this.hub.agentOnline, clients: this.hub.clientCount, maxClients: this.config.maxClients, readonly });
    if (full) return errorResponse("terminal", full);
    const refused = ends ? await this.credentials.admit({ id: ends.credential, userId: ends.user ?? "", expiresAt: ends.until }) : null;
    if (refused) return errorResponse("terminal", new ApiError(401, "UNAUTHORIZED", refused.reason));
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    const attachment: ClientAttachment = { id: crypto.randomUUID(), readonly, paused: false, ...(sizeUpdates ? { sizeUpdates } : {}), ...(ends ?? {}) };
    this.ctx.acceptWebSocket(server, [CLIENT_TAG]);
    server.serializeAttachment(attachment);
    this.hub.addClient(this.sinkFor(server), { id: attachment.id, readonly, paused: false, offset: null, trustNext: false, ...(sizeUpdates ? { sizeUpdates } : {}) });
    this.counters.add("client_connects");
    this.clearIdle();
    if (ends) {
      void this.credentials.armExpiry();
      // Its access may have been taken away since the Worker checked it: closed now if so.
      await this.credentials.confirm(server, this.serverId, this.terminalId());
    }
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Closes the agent's data link with `close` (its token is no longer valid: HostDO.dropAgent); answers how many sockets closed. */
  async dropAgent(close: CloseInfo): Promise<number> {
    return this.closeAgentLinks(close);
  }

  /** Detaches and closes every agent socket of this terminal; answers how many. */
  private closeAgentLinks(close: CloseInfo): number {
    const links = this.ctx.getWebSockets(AGENT_TAG);
    for (const ws of links) {
      this.hub.detachAgent(this.sinkFor(ws));
      this.sinkFor(ws).close(close.code, close.reason);
    }
    return links.length;
  }

  // --- credentials that end: share links, users' tokens and sessions (terminal-admission.ts) ---

  /** Closes the clients whose user's token or browser session `match` covers (a revocation); answers how many. */
  async closeCredentialSockets(match: CredentialMatch, close: CloseInfo): Promise<number> {
    return this.credentials.closeMatching(match, close);
  }

  /**
   * A grant, membership or server change: closes the clients of `users` (null: every user's)
   * that lost their access to this terminal, or their `write` on it; answers how many.
   */
  async recheckSockets(users: string[] | null): Promise<number> {
    return this.credentials.recheck(users, this.serverId, this.terminalId());
  }

  /** This object's terminal id: its session's, else its name's (0 when neither is known). */
  private terminalId(): number {
    return this.meta?.terminal_id ?? parseTerminalName(this.ctx.id.name ?? "")?.terminalId ?? 0;
  }

  /** True while a client of this terminal authenticated with credential `id`. */
  async holdsCredential(id: string): Promise<boolean> {
    return this.credentials.holds(id);
  }

  /**
   * Closes every client socket opened with `credential` (`share:<id>`), as its credential was
   * revoked; answers how many. The one hook for credentials that end while their sockets are open.
   */
  async closeCredential(credential: string, reason = "credential revoked"): Promise<number> {
    return this.credentials.closeCredential(credential, reason);
  }

  // --- hibernatable WebSocket handlers ----------------------------------------------------------

  override async webSocketMessage(ws: WebSocket, message: ArrayBuffer | string): Promise<void> {
    try {
      const tags = this.ctx.getTags(ws);
      countFrameBytes(this.counters, tags, message);
      if (tags.includes(AGENT_TAG)) this.hub.onAgentMessage(this.sinkFor(ws), message);
      else if (tags.includes(RAW_TAG)) await this.raw.onMessage(ws, message);
      else this.hub.onClientMessage(this.sinkFor(ws), message);
    } catch (error) {
      this.counters.add("errors");
      log("error", "terminal.ws_message_failed", "TerminalDO.webSocketMessage failed", { server: this.serverId, terminal: this.meta?.terminal_id, error });
    }
  }

  /** The runtime has already answered the peer's close (compatibility date ≥ 2026-04-07). */
  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    answerClose(ws, code, reason);
    try {
      this.dropSocket(ws);
      this.sinks.delete(ws);
      await this.credentials.release(ws);
    } catch (error) {
      log("error", "terminal.ws_close_failed", "TerminalDO.webSocketClose failed", { server: this.serverId, terminal: this.meta?.terminal_id, error });
    }
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    try {
      log("warn", "terminal.ws_error", "a WebSocket of this terminal failed", { server: this.serverId, terminal: this.meta?.terminal_id, error });
      this.dropSocket(ws);
      this.sinks.delete(ws);
      await this.credentials.release(ws);
    } catch (e) {
      log("error", "terminal.ws_error_failed", "TerminalDO.webSocketError failed", { server: this.serverId, terminal: this.meta?.terminal_id, error: e });
    }
  }

  private dropSocket(ws: WebSocket): void {
    const sink = this.sinkFor(ws);
    if (this.ctx.getTags(ws).includes(AGENT_TAG)) {
      this.hub.detachAgent(sink);
      return;
    }
    this.hub.removeClient(sink);
    if (this.hub.clients.size === 0 && this.meta && this.config.idleTimeoutMs > 0) {
      this.idleMaybeArmed = true;
      void this.alarms.set("idle", Date.now() + this.config.idleTimeoutMs);
    }
  }

  /** Idle clean-up: alarms are at-least-once, so check again before removing anything. */
  override async alarm(): Promise<void> {
    try {
      const due = await this.alarms.due();
      if (due.includes("raw-auth")) this.raw.onDeadline();
      if (due.includes("expiry")) {
        await this.credentials.closeExpired();
      }
      if (!due.includes("idle")) return;
      if (!this.meta || this.hub.clients.size > 0 || this.ctx.getWebSockets(CLIENT_TAG).length > 0) return;
      await hostStub(this.env, this.serverId).deleteSession(this.meta.terminal_id, "idle");
    } catch (error) {
      log("error", "terminal.alarm_failed", "TerminalDO.alarm failed", { server: this.serverId, terminal: this.meta?.terminal_id, error });
    }
  }

  // --- RPC from the Worker and the HostDO -------------------------------------------------------

  /** Sets the limits of a session that was just created or adopted. */
  async configure(meta: SessionMeta, config: TerminalConfig): Promise<Result<null>> {
    try {
      // A session that ended under this id may still be being forgotten: its storage first.
      await this.forgetting;
      this.meta ??= meta;
      this.config = config;
      await loadIdentity(this.ctx, "name"); // again: forgetting a session cleared storage
      await this.ctx.storage.put({ meta: this.meta, config });
      if (this.hub.clients.size === 0 && config.idleTimeoutMs > 0) {
        this.idleMaybeArmed = true;
        await this.alarms.set("idle", Date.now() + config.idleTimeoutMs);
      }
      return ok(null);
    } catch (error) {
      return fail(error, "TerminalDO.configure");
    }
  }

  async info(historyLimit = 0): Promise<TerminalLiveInfo> {
    return {
      clients: this.hub.clients.size,
      command_history: this.history.commandLines(historyLimit),
      agent_online: this.hub.agentOnline,
      meta: this.meta,
      title: this.title,
    };
  }

  /** The edge is about to end the session (a DELETE, the idle timeout): its EXIT will say why; null: it is not, after all. */
  endingBecause(reason: ExitReason | null): void {
    this.hub.endingBecause(reason);
  }

  /**
   * The session is gone: deleted (everything goes), or ended by itself while the data link was
   * down or the agent restarted (`keepHistory`: its command history stays readable).
   */
  async end(exit: ExitInfo, keepHistory = false): Promise<void> {
    await this.counters.flush();
    this.keepHistoryOnExit = keepHistory;
    if (this.meta || this.hub.clients.size > 0) this.hub.exit(exit); // forgets it (onExit)
    else void this.forgetLater(keepHistory); // after the EXIT's forgetting, if one is under way
    this.keepHistoryOnExit = true;
    // The caller (a DELETE) answers once the session is forgotten, its share links included.
    await this.forgetting;
  }

  /** Every stored command record, oldest first; served while the agent is offline too. */
  async commandRecords(): Promise<Result<CommandRecord[]>> {
    try {
      if (!this.meta && !this.historyKept) throw new ApiError(404, "SESSION_NOT_FOUND", "Terminal session not found");
      return ok(this.history.records());
    } catch (error) {
      return fail(error, "TerminalDO.commandRecords");
    }
  }

  /** Forgets the session once any forgetting under way is done; resolves when this one is (a failure is logged). */
  private forgetLater(keepHistory: boolean): Promise<void> {
    this.forgetting = this.forgetting
      .then(() => this.forget(keepHistory))
      .catch((error: unknown) => log("error", "terminal.forget_failed", "forgetting an ended session failed", { server: this.serverId, error }));
    return this.forgetting;
  }

  /** Drops the session; with `keepHistory` its command records stay (until the id is reused). */
  private async forget(keepHistory: boolean): Promise<void> {
    const ended = this.meta?.terminal_id;
    this.meta = null;
    this.title = null;
    this.joins.notify();
    await this.ctx.storage.deleteAlarm();
    // A share link is to this session: a later one under the same id must not open with it.
    if (ended !== undefined && this.serverId) {
      try {
        await endShareLinks(this.env.DB, this.serverId, ended);
      } catch (error) {
        log("error", "terminal.share_links_not_ended", "could not remove the ended session's share links", { server: this.serverId, terminal: ended, error });
      }
    }
    if (keepHistory) {
      this.historyKept = true;
      await this.ctx.storage.delete(["meta", "config", "title", "size"]);
      await this.ctx.storage.put("history_kept", true);
      return;
    }
    this.historyKept = false;
    await this.ctx.storage.deleteAll();
    this.history.dropped();
  }
}
