/**
 * The search `GET /files/grep` runs, off the agent's main thread (grep-worker.ts runs it in a
 * worker thread that search.ts ends at its time budget): walk, bounded reads, line matching.
 * Binary (not UTF-8), unreadable, non-regular (FIFOs, sockets, devices) and oversized files are
 * skipped; size is judged on the bytes read (procfs says 0), never on `stat().size` alone.
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { readRegularUpTo } from "./bounded-read.ts";
import { matcher, walk } from "./search-walk.ts";

/** Files larger than this are skipped by grep, in bytes (a read stops one byte past it). */
export const GREP_FILE_MAX_BYTES = 16 << 20; // 16 MiB
/** Longest line content returned by grep, in characters. */
export const GREP_LINE_MAX_CHARS = 4096;

/** One grep hit: a line (`match_per_line`) or a file. */
export type GrepMatch = { file: string; line: number; content: string } | { file: string };

/** What the worker thread is given (structured-clone data). */
export interface GrepJob {
  /** The absolute path searched: a file or a directory. */
  target: string;
  isFile: boolean;
  /** A JavaScript pattern and flags (python-regex.ts's translation, compiled once by the caller to check it). */
  source: string;
  flags: string;
  include: string[];
  match_per_line: boolean;
  max_results: number;
}

/**
 * Runs `job`, calling `found` for each match as it is found (so a search stopped midway has
 * given what it found); resolves with `truncated` (max_results reached).
 */
export async function runGrep(job: GrepJob, found: (m: GrepMatch) => void): Promise<{ truncated: boolean }> {
  const re = new RegExp(job.source, job.flags);
  const include = job.include.length ? matcher(job.include) : () => true;
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  let count = 0;
  let truncated = false;

  const searchFile = async (file: string): Promise<void> => {
    // Only what stat says is a regular file is opened (the descriptor is checked again): opening a
    // device can act by itself (a watchdog arms, a serial line's DTR drops, a tape rewinds, a
    // FIFO's blocked writer is let go), and a grep of `/` would open every node under /dev.
    if (!(await stat(file).catch(() => null))?.isFile()) return;
    let text: string;
    try {
      const read = await readRegularUpTo(file, GREP_FILE_MAX_BYTES);
      if (!read?.content) return;
      text = utf8.decode(read.content);
    } catch {
      return;
    }
    let line = 0;
    for (const content of text.split(/\r?\n/)) {
      line++;
      if (!re.test(content)) continue;
      found(job.match_per_line ? { file, line, content: content.slice(0, GREP_LINE_MAX_CHARS) } : { file });
      if (++count >= job.max_results) truncated = true;
      if (truncated || !job.match_per_line) return;
    }
  };

  if (job.isFile) await searchFile(job.target);
  else
    for await (const { dir, files } of walk(job.target)) {
      if (truncated) break;
      for (const name of files.sort()) {
        if (truncated) break;
        if (include(name)) await searchFile(join(dir, name));
      }
    }
  return { truncated };
}
