/**
 * The walk and glob matching grep and glob share: `os.walk` (top-down, symlinked directories not
 * followed), bounded in entries, with picomatch for `fnmatch`-like patterns. No Node globals
 * beyond fs, so grep's worker thread (grep-worker.ts) runs it as the main thread does.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import picomatch from "picomatch";

/** Directory entries a search looks at, at most. */
export const SEARCH_MAX_ENTRIES = 200_000;

/** One directory of a walk: its subdirectories and its other entries (files, symlinks, FIFOs…). */
export interface Walked {
  dir: string;
  dirs: string[];
  files: string[];
}

/** os.walk, bounded by SEARCH_MAX_ENTRIES entries in total. */
export async function* walk(root: string, budget = { left: SEARCH_MAX_ENTRIES }): AsyncGenerator<Walked> {
  const stack = [root];
  while (stack.length > 0 && budget.left > 0) {
    const dir = stack.pop()!;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    budget.left -= entries.length;
    const dirs: string[] = [];
    const files: string[] = [];
    for (const e of entries) (e.isDirectory() ? dirs : files).push(e.name);
    yield { dir, dirs, files };
    for (const d of [...dirs].reverse()) stack.push(join(dir, d));
  }
}

/**
 * A test of a name or relative path against any of `patterns` (bash-style globs, dotfiles
 * matched). An empty pattern matches nothing, as Python's fnmatch (picomatch refuses it).
 */
export function matcher(patterns: string[]): (s: string) => boolean {
  const m = patterns.filter((p) => p !== "").map((p) => picomatch(p, { dot: true, bash: true }));
  return (s) => m.some((f) => f(s));
}
