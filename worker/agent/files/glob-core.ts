/**
 * `/files/glob`'s search, run in a search thread (grep-worker.ts) as grep is: picomatch turns a
 * pattern into a regular expression, and a pattern such as `*a*a*a*a*a*a*a*a*a*a*b` backtracks
 * exponentially in the length of the names it is tried on (23 s for one 32-character name), so
 * it must never run on the agent's main thread, where every terminal is.
 */
import { stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { matcher, walk } from "./search-walk.ts";

/** One glob hit, as the reference answers it: `path` relative to the searched directory, `modified` in epoch seconds. */
export interface GlobMatch {
  path: string;
  type: "file" | "directory";
  size: number;
  modified: number;
}

/** What the search thread is given (structured-clone data). */
export interface GlobJob {
  /** The absolute path of the directory searched. */
  target: string;
  pattern: string;
  exclude: string[];
  type: "file" | "directory" | "any";
  max_results: number;
}

/**
 * Runs `job`, calling `found` for each match as it is found (a search stopped midway has given
 * what it found); resolves with `truncated` (max_results reached). Within a directory, entries are
 * taken in name order; a name or its path relative to the target may match.
 */
export async function runGlob(job: GlobJob, found: (m: GlobMatch) => void): Promise<{ truncated: boolean }> {
  const match = matcher([job.pattern]);
  const excluded = job.exclude.length ? matcher(job.exclude) : () => false;
  let count = 0;
  for await (const { dir, dirs, files } of walk(job.target)) {
    const entries: [string, "file" | "directory"][] = [];
    if (job.type !== "file") for (const d of dirs) entries.push([d, "directory"]);
    if (job.type !== "directory") for (const f of files) entries.push([f, "file"]);
    entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const [name, type] of entries) {
      const full = join(dir, name);
      const rel = relative(job.target, full);
      if (!match(name) && !match(rel)) continue;
      if (excluded(name) || excluded(rel)) continue;
      const info = await stat(full).catch(() => null);
      if (!info) continue;
      found({ path: rel, type, size: info.size, modified: info.mtimeMs / 1000 });
      if (++count >= job.max_results) return { truncated: true };
    }
  }
  return { truncated: false };
}
