/**
 * Finds and ends the processes that belong to a terminal, or to an agent that died, by reading
 * /proc (Linux). A process belongs to a terminal when it carries the terminal's tag in its
 * environment (PROCESS_TAG_ENV, inherited by every descendant that does not scrub it), or when it
 * is in the terminal's session (the shell is a session leader, so its session id is the shell's
 * pid; children keep it through process-group changes unless they call setsid). Signals ignored
 * by the process do not matter at the end: whatever is left after the grace gets SIGKILL.
 *
 * What escapes: a process that calls setsid(2) *and* drops the tag from its environment (env -i,
 * a daemon that rebuilds its environment), or that another user owns where the agent is not root
 * (its environment is unreadable and signals are refused); also a process created between the
 * last scan and the last SIGKILL round of a fork storm longer than KILL_ROUNDS_MAX rounds.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync } from "node:fs";
import { PROCESS_TAG_ENV, parseProcessTag, processStartTime, type AgentIdentity } from "./launch.ts";

/** Most of a process's environment read when looking for the tag, in bytes. */
export const ENVIRON_READ_MAX_BYTES = 1 << 20; // 1 MiB
/** Scan-and-SIGKILL rounds at the end (each round catches children forked during the last). */
export const KILL_ROUNDS_MAX = 10;
/** Pause between SIGKILL rounds, in milliseconds (the kernel tears a killed process down meanwhile). */
export const KILL_ROUND_WAIT_MS = 50;
/**
 * Grace between SIGHUP and SIGKILL when a terminal ends, in milliseconds: its shell's group and
 * every other process of the terminal are hung up, and whatever is left after this long,
 * HUP-immune or not, is SIGKILLed. The agent's own and orphaned processes get the same grace.
 */
export const KILL_GRACE_MS = 2_000;

const TAG_PREFIX = Buffer.from(`${PROCESS_TAG_ENV}=`);
let environBuffer: Buffer | null = null;

/** One process as /proc/<pid>/stat describes it. */
export interface ProcessInfo {
  pid: number;
  /** Session id (stat field 6). */
  sid: number;
  /** Start time in clock ticks since boot (stat field 22). */
  start: number;
  /** Executable name (stat field 2). */
  comm: string;
}

/** A session leader identified exactly (pid plus start time, so a recycled pid is not taken for it). */
export interface SessionLeader {
  pid: number;
  start: number;
}

function readStat(pid: number): (ProcessInfo & { state: string }) | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return null;
  }
  const close = stat.lastIndexOf(")");
  const comm = stat.slice(stat.indexOf("(") + 1, close);
  const f = stat.slice(close + 2).split(" ");
  return { pid, state: f[0] ?? "?", sid: Number(f[3]), start: Number(f[19]), comm };
}

/** The value of the tag in a process's environment, or null (none, unreadable, or gone). */
export function readProcessTag(pid: number): string | null {
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/environ`, "r");
  } catch {
    return null;
  }
  environBuffer ??= Buffer.allocUnsafe(ENVIRON_READ_MAX_BYTES);
  let length = 0;
  try {
    for (;;) {
      const n = readSync(fd, environBuffer, length, ENVIRON_READ_MAX_BYTES - length, null);
      if (n <= 0) break;
      length += n;
      if (length >= ENVIRON_READ_MAX_BYTES) break;
    }
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
  const env = environBuffer.subarray(0, length);
  for (let at = 0; at < length; ) {
    const end = env.indexOf(0, at);
    const stop = end === -1 ? length : end;
    if (stop - at > TAG_PREFIX.length && env.subarray(at, at + TAG_PREFIX.length).equals(TAG_PREFIX)) {
      return env.toString("latin1", at + TAG_PREFIX.length, stop);
    }
    at = stop + 1;
  }
  return null;
}

/** Every live process on this host except this one (zombies cannot be signalled and are skipped). */
function listProcesses(): ProcessInfo[] {
  let names: string[];
  try {
    names = readdirSync("/proc");
  } catch {
    return [];
  }
  const out: ProcessInfo[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    const info = readStat(pid);
    if (info && info.state !== "Z" && info.state !== "X") out.push({ pid: info.pid, sid: info.sid, start: info.start, comm: info.comm });
  }
  return out;
}

/**
 * The processes of one terminal: tagged with `tag`, or in the session `leader` started, counted
 * only while the leader's pid is not someone else's (a recycled pid as a new session's leader).
 */
export function terminalProcesses(tag: string, leader: SessionLeader): ProcessInfo[] {
  const leaderStart = processStartTime(leader.pid);
  const sessionValid = leaderStart === null || leaderStart === leader.start;
  // Nothing the terminal started can be older than its shell: only younger processes are read
  // further (their environment is the costly part of a scan).
  return listProcesses().filter(
    (p) => p.start >= leader.start && ((sessionValid && p.sid === leader.pid) || readProcessTag(p.pid) === tag),
  );
}

/** Every process of every instance of this agent (same key) except the running one. */
function instanceProcesses(agent: AgentIdentity, which: "others" | "mine"): (ProcessInfo & { tag: string })[] {
  const out: (ProcessInfo & { tag: string })[] = [];
  const alive = new Map<string, boolean>();
  for (const p of listProcesses()) {
    const tag = readProcessTag(p.pid);
    const parsed = tag ? parseProcessTag(tag) : null;
    if (!tag || !parsed || parsed.key !== agent.key) continue;
    const instance = `${parsed.pid}-${parsed.start}`;
    if (which === "mine") {
      if (instance === agent.instance) out.push({ ...p, tag });
      continue;
    }
    if (instance === agent.instance) continue;
    // Another instance that still runs (two agents on one data folder) keeps its processes.
    let running = alive.get(instance);
    if (running === undefined) {
      running = String(processStartTime(parsed.pid)) === parsed.start;
      alive.set(instance, running);
    }
    if (!running) out.push({ ...p, tag });
  }
  return out;
}

/** Processes left by earlier instances of this agent that are no longer running. */
export function orphanedProcesses(agent: AgentIdentity): (ProcessInfo & { tag: string })[] {
  return instanceProcesses(agent, "others");
}

/** Every process this agent instance started (and their tagged descendants). */
export function ownProcesses(agent: AgentIdentity): ProcessInfo[] {
  return instanceProcesses(agent, "mine");
}

/** Sends `sig` to `p` if its pid still names the same process. */
function signalProcess(p: ProcessInfo, sig: NodeJS.Signals): void {
  if (processStartTime(p.pid) !== p.start) return;
  try {
    process.kill(p.pid, sig);
  } catch {
    /* gone, or not ours to signal */
  }
}

/** Hangs up each process (with SIGCONT, so a stopped job sees it). */
export function hangUp(processes: readonly ProcessInfo[]): void {
  for (const p of processes) {
    signalProcess(p, "SIGHUP");
    signalProcess(p, "SIGCONT");
  }
}

/**
 * SIGKILLs what `select` finds, rescanning after each round (KILL_ROUND_WAIT_MS apart) so children
 * forked meanwhile are caught too; resolves with what was still there after KILL_ROUNDS_MAX
 * rounds (normally nothing).
 */
export async function killAll(select: () => ProcessInfo[]): Promise<ProcessInfo[]> {
  let left = select();
  for (let round = 0; round < KILL_ROUNDS_MAX && left.length > 0; round++) {
    for (const p of left) signalProcess(p, "SIGKILL");
    await new Promise((resolve) => setTimeout(resolve, KILL_ROUND_WAIT_MS));
    left = select();
  }
  return left;
}

/**
 * Ends what `select` finds: SIGHUP (+SIGCONT) now, then SIGKILL to whatever is left after
 * `graceMs`. Resolves with what survived (normally nothing).
 */
export async function endProcesses(select: () => ProcessInfo[], graceMs: number): Promise<ProcessInfo[]> {
  hangUp(select());
  await new Promise((resolve) => setTimeout(resolve, graceMs));
  return killAll(select);
}

/** Sends `sig` to process group `pgid`; a group that is gone is no error. */
export function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    /* the group is gone */
  }
}

/** Ends one terminal's processes (those with its tag or in its shell's session), once. */
export class TerminalReaper {
  private ending: Promise<void> | null = null;

  constructor(
    private readonly tag: string,
    private readonly leader: SessionLeader,
    private readonly log: (line: string) => void,
  ) {}

  /** Hangs up, then SIGKILLs after {@link KILL_GRACE_MS}, every process of the terminal (once); resolves when done. */
  endAll(): Promise<void> {
    this.ending ??= endProcesses(() => terminalProcesses(this.tag, this.leader), KILL_GRACE_MS).then(
      (left) => {
        if (left.length > 0) this.log(`${left.length} process(es) survived SIGKILL: ${left.map((p) => `${p.pid} (${p.comm})`).join(", ")}`);
      },
      (error: unknown) => this.log(`ending its processes failed: ${(error as Error).message}`),
    );
    return this.ending;
  }

  /** The caller ends them instead (the agent stopping, with one scan for all): endAll() then does nothing. */
  leaveToCaller(): void {
    this.ending ??= Promise.resolve();
  }
}
