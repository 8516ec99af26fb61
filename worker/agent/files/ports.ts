/**
 * `GET /ports`: TCP listeners owned by processes this agent started (its descendants: the
 * commands of /execute and the shells of terminals), read from /proc as the reference does —
 * /proc/net/tcp{,6} for listening sockets, /proc/<pid>/fd for who holds them.
 */
import { readdir, readFile, readlink } from "node:fs/promises";

/** Processes looked at per call, at most. */
const PORTS_MAX_PROCS = 65_536;
/** Sockets one process may contribute, at most. */
const PORTS_MAX_FDS_PER_PROC = 4096;

export interface PortInfo {
  port: number;
  pid: number;
  process: string;
}

/** Listening sockets: inode → port. */
async function listeners(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const text = await readFile(file, "latin1").catch(() => "");
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== "0A") continue; // 0A = LISTEN
      const port = parseInt(f[1]!.split(":")[1] ?? "", 16);
      if (Number.isInteger(port)) out.set(f[9]!, port);
    }
  }
  return out;
}

/** Pid → parent pid for every process. */
async function parents(): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  const names = (await readdir("/proc").catch(() => [] as string[])).filter((n) => /^\d+$/.test(n)).slice(0, PORTS_MAX_PROCS);
  for (const name of names) {
    const stat = await readFile(`/proc/${name}/stat`, "latin1").catch(() => "");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ppid = Number(rest[1]);
    if (Number.isInteger(ppid)) out.set(Number(name), ppid);
  }
  return out;
}

/** Pids descended from `root` (not `root` itself). */
export function descendants(root: number, parentOf: Map<number, number>): Set<number> {
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parentOf) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  const out = new Set<number>();
  const stack = [root];
  while (stack.length > 0) {
    for (const child of children.get(stack.pop()!) ?? []) {
      if (!out.has(child)) {
        out.add(child);
        stack.push(child);
      }
    }
  }
  return out;
}

/** The real uid of `pid` (/proc/<pid>/status), or null. */
async function uidOf(pid: number): Promise<number | null> {
  const status = await readFile(`/proc/${pid}/status`, "latin1").catch(() => "");
  const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
  return uid === undefined ? null : Number(uid);
}

/**
 * `{ports:[{port, pid, process}]}`, sorted by port; with `uid`, only processes running as that
 * user (multi-user mode: a user sees their own servers, as the reference filters by uid).
 */
export async function listPorts(root = process.pid, uid?: number): Promise<{ ports: PortInfo[] }> {
  const sockets = await listeners();
  if (sockets.size === 0) return { ports: [] };
  const ours = descendants(root, await parents());
  const seen = new Set<number>();
  const ports: PortInfo[] = [];
  for (const pid of ours) {
    if (uid !== undefined && (await uidOf(pid)) !== uid) continue;
    const fds = (await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])).slice(0, PORTS_MAX_FDS_PER_PROC);
    for (const fd of fds) {
      const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
      const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
      const port = inode ? sockets.get(inode) : undefined;
      if (port === undefined || seen.has(port)) continue;
      seen.add(port);
      const name = (await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")).trim();
      ports.push({ port, pid, process: name });
    }
  }
  return { ports: ports.sort((a, b) => a.port - b.port) };
}
