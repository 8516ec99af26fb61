/**
 * The agent's terminals: one PtySession per terminal id, and what creates and ends them. A create
 * (the HostDO's `create` request) checks the id and the session cap, waits for a deleted terminal
 * of the same id to finish ending, maps a multi-user caller to its OS account, builds the launch
 * for the session's kind (kinds/: SSH, PID attach, a local shell with its integration, an X
 * display) and starts the PtySession, answering once its data link is up. Kills and exits leave
 * the table here; the control link (agent.ts) is told of each exit through `onExited`.
 */
import { readlinkSync, statSync } from "node:fs";
import type { ControlOps, CreateSessionParams, DesktopEnv, LiveSession } from "../../shared/links/control.ts";
import type { ExitInfo } from "../../shared/links/client.ts";
import { ApiError } from "../../shared/errors.ts";
import { AGENT_SETTINGS } from "../../shared/limits.ts";
import { parseTerminalId } from "../../shared/validation.ts";
import { WAIT_TIMEOUT_DEFAULT_S } from "../../shared/kind-validation.ts";
import { desktopProgram, startDesktop, waitForDisplay, type Desktop } from "./kinds/display.ts";
import type { KindLaunch } from "./kinds/launch.ts";
import { preparePidAttach } from "./kinds/pid-attach.ts";
import { prepareSsh } from "./kinds/ssh.ts";
import { processTag, type AgentIdentity } from "./launch.ts";
import { wsUrl } from "./link.ts";
import type { OsUsers } from "./os-users.ts";
import { PtySession } from "./pty-session.ts";
import { startShellIntegration } from "./shell-integration.ts";
import { planSpawn } from "./spawn.ts";

/** Most PTY sessions one agent runs at once, unless configured (EDGETTY_AGENT_MAX_SESSIONS). */
export const MAX_SESSIONS = AGENT_SETTINGS.maxSessions.default;
/**
 * How long a create waits for a deleted terminal of the same id to finish ending, in milliseconds
 * (its shell gets SIGKILL after KILL_GRACE_MS at the latest).
 */
export const ENDING_SESSION_WAIT_MS = 5_000;
/** How long a new session's data link may take to come up, in milliseconds. */
export const SESSION_READY_TIMEOUT_MS = 15_000;

/** What a {@link TerminalTable} needs from its agent. */
export interface TerminalTableOptions {
  /** Base URL of the edge (the data links dial it). */
  edge: string;
  server: string;
  /** The agent token the data links present. */
  token: string;
  /** Where the agent keeps files (screenshots, SSH state). */
  dataDir: string;
  /** Most PTY sessions at once; MAX_SESSIONS when absent. */
  maxSessions?: number;
  /** Tags this agent's processes (launch.ts). */
  identity: AgentIdentity;
  /** Generated shell init files live here while their shells run (shell-integration.ts). */
  runtimeDir: string;
  /** Multi-user mode's accounts (null in single-user mode). */
  osUsers: OsUsers | null;
  /** The working directory an Open Terminal session (scope, `X-Session-Id`) set with `POST /files/cwd`, if any. */
  sessionCwd?: (scope: string, session: string) => string | undefined;
  log(line: string): void;
  /** A terminal's process exited and it left the table. */
  onExited(id: number, exit: ExitInfo, startedAt: string): void;
}

/** The agent's PTY sessions by terminal id, and their creates, kills and exits. */
export class TerminalTable {
  readonly sessions = new Map<number, PtySession>();
  /** Terminals started by this instance, so that each one's tag is its own (ids are reused). */
  private terminalsStarted = 0;
  /** Terminal ids whose create is under way (a display wait or an SSH login can take a while). */
  private readonly creating = new Set<number>();

  constructor(private readonly options: TerminalTableOptions) {}

  /** Every session as the HostDO lists it (hello, `list`), with its shell's current cwd. */
  live(): LiveSession[] {
    return [...this.sessions.values()].map((s) => s.live(processCwd(s.pid)));
  }

  /** Creates terminal `params.terminal_id` (the HostDO's `create`), or answers the one that exists. */
  async create(params: CreateSessionParams): Promise<ControlOps["create"]["result"]> {
    const id = parseTerminalId(params?.terminal_id);
    if (id === null) throw new ApiError(400, "INVALID_TERMINAL_ID", "Terminal ID must be numeric 1-65535");
    const existing = this.sessions.get(id);
    if (existing && !existing.killed) return { status: "exists", meta: existing.meta };
    if (existing) {
      // Deleted a moment ago and still ending (a shell ignoring SIGHUP lasts until the SIGKILL):
      // the caller wants a new terminal, not this one, so wait for it to go first.
      const waited = await Promise.race([
        existing.exitedPromise.then(() => true),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), ENDING_SESSION_WAIT_MS).unref()),
      ]);
      if (!waited || this.sessions.get(id) === existing) {
        throw new ApiError(503, "SESSION_ENDING", `Terminal ${id} is still ending; try again in a moment`);
      }
      const again = this.sessions.get(id);
      if (again) return { status: "exists", meta: again.meta };
    }
    if (this.creating.has(id)) throw new ApiError(409, "CREATE_IN_PROGRESS", `Terminal ${id} is being created`);
    const maxSessions = this.options.maxSessions ?? MAX_SESSIONS;
    if (this.sessions.size + this.creating.size >= maxSessions) throw new ApiError(429, "TOO_MANY_SESSIONS", `This agent runs at most ${maxSessions} sessions`);
    this.creating.add(id);
    try {
      return await this.spawnSession(id, await this.asOpenTerminalUser(params));
    } finally {
      this.creating.delete(id);
    }
  }

  /**
   * An `/api/terminals` session starts in its `X-Session-Id`'s working directory when one was set.
   * Multi-user mode: one of a caller that asserted a user runs as that user's OS account (created
   * on first use), in that directory or its home.
   */
  private async asOpenTerminalUser(params: CreateSessionParams): Promise<CreateSessionParams> {
    const { ot_cwd_of: of } = params;
    const sessionCwd = of && params.cwd === undefined ? this.options.sessionCwd?.(of.scope, of.session) : undefined;
    // A directory removed since it was chosen: the default place, as if none had been set.
    const placed = sessionCwd !== undefined && statSync(sessionCwd, { throwIfNoEntry: false })?.isDirectory() ? { ...params, cwd: sessionCwd } : params;
    if (!placed.ot_user?.user || !this.options.osUsers) return placed;
    const account = await this.options.osUsers.resolve(placed.ot_user.scope, placed.ot_user.user);
    return { ...placed, user: account.name, cwd: placed.cwd ?? account.home };
  }

  /** Builds the launch for the session's kind (kinds/): SSH, PID attach, or a local shell. */
  private async prepareLaunch(params: CreateSessionParams): Promise<{ launch: KindLaunch; desktop: DesktopEnv | null }> {
    if (params.ssh) {
      return { launch: await prepareSsh({ params, ssh: params.ssh, runtimeDir: this.options.runtimeDir, dataDir: this.options.dataDir, log: this.options.log }), desktop: null };
    }
    if (params.pid !== undefined) return { launch: preparePidAttach(params), desktop: null };
    const plan = planSpawn(params);
    const display = params.display && !params.ephemeral ? params.display : undefined;
    const desktop = display ? (params.desktop_env ?? null) : null;
    if (desktop) desktopProgram(desktop); // refuse before waiting
    if (display && params.wait_until_display !== false && params.wait_until_display !== undefined) {
      await waitForDisplay(display, params.wait_timeout ?? WAIT_TIMEOUT_DEFAULT_S);
    }
    const shell = startShellIntegration({ plan, params, runtimeDir: this.options.runtimeDir, log: this.options.log });
    return { launch: { ...shell, shell: plan.shell, plan }, desktop };
  }

  private async spawnSession(id: number, params: CreateSessionParams): Promise<ControlOps["create"]["result"]> {
    const { launch, desktop: desktopEnv } = await this.prepareLaunch(params);
    const { plan } = launch;
    let desktop: Desktop | null = null;
    let exited!: (exit: ExitInfo) => void;
    const exitedPromise = new Promise<ExitInfo>((resolve) => (exited = resolve));
    // Unique per start: a DELETE's clean-up still running must not reach the next terminal `id`.
    const tag = processTag(this.options.identity, { kind: "t", id: `${id}-${++this.terminalsStarted}` });
    let session: PtySession;
    try {
      if (desktopEnv) desktop = startDesktop(desktopEnv, plan, tag, this.options.log);
      session = new PtySession({
        meta: {
          terminal_id: id,
          shell: launch.shell,
          cwd: plan.cwd,
          started_at: new Date().toISOString(),
          ephemeral: params.ephemeral,
          ...(params.display && !params.ephemeral && !params.ssh && params.pid === undefined ? { display: params.display } : {}),
        },
        plan,
        file: launch.file,
        args: launch.args,
        env: launch.env,
        ...(launch.onOutput ? { onOutput: launch.onOutput } : {}),
        ...(launch.describeExit ? { describeExit: launch.describeExit } : {}),
        size: { cols: params.cols, rows: params.rows },
        tag,
        ...(params.cmd ? { initialInput: Buffer.from(params.cmd, "base64").toString("utf8") + "\r" } : {}),
        linkUrl: wsUrl(this.options.edge, `/agent/v1/data?server=${encodeURIComponent(this.options.server)}&terminal_id=${id}`),
        token: this.options.token,
        onExit: (exit) => {
          exited(exit);
          launch.dispose();
          desktop?.stop();
          this.onSessionExit(id, exit, session.meta.started_at);
        },
        log: this.options.log,
      });
    } catch (error) {
      launch.dispose();
      desktop?.stop();
      this.options.log(`spawn failed for terminal ${id}: ${(error as Error).message}`);
      throw new ApiError(500, "SPAWN_FAILED", `Failed to create terminal process: ${(error as Error).message}`);
    }
    launch.attach(session);
    this.sessions.set(id, session);
    const timeout = new Promise<never>((_, reject) => {
      setTimeout(() => reject(new ApiError(504, "AGENT_TIMEOUT", "The terminal's data link did not come up in time")), SESSION_READY_TIMEOUT_MS).unref();
    });
    await Promise.race([session.ready(), timeout]);
    // An SSH login that fails is the create's failure too (the session has ended with an ERROR).
    if (launch.settled) await launch.settled(exitedPromise);
    return { status: "created", meta: session.meta };
  }

  /** Ends a terminal (the HostDO's `kill`): 404 SESSION_NOT_FOUND when there is none. */
  kill({ terminal_id }: ControlOps["kill"]["params"]): ControlOps["kill"]["result"] {
    const session = this.sessions.get(Number(terminal_id));
    if (!session) throw new ApiError(404, "SESSION_NOT_FOUND", "Terminal session not found");
    void session.kill();
    return { killed: true };
  }

  private onSessionExit(id: number, exit: ExitInfo, startedAt: string): void {
    this.sessions.delete(id);
    this.options.log(`terminal ${id} exited (code ${exit.exit_code}, signal ${exit.signal})`);
    this.options.onExited(id, exit, startedAt);
  }

  /** Drops every data link as a network failure would; they reconnect by themselves. */
  dropLinks(): void {
    for (const session of this.sessions.values()) session.dropLink();
  }

  /** The agent stops: hangs up each shell's group and forgets every session (the caller ends the rest). */
  hangUpAll(): void {
    for (const session of this.sessions.values()) {
      session.hangUpForStop();
      session.dispose();
    }
    this.sessions.clear();
  }
}

function processCwd(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}
