/**
 * The one way the agent starts a child process: with only descriptors 0-2 open and a tag in its
 * environment that names the agent and the terminal (or command) it belongs to. Every spawn path
 * (PTY shells, /execute commands, helper look-ups, and later ssh or PTY-based runners) passes its
 * program through `launchCommand` and gives the result to node-pty or child_process unchanged.
 *
 * Why a wrapper: node-pty (1.1.0, src/unix/pty.cc) opens each terminal's master with forkpty(3),
 * which does not set close-on-exec, and Node has no fcntl, so every later child (whatever starts
 * it) would inherit every open terminal's master and could type into a root shell. The wrapper is
 * a shell in privileged mode (`bash -p`: no BASH_ENV/ENV file, no functions imported from the
 * environment, so nothing the caller puts in `env` runs before the final exec) that closes every
 * descriptor above 2 listed in /proc/self/fd (/dev/fd elsewhere), then execs the real program
 * under the same pid. The interpreter is chosen once by a self-test that leaves a descriptor open
 * at DESCRIPTOR_PROBE_FD and checks the program no longer has it; a host where no candidate passes
 * refuses to start anything rather than leak.
 *
 * The wrapper costs an extra exec of bash (1–3 ms on a loaded host, most of an `/execute` of
 * `echo hi`), so it is used only when something would leak: just before each spawn (the caller
 * spawns in the same synchronous step, and node-pty and child_process fork on this thread)
 * `inheritableDescriptors` reads /proc/self/fdinfo, whose `flags` show O_CLOEXEC, and when every
 * descriptor above 2 is close-on-exec the program is started as is. Node, libuv, glibc and Rust's
 * std open everything close-on-exec; node-pty's masters are the known exception, so with a
 * terminal open the wrapper is in the path. The agent's entry closes what it inherited without
 * close-on-exec (`closeInheritedDescriptors`), so a leak from whatever started it does not force
 * the wrapper on every spawn either. Where /proc cannot tell, every spawn goes through the wrapper.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, closeSync, constants, openSync, readdirSync, readFileSync, readSync, realpathSync } from "node:fs";

/** Environment variable that tags every process the agent starts (and, inherited, their children). */
export const PROCESS_TAG_ENV = "EDGETTY_PROCESS";
/** The descriptor the self-test leaves open; above 9 because POSIX sh cannot name those. */
export const DESCRIPTOR_PROBE_FD = 12;
/** Longest the self-test may take, in milliseconds. */
const SELF_TEST_TIMEOUT_MS = 5_000;
/** O_CLOEXEC as /proc/<pid>/fdinfo/<fd> shows it in `flags` (octal; Linux's generic value, checked once by `fdinfoShowsCloexec`). */
const FDINFO_CLOEXEC = 0o2000000;
/** Descriptors looked at per check, at most; a process holding more is treated as leaking. */
const DESCRIPTORS_CHECKED_MAX = 4096;

/**
 * Closes every descriptor above 2, then runs "$@". Run as `<interpreter> -p -c SCRIPT edgetty-launch
 * FILE ARGS…` (bash) or `<interpreter> -c …` (a POSIX sh that can name descriptors above 9).
 */
const CLOSE_FDS_SCRIPT = [
  "__edgetty_d=/proc/self/fd",
  "[ -d $__edgetty_d ] || __edgetty_d=/dev/fd",
  "for __edgetty_f in $__edgetty_d/*; do",
  "  __edgetty_n=${__edgetty_f##*/}",
  "  case $__edgetty_n in ''|*[!0-9]*) continue ;; esac",
  '  [ "$__edgetty_n" -gt 2 ] && eval "exec $__edgetty_n>&-"',
  "done",
  "unset __edgetty_d __edgetty_f __edgetty_n",
  'exec "$@"',
].join("\n");

/** A program ready to hand to node-pty or child_process.spawn. */
export interface LaunchCommand {
  file: string;
  args: string[];
  env: Record<string, string>;
}

/** Builds the launch of `file args` (launchCommand, or a variant that switches user first). */
export type Launcher = (file: string, args: readonly string[], env: Record<string, string>, tag: string | null) => LaunchCommand;

/** What a process belongs to: a terminal (`t`, id `<terminal id>-<start count>`) or /execute (`x`). */
export interface ProcessOwner {
  kind: "t" | "x";
  id: string;
}

/**
 * One running agent: `key` is stable across restarts of the agent with the same data folder (so
 * the next agent recognises the previous one's processes); `instance` is this process only.
 */
export interface AgentIdentity {
  key: string;
  instance: string;
}

/** A process's start time in clock ticks since boot (/proc/<pid>/stat field 22), or null. */
export function processStartTime(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const start = Number(fields[19]);
    return Number.isFinite(start) ? start : null;
  } catch {
    return null;
  }
}

/**
 * This agent's identity: the key hashes the data folder's real path; the instance is this
 * process's pid and start time, so "is that instance still running?" has an exact answer.
 */
export function agentIdentity(dataDir: string): AgentIdentity {
  let dir = dataDir;
  try {
    dir = realpathSync(dataDir);
  } catch {
    /* not created yet: the path as given */
  }
  const key = createHash("sha256").update(dir).digest("hex").slice(0, 16);
  return { key, instance: `${process.pid}-${processStartTime(process.pid) ?? Date.now()}` };
}

/** The tag value for one owner: `<key>.<instance>.<kind><id>`. */
export function processTag(agent: AgentIdentity, owner: ProcessOwner): string {
  return `${agent.key}.${agent.instance}.${owner.kind}${owner.id}`;
}

/** A parsed tag (null when the value is not one of ours). */
export function parseProcessTag(value: string): { key: string; pid: number; start: string; owner: string } | null {
  const m = /^([0-9a-f]{16})\.(\d+)-(\d+)\.([tx][0-9A-Za-z-]{1,64})$/.exec(value);
  return m ? { key: m[1]!, pid: Number(m[2]), start: m[3]!, owner: m[4]! } : null;
}

interface Closer {
  file: string;
  args: string[];
}

let closer: Closer | null = null;

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** True when `candidate` really closes a descriptor above 9 before running the program. */
function passesSelfTest(candidate: Closer): boolean {
  const probe = "ls /proc/self/fd 2>/dev/null || ls /dev/fd";
  const stdio: ("ignore" | "pipe")[] = ["ignore", "pipe", "ignore"];
  while (stdio.length <= DESCRIPTOR_PROBE_FD) stdio.push("pipe");
  const result = spawnSync(candidate.file, [...candidate.args, "/bin/sh", "-c", probe], {
    stdio,
    timeout: SELF_TEST_TIMEOUT_MS,
    encoding: "utf8",
    env: { PATH: "/usr/bin:/bin" },
  });
  if (result.status !== 0 || typeof result.stdout !== "string") return false;
  const fds = result.stdout.split(/\s+/).filter(Boolean);
  return fds.includes("0") && !fds.includes(String(DESCRIPTOR_PROBE_FD));
}

/** The interpreter that closes descriptors on this host, chosen once; throws if none works. */
function descriptorCloser(): Closer {
  if (closer) return closer;
  const candidates: Closer[] = [];
  for (const bash of ["/bin/bash", "/usr/bin/bash", "/usr/local/bin/bash"]) {
    if (executable(bash)) {
      candidates.push({ file: bash, args: ["-p", "-c", CLOSE_FDS_SCRIPT, "edgetty-launch"] });
      break;
    }
  }
  // A POSIX sh that can name descriptors above 9 (busybox ash, ksh); dash cannot and fails the test.
  if (executable("/bin/sh")) candidates.push({ file: "/bin/sh", args: ["-c", CLOSE_FDS_SCRIPT, "edgetty-launch"] });
  for (const candidate of candidates) {
    if (passesSelfTest(candidate)) {
      closer = candidate;
      return closer;
    }
  }
  throw new Error("no shell on this host can close inherited descriptors before exec (install bash)");
}

/** Bytes read of an fdinfo file: `flags` is its second line (after `pos`). */
const FDINFO_READ_BYTES = 128;
const fdinfoBuffer = Buffer.alloc(FDINFO_READ_BYTES);

/** The close-on-exec bit of descriptor `fd` of this process: true, false, or null when it is gone or /proc cannot tell. */
function closeOnExec(fd: number): boolean | null {
  // open + one read + close (half the system calls of readFileSync: this runs before every spawn).
  let info: string;
  let handle: number | null = null;
  try {
    handle = openSync(`/proc/self/fdinfo/${fd}`, "r");
    info = fdinfoBuffer.toString("latin1", 0, readSync(handle, fdinfoBuffer, 0, FDINFO_READ_BYTES, null));
  } catch {
    return null;
  } finally {
    if (handle !== null) closeSync(handle);
  }
  const flags = /^flags:\s*([0-7]+)$/m.exec(info);
  return flags ? (parseInt(flags[1]!, 8) & FDINFO_CLOEXEC) !== 0 : null;
}

let fdinfoWorks: boolean | null = null;

/** True once /proc/self/fdinfo is seen to report close-on-exec: a descriptor Node opened (always O_CLOEXEC) shows the bit. */
function fdinfoShowsCloexec(): boolean {
  if (fdinfoWorks !== null) return fdinfoWorks;
  let fd: number | null = null;
  try {
    fd = openSync("/dev/null", "r");
    fdinfoWorks = closeOnExec(fd) === true;
  } catch {
    fdinfoWorks = false;
  } finally {
    if (fd !== null) closeSync(fd);
  }
  return fdinfoWorks;
}

/**
 * The descriptors above 2 this process holds without close-on-exec (what a child started now
 * would inherit), from /proc/self/fdinfo; null when /proc cannot tell (then assume everything
 * leaks). `first` stops at the first one found.
 */
export function inheritableDescriptors(first = false): number[] | null {
  if (!fdinfoShowsCloexec()) return null;
  let names: string[];
  try {
    names = readdirSync("/proc/self/fdinfo");
  } catch {
    return null;
  }
  if (names.length > DESCRIPTORS_CHECKED_MAX) return null;
  const found: number[] = [];
  for (const name of names) {
    const fd = Number(name);
    if (!Number.isInteger(fd) || fd <= 2) continue;
    // Gone since the listing (the listing's own descriptor, for one): nothing to inherit.
    if (closeOnExec(fd) !== false) continue;
    found.push(fd);
    if (first) break;
  }
  return found;
}

/**
 * Closes the descriptors above 2 this process inherited without close-on-exec, so they are not
 * passed on (and do not force the wrapper on every spawn). For the agent's entry only, before it
 * opens anything of its own: everything Node opens is close-on-exec, so what lacks the bit at
 * start came from whatever started the agent. A process with an IPC channel (a forked child) keeps
 * everything, since the channel's descriptor may be among them. Returns the descriptors closed.
 */
export function closeInheritedDescriptors(): number[] {
  if (process.channel) return [];
  const closed: number[] = [];
  for (const fd of inheritableDescriptors() ?? []) {
    try {
      closeSync(fd);
      closed.push(fd);
    } catch {
      /* already closed */
    }
  }
  return closed;
}

/**
 * `file args` ready to start with only descriptors 0-2 and `env` plus the owner's tag (see
 * processTag; null for short helpers such as a user look-up, which carry none): the program
 * itself when no descriptor above 2 would be inherited, else wrapped in the descriptor closer.
 * Spawn the result at once, in the same synchronous step: the check holds for this moment. The
 * tag is set last, so a caller's `env` cannot replace it. Throws when the host has no working
 * descriptor closer (see the module comment), whether or not this spawn needs it.
 */
export function launchCommand(file: string, args: readonly string[], env: Record<string, string>, tag: string | null): LaunchCommand {
  const wrapper = descriptorCloser();
  const leaks = inheritableDescriptors(true);
  if (leaks !== null && leaks.length === 0) return { file, args: [...args], env: withTag(env, tag) };
  return wrappedCommand(wrapper, file, args, withTag(env, tag));
}

/**
 * `file args` with `env` plus the owner's tag, never wrapped: for a command this process does not
 * start itself but hands to the PTY host (exec/pty-host-main.ts), which checks its own descriptors
 * with {@link guardLaunch} when it spawns.
 */
export function taggedCommand(file: string, args: readonly string[], env: Record<string, string>, tag: string | null): LaunchCommand {
  return { file, args: [...args], env: withTag(env, tag) };
}

/**
 * `command` as this process may start it now: as is when no descriptor above 2 would be inherited,
 * else wrapped in the descriptor closer (see launchCommand; spawn the result in the same
 * synchronous step). Throws when the host has no working descriptor closer.
 */
export function guardLaunch(command: LaunchCommand): LaunchCommand {
  const wrapper = descriptorCloser();
  const leaks = inheritableDescriptors(true);
  if (leaks !== null && leaks.length === 0) return command;
  return wrappedCommand(wrapper, command.file, command.args, command.env);
}

/**
 * `file args` always wrapped in the descriptor closer, whatever this process holds (for tests of
 * the closer itself, and callers that hand the command to a process that may leak).
 */
export function closerCommand(file: string, args: readonly string[], env: Record<string, string>, tag: string | null): LaunchCommand {
  return wrappedCommand(descriptorCloser(), file, args, withTag(env, tag));
}

/** The agent's own token variable: no child ever starts with it, whoever asked for it. */
export const AGENT_SECRET_ENV = "EDGETTY_AGENT_TOKEN";

/** `env` with the owner's tag set last (or removed, for `null`), never the agent's token variable. */
function withTag(env: Record<string, string>, tag: string | null): Record<string, string> {
  const tagged: Record<string, string> = { ...env };
  delete tagged[AGENT_SECRET_ENV];
  delete tagged[PROCESS_TAG_ENV];
  if (tag !== null) tagged[PROCESS_TAG_ENV] = tag;
  return tagged;
}

function wrappedCommand(wrapper: Closer, file: string, args: readonly string[], env: Record<string, string>): LaunchCommand {
  return { file: wrapper.file, args: [...wrapper.args, file, ...args], env };
}
