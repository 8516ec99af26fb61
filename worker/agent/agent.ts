/**
 * The host agent: one control link to this server's HostDO, and a PtySession (with its own data
 * link) per terminal, kept in a TerminalTable (terminal-table.ts: creates, kills, exits). It
 * answers the HostDO's requests (create, kill, list, screen, exec.*) and reports exits. Every
 * control frame is decoded by shared/links/control.ts before it is acted on; requests in flight
 * live in one table (a Correlator) that empties when the link drops. Sessions keep running while
 * links are down; links come back on their own.
 */
import { arch, cpus, homedir, hostname, release, totalmem } from "node:os";
import { join } from "node:path";
import { LinkDecodeError } from "../../shared/links/codec.ts";
import {
  decodeHostToAgent,
  encodeControl,
  LINK_INFLIGHT_MAX,
  type AgentToHostOut,
  type ApiErrorBody,
  type ControlOps,
  type ControlRequest,
  type CreateSessionParams,
  type HostFacts,
  type HostToAgent,
} from "../../shared/links/control.ts";
import { Correlator } from "../../shared/links/correlator.ts";
import { isExecMessage } from "../../shared/links/exec.ts";
import { isTunnelMessage } from "../../shared/links/tunnel.ts";
import { ApiError } from "../../shared/errors.ts";
import { otError } from "../../shared/open-terminal.ts";
import { ExecError, ExecManager, ExecRelay } from "./exec/index.ts";
import { PtyHost, ptyHostProgram } from "./exec/pty-host.ts";
import { ptySpawnAddonPath, spawnsWithoutLeaks, usePosixSpawn } from "./pty-spawn.ts";
import type { ExecRelayJob, OtherJob } from "./exec/exec-relay.ts";
import { openTerminalApp } from "./files/app.ts";
import { CwdStore } from "./files/cwd-store.ts";
import { headAsGet, multiUserApp } from "./files/multi-user-app.ts";
import { UserFiles, type HelperProgram } from "./files/user-files.ts";
import { OsUsers, runAsAccount, type MultiUserOptions } from "./os-users.ts";
import { segmentPoster } from "./files/direct-body.ts";
import { TunnelServer } from "./files/tunnel-server.ts";
import { agentIdentity, processTag, type AgentIdentity } from "./launch.ts";
import { Link, wsUrl } from "./link.ts";
import { endProcesses, KILL_GRACE_MS, orphanedProcesses, ownProcesses } from "./process-reaper.ts";
import type { PtySession } from "./pty-session.ts";
import { TerminalTable } from "./terminal-table.ts";
import { answerScreenRequest } from "./screen-requests.ts";
import { startScreenThread } from "./screen/screen-thread.ts";
import { prepareRuntimeDir, removeRuntimeDir } from "./shell-integration.ts";
import { isRoot } from "./spawn.ts";

/** Period of the timer that keeps the agent's process alive between links, in milliseconds. */
const KEEP_ALIVE_INTERVAL_MS = 60_000;

export const AGENT_VERSION = "0.1.0";

/** What a control request is answered with. */
type Answer = { ok: true; result: unknown } | { ok: false; error: ApiErrorBody };

export interface AgentOptions {
  /** Base URL of the edge, e.g. http://127.0.0.1:8787 */
  edge: string;
  server: string;
  token: string;
  /** Where the agent keeps files (screenshots, command logs). */
  dataDir: string;
  /** Most PTY sessions at once (shared/limits.ts); MAX_SESSIONS when absent. */
  maxSessions?: number;
  /** Text for the Open Terminal `/info` route and `get_info` tool (unset: no such route). */
  info?: string;
  /** Replaces the Open Terminal `/system` prompt (placeholders: see files/app.ts). */
  systemPrompt?: string;
  /**
   * Multi-user mode (EDGETTY_OT_MULTI_USER, os-users.ts): callers asserting `X-User-Id` act as OS
   * accounts of their own. Needs root, useradd and setpriv (the constructor throws otherwise) and
   * `helperProgram`, the command line that starts this agent again (up to `files-helper`).
   */
  multiUser?: MultiUserOptions & { helperProgram: HelperProgram };
  /**
   * Whether /execute's commands are started by the agent's PTY host (exec/pty-host.ts) rather than
   * the agent itself: true always, false never; absent, only where the agent would fork(2) them
   * (no spawn helper that closes descriptors in the child: pty-spawn.ts spawnsWithoutLeaks).
   */
  ptyHost?: boolean;
  /** Spawn PTYs with node-pty's fork(2) even where the posix_spawn helper was built (EDGETTY_AGENT_FORK_PTYS). */
  forkPtys?: boolean;
  log?(line: string): void;
}

export class Agent {
  /** This agent's terminals: their PTY sessions, creates and kills (terminal-table.ts). */
  private readonly terminals: TerminalTable;
  private readonly control: Link;
  private readonly log: (line: string) => void;
  /** Generated shell init files live here while their shells run (shell-integration.ts). */
  private readonly runtimeDir: string;
  /** The Open Terminal execute API: commands run here, relayed over the control link (exec.*). */
  private readonly execManager: ExecManager;
  private readonly execRelay: ExecRelay;
  /** The control link's requests in flight (control ops and exec calls), by the edge's ids. */
  private readonly inflight = new Correlator<ExecRelayJob | OtherJob>(LINK_INFLIGHT_MAX);
  /** Per-session working directories of the Open Terminal API (`X-Session-Id`). */
  private readonly cwds = new CwdStore();
  /** The Open Terminal file, port and proxy routes, tunnelled over the control link (tun.*, own rids). */
  private readonly tunnel: TunnelServer;
  /** Multi-user mode's accounts and their file servers (null in single-user mode). */
  private readonly osUsers: OsUsers | null;
  private readonly userFiles: UserFiles | null;
  private keepAlive: NodeJS.Timeout | undefined;
  /** Tags this agent's processes (launch.ts); the key survives restarts, the instance does not. */
  readonly identity: AgentIdentity;

  constructor(private readonly options: AgentOptions) {
    this.log = options.log ?? ((line) => console.log(`[agent] ${line}`));
    this.identity = agentIdentity(options.dataDir);
    this.runtimeDir = prepareRuntimeDir(options.dataDir, this.log);
    const users = options.multiUser ? new OsUsers(options.multiUser, this.log) : null;
    this.osUsers = users;
    this.terminals = new TerminalTable({
      ...options,
      identity: this.identity,
      runtimeDir: this.runtimeDir,
      osUsers: users,
      sessionCwd: (scope, session) => this.cwds.get(scope, session),
      log: this.log,
      onExited: (id, exit, startedAt) => this.control.send(encodeControl({ t: "exited", terminal_id: id, exit, started_at: startedAt })),
    });
    this.userFiles = users && options.multiUser ? new UserFiles(options.multiUser.helperProgram, users.setpriv, processTag(this.identity, { kind: "x", id: "files" }), this.log) : null;
    // PTYs and /execute's commands spawned with posix_spawn when the helper was built (pty-spawn.ts).
    const spawnHelper = options.forkPtys ? null : ptySpawnAddonPath();
    if (spawnHelper) {
      const { reason } = usePosixSpawn(spawnHelper);
      if (reason) this.log(`PTYs are forked by node-pty: ${reason}`);
    }
    // The PTY host keeps fork(2) out of the agent; posix_spawn does not copy the agent, so with the
    // helper the agent starts /execute's commands itself, a pipe hop fewer each way (docs/open-terminal.md).
    const hostTag = processTag(this.identity, { kind: "x", id: "pty-host" });
    const useHost = options.ptyHost ?? !spawnsWithoutLeaks();
    const ptyHost = useHost ? new PtyHost(ptyHostProgram(this.runtimeDir, hostTag, spawnHelper), hostTag, this.log) : null;
    this.execManager = new ExecManager({
      tag: processTag(this.identity, { kind: "x", id: "exec" }),
      ...(ptyHost ? { ptyHost } : {}),
      logDir: join(options.dataDir, "exec-logs"),
      sessionCwd: (scope, session) => this.cwds.get(scope, session),
      ...(users
        ? {
            runAs: async (caller) => {
              try {
                return runAsAccount(await users.resolve(caller.scope, caller.user ?? ""), users.setpriv);
              } catch (error) {
                if (error instanceof ApiError) throw new ExecError(otError(error.status, error.code, error.message));
                throw error;
              }
            },
          }
        : {}),
    });
    const texts = { ...(options.info !== undefined ? { info: options.info } : {}), ...(options.systemPrompt ? { systemPrompt: options.systemPrompt } : {}) };
    const app = openTerminalApp({ home: process.env.HOME || homedir(), cwds: this.cwds, ...texts });
    this.tunnel = new TunnelServer(
      headAsGet(users && this.userFiles ? multiUserApp(app, { users, files: this.userFiles, cwds: this.cwds, ...texts }) : app),
      (text) => this.control.send(text),
      (frame) => this.control.send(frame),
      () => this.control.bufferedAmount,
      (head, payload) => this.control.sendParts(head, payload),
      segmentPoster(options.edge, options.server, options.token),
    );
    this.control = new Link({
      url: wsUrl(options.edge, `/agent/v1/control?server=${encodeURIComponent(options.server)}`),
      token: options.token,
      log: (line) => this.log(`control: ${line}`),
      onOpen: (ws) => {
        this.log(`connected to ${options.edge} as server "${options.server}"`);
        ws.send(encodeControl(this.hello()));
      },
      onMessage: (data, isBinary) => {
        if (isBinary) this.tunnel.handleBinary(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        else void this.onControl(data.toString("utf8"));
      },
      onClose: (code, reason) => {
        // The edge can no longer answer for these: streams are killed, waits end, requests are
        // dropped (the HostDO failed them all when the link went).
        this.execRelay.closeAll();
        this.tunnel.closeAll();
        this.log(`control link closed (${code}${reason ? ` ${reason}` : ""}); reconnecting`);
      },
    });
    this.execRelay = new ExecRelay(
      this.execManager,
      (msg) => {
        if (!this.control.send(encodeControl(msg))) throw new Error("control link is down");
      },
      this.inflight,
    );
  }

  start(): void {
    // The links' retry timers are unref'd: without this, an agent with no PTY open would exit
    // the moment its control link dropped (a workerd restart, a network blip).
    this.keepAlive ??= setInterval(() => {}, KEEP_ALIVE_INTERVAL_MS);
    this.endOrphans().catch((error: unknown) => this.log(`ending a previous agent's processes failed: ${(error as Error).message}`));
    // Started now, not with the first terminal: its first repaint then waits for no thread start.
    startScreenThread(this.log);
    this.control.start();
  }

  /**
   * Ends what a previous instance of this agent left running (it died without ending its
   * terminals: kill -9, a crash, OOM). Those processes cannot be shown again: their terminals'
   * PTY masters died with that agent and /execute pipes with it, so nothing can read or type into
   * them; they are hung up and, after KILL_GRACE_MS, SIGKILLed, and each one is logged.
   */
  private async endOrphans(): Promise<void> {
    const found = orphanedProcesses(this.identity);
    if (found.length === 0) return;
    for (const p of found) this.log(`ending process ${p.pid} (${p.comm}) left by a previous agent (${p.tag})`);
    // Rescanned at each step: children an orphan forks meanwhile carry the same tag.
    const left = await endProcesses(() => orphanedProcesses(this.identity), KILL_GRACE_MS);
    this.log(`ended ${found.length - left.length} process(es) left by a previous agent${left.length ? `; ${left.length} survived SIGKILL` : ""}`);
  }

  /**
   * Stops the links and ends every session: each terminal's processes are hung up, and whatever
   * of this agent's processes is left after KILL_GRACE_MS is SIGKILLed. Resolves when done.
   */
  async stop(): Promise<void> {
    if (this.keepAlive) clearInterval(this.keepAlive);
    this.keepAlive = undefined;
    this.control.stop();
    this.execRelay.closeAll();
    this.tunnel.closeAll();
    this.userFiles?.stopAll();
    const execDone = this.execManager.shutdown();
    this.terminals.hangUpAll();
    removeRuntimeDir(this.runtimeDir);
    // One scan for every terminal and command (each carries this instance's tag).
    const left = await endProcesses(() => ownProcesses(this.identity), KILL_GRACE_MS);
    await execDone.catch(() => undefined);
    if (left.length > 0) this.log(`${left.length} process(es) survived SIGKILL at stop`);
  }

  private hello(): AgentToHostOut {
    return {
      t: "hello",
      agent: {
        version: AGENT_VERSION,
        hostname: hostname(),
        platform: process.platform,
        is_root: isRoot(),
        facts: hostFacts(),
        // Whether `/info` answers (the edge then offers `get_info` in /openapi.json).
        ot_info: this.options.info !== undefined,
        ot_multi_user: this.osUsers !== null,
      },
      sessions: this.terminals.live(),
    };
  }

  private async onControl(text: string): Promise<void> {
    let msg: HostToAgent;
    try {
      msg = decodeHostToAgent(text);
    } catch (error) {
      if (!(error instanceof LinkDecodeError)) throw error;
      this.log(`refused a control frame: ${error.message}`);
      if (error.t !== null && isExecMessage({ t: error.t })) this.execRelay.refused(error);
      else if (error.t !== null && isTunnelMessage({ t: error.t })) this.tunnel.refused(error);
      else if (error.t === "req" && error.id !== null && !this.inflight.get(error.id)) {
        this.reply(error.id, { ok: false, error: { status: error.status, code: error.status === 501 ? "NOT_IMPLEMENTED" : "INVALID_PARAMETERS", message: error.message } });
      }
      return;
    }
    if (isTunnelMessage(msg)) return this.tunnel.handle(msg);
    if (msg.t !== "req") return this.execRelay.handle(msg);
    const job: OtherJob = { kind: "control", abort: new AbortController() };
    if (!this.inflight.accept(msg.id, job)) {
      // A repeated id would get two answers; a full table means the edge broke the link's cap.
      if (!this.inflight.get(msg.id)) this.reply(msg.id, { ok: false, error: new ApiError(429, "AGENT_BUSY", "Too many requests in flight").toBody() });
      return;
    }
    let answer: Answer;
    try {
      answer = { ok: true, result: await this.handle(msg) };
    } catch (error) {
      const e = error instanceof ApiError ? error : new ApiError(500, "AGENT_ERROR", (error as Error).message ?? "agent error");
      if (!(error instanceof ApiError)) this.log(`request ${msg.op} failed: ${(error as Error).stack ?? error}`);
      answer = { ok: false, error: e.toBody() };
    }
    // Gone from the table: the link dropped meanwhile, and the HostDO no longer waits for it.
    if (this.inflight.take(msg.id, job)) this.reply(msg.id, answer);
  }

  private reply(id: number, answer: Answer): void {
    this.control.send(encodeControl({ t: "reply", id, ...answer }));
  }

  private async handle(req: ControlRequest): Promise<unknown> {
    switch (req.op) {
      case "create":
        return this.terminals.create(req.params);
      case "kill":
        return this.terminals.kill(req.params);
      case "list":
        return { sessions: this.terminals.live() } satisfies ControlOps["list"]["result"];
      case "screen":
        return answerScreenRequest({ sessions: this.terminals.sessions, dataDir: this.options.dataDir }, req.params);
      default: {
        // A new op in CONTROL_OPS needs its case here (this line stops compiling until it has one).
        const unhandled: never = req;
        throw new ApiError(501, "NOT_IMPLEMENTED", `This agent does not support "${(unhandled as ControlRequest).op}"`);
      }
    }
  }

  /** Drops every link as a network failure would; they reconnect by themselves. */
  dropLinks(): void {
    this.control.drop();
    this.terminals.dropLinks();
  }

  /** This agent's PTY sessions, by terminal id. */
  get sessions(): ReadonlyMap<number, PtySession> {
    return this.terminals.sessions;
  }

  /** Creates a terminal as the HostDO's `create` request does. */
  create(params: CreateSessionParams): Promise<ControlOps["create"]["result"]> {
    return this.terminals.create(params);
  }
}

/** What the agent tells the edge about its host in every hello. */
export function hostFacts(): HostFacts {
  return {
    arch: arch(),
    os_release: release(),
    node: process.version,
    cpus: cpus().length,
    memory_bytes: totalmem(),
    started_at: new Date(Date.now() - process.uptime() * 1000).toISOString(),
  };
}
