/**
 * Signals everything a command started: its process group (pgid = the leader's pid, since
 * every command starts in its own session) and, found through /proc, any process that left the
 * group but stayed in the command's session (a shell with job control gives each job its own
 * group). A process that starts a new session of its own escapes both, as it would on any Unix.
 */
import { readdirSync, readFileSync } from "node:fs";

/** /proc entries read per kill, at most (a guard against a runaway process table). */
const PROC_SCAN_MAX_ENTRIES = 65_536;

/** The session id of `pid` from /proc/<pid>/stat (field 6), or null. */
function sessionOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    // The command name (field 2) may contain spaces and parentheses: parse after its last ')'.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const sid = Number(rest[3]);
    return Number.isInteger(sid) ? sid : null;
  } catch {
    return null;
  }
}

/** Pids in the session led by `leader` (the leader included), from /proc; [] where there is no /proc. */
export function sessionMembers(leader: number): number[] {
  let names: string[];
  try {
    names = readdirSync("/proc");
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const name of names.slice(0, PROC_SCAN_MAX_ENTRIES)) {
    const pid = Number(name);
    if (Number.isInteger(pid) && pid > 0 && sessionOf(pid) === leader) out.push(pid);
  }
  return out;
}

/** Sends `sig` to the process group `leader` leads and to every other member of its session. */
export function signalTree(leader: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-leader, sig);
  } catch {
    /* no group left */
  }
  for (const pid of sessionMembers(leader)) {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}
