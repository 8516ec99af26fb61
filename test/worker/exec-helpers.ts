/** Helpers for the execute API tests: process liveness, pids in output, collecting a stream. */
import { readFileSync } from "node:fs";
import type { StreamEvent } from "../../shared/open-terminal.ts";

/** True while `pid` is a live (not zombie) process. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat[stat.lastIndexOf(")") + 2];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** Every pid printed (one per line) in `text`. */
export function pidsIn(text: string): number[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /^\d+$/.test(l))
    .map(Number);
}

export interface Timed<T> {
  at: number;
  value: T;
}

/** Collects every event of a stream with the time (ms since `start`) it arrived. */
export async function collectTimed(events: AsyncIterable<StreamEvent>, start = performance.now()): Promise<Timed<StreamEvent>[]> {
  const out: Timed<StreamEvent>[] = [];
  for await (const value of events) out.push({ at: performance.now() - start, value });
  return out;
}
