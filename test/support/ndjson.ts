/**
 * Readers for the Open Terminal API in end-to-end tests: NDJSON stream lines with the time each
 * one arrived, and facts about local processes (/proc) for kill and memory checks.
 */
import { readdirSync, readFileSync } from "node:fs";
import { expect } from "vitest";
import { ndjsonLines as lines } from "../../shared/ndjson.ts";
import { until } from "./waiters.ts";

export interface Arrival<T> {
  /** Milliseconds since the reader started. */
  at: number;
  value: T;
}

/** Every NDJSON line of `res`'s body, parsed, with its arrival time. */
export async function* ndjsonLines<T = Record<string, unknown>>(res: Response, start = performance.now()): AsyncGenerator<Arrival<T>> {
  if (!res.body) return;
  for await (const line of lines(res.body as unknown as AsyncIterable<Uint8Array>)) {
    yield { at: performance.now() - start, value: JSON.parse(line) as T };
  }
}

/** Pids of live processes running exactly `argv` (e.g. `["sleep", "123"]`). */
export function pidsRunning(argv: string[]): number[] {
  return pidsMatching(argv.join("\0") + "\0", true);
}

/** Pids of live processes whose command line contains `marker` (or, with `exact`, is it). */
export function pidsMatching(marker: string, exact = false): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const raw = readFileSync(`/proc/${name}/cmdline`, "utf8");
      const cmdline = exact ? raw : raw.replaceAll("\0", " ");
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const state = stat[stat.lastIndexOf(")") + 2];
      if ((exact ? cmdline === marker : cmdline.includes(marker)) && state !== "Z" && state !== "X") out.push(Number(name));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** The parent pid of `pid`, or null when it is gone. */
function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return null;
  }
}

/** `root` and every live descendant of it. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const parent = parentOf(Number(name));
    if (parent !== null) children.set(parent, [...(children.get(parent) ?? []), Number(name)]);
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const child of children.get(pid) ?? []) walk(child);
  };
  walk(root);
  return out;
}

/** A field of /proc/PID/status or /proc/PID/io as a number (kB for memory fields), or 0. */
function procField(pid: number, file: "status" | "io", field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(readFileSync(`/proc/${pid}/${file}`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Resident memory of `pid`, in bytes. */
export function rssBytes(pid: number): number {
  return procField(pid, "status", "VmRSS") * 1024;
}

/** Bytes `pid` has written so far (any fd). */
export function writtenBytes(pid: number): number {
  return procField(pid, "io", "wchar");
}

/**
 * A byte count near `base` that no other test's command line has (tests in other files run at the
 * same time, and `untilBlocked` finds a process by its exact argv).
 */
export function uniqueSize(base: number): number {
  return base + 1 + Math.floor(Math.random() * 99_999);
}

/**
 * Waits until the process running exactly `argv` has started and then written nothing between two
 * checks `everyMs` apart (blocked on a full pipe); resolves with how many bytes it had written.
 */
export async function untilBlocked(argv: string[], options: { timeoutMs?: number; everyMs?: number } = {}): Promise<number> {
  const pid = await until(`${argv[0]} to start`, () => pidsRunning(argv)[0]);
  let last = -1;
  await until(
    `${argv[0]} to stop writing`,
    () => {
      const now = writtenBytes(pid);
      const same = now === last;
      last = now;
      return same;
    },
    { everyMs: 200, ...options },
  );
  expect(pidsRunning(argv)).toContain(pid); // still there: blocked, not finished
  return last;
}

/** The workerd process serving the stack whose state folder is `stateDir` (a descendant of its wrangler). */
export function workerdPidOf(stateDir: string): number {
  const wrangler = pidsMatching(stateDir).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("wrangler");
    } catch {
      return false;
    }
  });
  for (const root of wrangler) {
    for (const pid of processTree(root)) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("workerd")) return pid;
      } catch {
        /* gone meanwhile */
      }
    }
  }
  throw new Error("workerd not found");
}
