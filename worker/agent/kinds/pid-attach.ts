/**
 * PID attach (`pid=` on the WebSocket, or on create): a session whose screen follows an existing
 * process's terminal output. The PTY runs pid-follow.ts, which traces the process's writes to fds
 * 1 and 2 with strace. What the agent needs: strace installed, and ptrace rights over the target —
 * root (CAP_SYS_PTRACE), or the same uid when kernel.yama.ptrace_scope is 0. The session is
 * read-only: typed input is dropped (writing into another process's terminal needs TIOCSTI, which
 * current kernels disable).
 */
import { readFileSync, readlinkSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { CreateSessionParams } from "../../../shared/links/control.ts";
import { ApiError } from "../../../shared/errors.ts";
import { parseProcessTag, PROCESS_TAG_ENV } from "../launch.ts";
import { isRoot, planSpawn, which } from "../spawn.ts";
import type { KindLaunch } from "./launch.ts";
import type { IntegrationTarget } from "../shell-integration.ts";

const YAMA_PTRACE_SCOPE = "/proc/sys/kernel/yama/ptrace_scope";

/**
 * Owners (launch.ts `processTag`) of an agent's own helper processes: the PTY host, which runs
 * the background commands' PTYs of an agent that would fork, and multi-user mode's per-account
 * file servers. Tracing one
 * would slow, or let a terminal watch, what the agent does for everyone.
 */
const AGENT_HELPER_OWNERS = new Set(["xpty-host", "xfiles"]);

/** True when `pid` is an edgetty agent's helper (its process tag, read from /proc/<pid>/environ, says so). */
function isAgentHelper(pid: number): boolean {
  let environ: string;
  try {
    environ = readFileSync(`/proc/${pid}/environ`, "latin1");
  } catch {
    return false; // gone, or not ours to read: the checks below answer for it
  }
  const prefix = `${PROCESS_TAG_ENV}=`;
  const entry = environ.split("\0").find((e) => e.startsWith(prefix));
  const tag = entry === undefined ? null : parseProcessTag(entry.slice(prefix.length));
  return tag !== null && AGENT_HELPER_OWNERS.has(tag.owner);
}

interface ProcStatus {
  /** Real, effective and saved user ids (ptrace compares all three). */
  uids: number[];
  /** Real, effective and saved group ids. */
  gids: number[];
  /** The process (thread group) this task belongs to: `pid` itself unless `pid` names a thread. */
  tgid: number;
  tracerPid: number;
  name: string;
}

function procStatus(pid: number): ProcStatus | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return null;
  }
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(text)?.[1] ?? "";
  if (/^[ZX]/.test(field("State"))) return null; // a zombie has no output left to follow
  const ids = (name: string) => field(name).split(/\s+/).slice(0, 3).map(Number);
  return { uids: ids("Uid"), gids: ids("Gid"), tgid: Number(field("Tgid")), tracerPid: Number(field("TracerPid")), name: field("Name") };
}

/** PF_KTHREAD in /proc/<pid>/stat's flags: a kernel thread. */
const PF_KTHREAD = 0x00200000;

/** True when `pid` is a kernel thread (no user space: nothing to trace, ptrace refuses it). */
function isKernelThread(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return false;
  }
  // "pid (comm) state ppid … flags …": comm may hold spaces and parentheses, so count after its last ")".
  const flags = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[6]);
  return Number.isInteger(flags) && (flags & PF_KTHREAD) !== 0;
}

/** The owner of /proc/<pid> (root for a process that is not dumpable), or -1. */
function procOwner(pid: number): number {
  try {
    return statSync(`/proc/${pid}`).uid;
  } catch {
    return -1;
  }
}

function ptraceScope(): number {
  try {
    return Number(readFileSync(YAMA_PTRACE_SCOPE, "utf8").trim());
  } catch {
    return 0; // no Yama: classic ptrace rules
  }
}

/**
 * Checks that `pid` can be followed by this agent; throws 404 PID_NOT_FOUND, 403
 * PID_ATTACH_FORBIDDEN, 409 PID_ALREADY_TRACED, 400 INVALID_PID or 500 PID_ATTACH_UNAVAILABLE.
 */
export function checkAttachable(pid: number): { name: string; strace: string } {
  const status = procStatus(pid);
  // A thread's id opens /proc/<tid> too, and `strace -f -p <tid>` attaches its whole process:
  // the checks below are on process ids, so a thread id (the agent's, init's…) is refused.
  if (status && status.tgid !== pid) {
    throw new ApiError(400, "INVALID_PID", `${pid} is a thread of process ${status.tgid}, not a process: give the process id`);
  }
  if (pid === process.pid || pid === process.ppid || isAgentHelper(pid)) throw new ApiError(400, "INVALID_PID", "The agent cannot attach to itself or its helper processes");
  // Tracing stops the traced process at each system call it reports: never the host's init.
  if (pid === 1) throw new ApiError(400, "INVALID_PID", "The agent does not attach to the init process (pid 1)");
  if (!status) throw new ApiError(404, "PID_NOT_FOUND", `No running process ${pid} on this host`);
  // ptrace refuses kernel threads: the session would start and end at once with strace's EPERM.
  if (isKernelThread(pid)) throw new ApiError(400, "INVALID_PID", `Process ${pid} (${status.name}) is a kernel thread: it writes no output to follow`);
  const strace = which("strace", "/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin");
  if (!strace) throw new ApiError(500, "PID_ATTACH_UNAVAILABLE", "PID attach needs strace on the agent's host");
  const scope = ptraceScope();
  if (scope >= 3) throw new ApiError(403, "PID_ATTACH_FORBIDDEN", "ptrace is disabled on this host (kernel.yama.ptrace_scope = 3)");
  if (!isRoot()) {
    const uid = process.getuid?.() ?? -1;
    const gid = process.getgid?.() ?? -1;
    if (status.uids[0] !== uid) throw new ApiError(403, "PID_ATTACH_FORBIDDEN", `Process ${pid} belongs to another user; the agent needs root to follow it`);
    // What the kernel checks besides: every user and group id the agent's, and a dumpable process
    // (a set-user-ID program's /proc entry belongs to root), else strace's attach fails at once.
    if (status.uids.some((id) => id !== uid) || status.gids.some((id) => id !== gid) || procOwner(pid) !== uid) {
      throw new ApiError(403, "PID_ATTACH_FORBIDDEN", `Process ${pid} runs with other privileges (a set-user-ID or set-group-ID program, or another group); the agent needs root to follow it`);
    }
    if (scope >= 1) throw new ApiError(403, "PID_ATTACH_FORBIDDEN", `kernel.yama.ptrace_scope is ${scope}: only root can follow process ${pid}`);
  }
  if (status.tracerPid !== 0) throw new ApiError(409, "PID_ALREADY_TRACED", `Process ${pid} is already traced (by pid ${status.tracerPid})`);
  return { name: status.name, strace };
}

/** A launch that follows `params.pid`'s output. */
export function preparePidAttach(params: CreateSessionParams): KindLaunch {
  const pid = params.pid!;
  const { name, strace } = checkAttachable(pid);
  // The follower runs as the agent (it needs the agent's ptrace rights), never as `user`.
  const plan = planSpawn({ ...params, user: undefined, cwd: undefined, shell: "sh" } as CreateSessionParams);
  // The target's folder when the agent can enter it: not one removed since ("/x (deleted)") or
  // in another mount namespace (a container's process), where the follower could not start.
  try {
    const cwd = readlinkSync(`/proc/${pid}/cwd`);
    if (statSync(cwd).isDirectory()) plan.cwd = cwd;
  } catch {
    /* keep the agent's home */
  }
  const helper = fileURLToPath(new URL("./pid-follow.ts", import.meta.url));
  const tsx = import.meta.resolve("tsx");
  let target: IntegrationTarget | null = null;
  let titled = false;
  return {
    shell: `attach:${name}`,
    plan,
    file: process.execPath,
    args: ["--import", tsx, helper, String(pid), strace],
    env: plan.env,
    onOutput() {
      if (titled || !target) return;
      titled = true;
      target.setTitle(`${name} (pid ${pid})`);
      target.shellReady();
    },
    attach(t) {
      target = t;
    },
    dispose() {},
  };
}
