/**
 * `GET /files/grep` and `GET /files/glob` on the agent, walking as Python's `os.walk` does
 * (top-down, symlinked directories not followed, names sorted within a directory) with glob
 * matching by a kept library (picomatch, `fnmatch`-like: `*` may cross `/` on relative paths).
 * Every walk is bounded in files visited and bytes read, so a search of `/` ends.
 *
 * Grep runs in a worker thread of its own (grep-worker.ts) with a time budget: a query that
 * backtracks catastrophically (`(a+)+$`) or a walk of a huge tree blocks that thread only, which
 * is terminated at GREP_TIME_MAX_MS (the answer is what was found, `truncated: true`) or as soon
 * as the caller goes away. The agent's main thread, with every terminal, never runs the regex.
 */
import { stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { Worker } from "node:worker_threads";
import { OtCode, otError, type GlobQuery, type GrepQuery } from "../../../shared/open-terminal.ts";
import type { GrepJob, GrepMatch } from "./grep-core.ts";
import type { FromGrepThread } from "./grep-worker.ts";
import { FileApiError, fail } from "./paths.ts";
import { fromPythonRegex } from "./python-regex.ts";
import { matcher, walk } from "./search-walk.ts";

export { SEARCH_MAX_ENTRIES } from "./search-walk.ts";
export { GREP_FILE_MAX_BYTES, GREP_LINE_MAX_CHARS } from "./grep-core.ts";

/** Longest a grep runs, in milliseconds; then its thread is terminated and it answers what it found, `truncated: true`. */
export const GREP_TIME_MAX_MS = 10_000;
/** Greps running at once per agent (or per account's file server), each in a thread; past it 429. */
export const GREP_THREADS_MAX = 4;
/** A grep thread's old-generation heap, in MB: past it the thread dies, not the agent (answered as truncated). */
export const GREP_THREAD_HEAP_MB = 256;
/** A grep thread's young generation, in MB (small, as the agent's own, see bin/edgetty.js). */
const GREP_THREAD_YOUNG_MB = 4;

let grepThreads = 0;

/** Greps running now in this process (each in its thread). */
export function grepsRunning(): number {
  return grepThreads;
}

/**
 * The grep thread's program: from the sources, the entry that registers tsx and imports
 * grep-worker.ts; in the agent bundle, `edgetty-grep-worker.mjs` beside it (scripts/build-agent.mjs).
 */
function grepWorkerEntry(): URL {
  const here = import.meta.url;
  return new URL(here.endsWith(".ts") ? "./grep-worker-entry.mjs" : "./edgetty-grep-worker.mjs", here);
}

/**
 * Runs `job` in a grep thread for at most `timeMs`; the thread is terminated at the deadline or
 * when `signal` aborts, and the matches found by then are the answer with `truncated: true`
 * (also when the thread ran out of its heap). Other thread failures reject.
 */
export function grepInThread(job: GrepJob, signal: AbortSignal | undefined, timeMs = GREP_TIME_MAX_MS): Promise<{ matches: GrepMatch[]; truncated: boolean }> {
  return new Promise((resolve, reject) => {
    const matches: GrepMatch[] = [];
    const worker = new Worker(grepWorkerEntry(), {
      workerData: job,
      resourceLimits: { maxOldGenerationSizeMb: GREP_THREAD_HEAP_MB, maxYoungGenerationSizeMb: GREP_THREAD_YOUNG_MB },
    });
    let settled = false;
    const finish = (error: Error | null, truncated = true) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", stop);
      void worker.terminate();
      if (error) reject(error);
      else resolve({ matches, truncated });
    };
    const stop = () => finish(null);
    const timer = setTimeout(stop, timeMs);
    if (signal?.aborted) stop();
    signal?.addEventListener("abort", stop, { once: true });
    worker.on("message", (m: FromGrepThread) => {
      if (m.t === "match") {
        if (matches.length < job.max_results) matches.push(m.match);
      } else finish(null, m.truncated);
    });
    worker.on("error", (error: Error & { code?: string }) => finish(error.code === "ERR_WORKER_OUT_OF_MEMORY" ? null : error));
    worker.on("exit", (code) => finish(new Error(`grep thread exited (${code}) before it finished`)));
  });
}

/**
 * `GET /files/grep`: `{query, path, matches, truncated}`; binary, unreadable, non-regular and
 * oversized files are skipped. `truncated` is also true when the search ran out of its time
 * budget (GREP_TIME_MAX_MS). 429 when GREP_THREADS_MAX greps are running already.
 */
export async function grep(target: string, q: GrepQuery, signal?: AbortSignal, timeMs = GREP_TIME_MAX_MS): Promise<Response> {
  const s = await stat(target).catch(() => null);
  if (!s) fail(404, "Search path not found");
  let source: string;
  let flags: string;
  try {
    // The query is a Python pattern, as the reference compiles it (python-regex.ts).
    ({ source, flags } = q.regex ? fromPythonRegex(q.query) : { source: q.query.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), flags: "u" });
    if (q.case_insensitive && !flags.includes("i")) flags += "i";
    // Compiled here only to answer 400 for a bad pattern; it is matched in the grep thread.
    new RegExp(source, flags);
  } catch (e) {
    fail(400, `Invalid regex: ${(e as Error).message}`);
  }
  if (grepThreads >= GREP_THREADS_MAX) throw new FileApiError(otError(429, OtCode.TOO_MANY_REQUESTS, `Too many searches at once (${GREP_THREADS_MAX}); try again when one has finished`));
  grepThreads++;
  try {
    const job: GrepJob = { target, isFile: s.isFile(), source, flags, include: q.include, match_per_line: q.match_per_line, max_results: q.max_results };
    const { matches, truncated } = await grepInThread(job, signal, timeMs);
    return Response.json({ query: q.query, path: target, matches, truncated });
  } finally {
    grepThreads--;
  }
}

/** `GET /files/glob`: `{pattern, path, matches:[{path (relative), type, size, modified}], truncated}`. */
export async function glob(target: string, q: GlobQuery): Promise<Response> {
  if (!(await stat(target).catch(() => null))?.isDirectory()) fail(404, "Search directory not found");
  const match = matcher([q.pattern]);
  const excluded = q.exclude.length ? matcher(q.exclude) : () => false;
  const matches: { path: string; type: string; size: number; modified: number }[] = [];
  let truncated = false;
  for await (const { dir, dirs, files } of walk(target)) {
    if (truncated) break;
    const entries: [string, "file" | "directory"][] = [];
    if (q.type !== "file") for (const d of dirs) entries.push([d, "directory"]);
    if (q.type !== "directory") for (const f of files) entries.push([f, "file"]);
    entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const [name, type] of entries) {
      const full = join(dir, name);
      const rel = relative(target, full);
      if (!match(name) && !match(rel)) continue;
      if (excluded(name) || excluded(rel)) continue;
      const info = await stat(full).catch(() => null);
      if (!info) continue;
      matches.push({ path: rel, type, size: info.size, modified: info.mtimeMs / 1000 });
      if (matches.length >= q.max_results) {
        truncated = true;
        break;
      }
    }
  }
  return Response.json({ pattern: q.pattern, path: target, matches, truncated });
}
