/**
 * `GET /files/grep` and `GET /files/glob` on the agent, walking as Python's `os.walk` does
 * (top-down, symlinked directories not followed, names sorted within a directory) with glob
 * matching by a kept library (picomatch, `fnmatch`-like: `*` may cross `/` on relative paths).
 * Every walk is bounded in files visited and bytes read, so a search of `/` ends.
 *
 * Each search runs in a worker thread of its own (grep-worker.ts) with a time budget: a grep query
 * that backtracks catastrophically (`(a+)+$`), a glob pattern whose regular expression does
 * (`*a*a*a*a*a*a*a*a*b` on a long name), or a walk of a huge tree blocks that thread only, which
 * is terminated at SEARCH_TIME_MAX_MS (the answer is what was found, `truncated: true`) or as
 * soon as the caller goes away. The agent's main thread, with every terminal, never runs either.
 */
import { stat } from "node:fs/promises";
import { Worker } from "node:worker_threads";
import { OtCode, otError, type GlobQuery, type GrepQuery } from "../../../shared/open-terminal.ts";
import type { GlobMatch } from "./glob-core.ts";
import type { GrepMatch } from "./grep-core.ts";
import type { DocumentJob, FromSearchThread, SearchJob } from "./grep-worker.ts";
import { FileApiError, fail } from "./paths.ts";
import { fromPythonRegex } from "./python-regex.ts";
import { ExtractorMissing } from "./documents.ts";

export { SEARCH_MAX_ENTRIES } from "./search-walk.ts";
export { GREP_FILE_MAX_BYTES, GREP_LINE_MAX_CHARS } from "./grep-core.ts";

/** Longest a grep or glob runs, in milliseconds; then its thread is terminated and it answers what it found, `truncated: true`. */
export const SEARCH_TIME_MAX_MS = 10_000;
/** Searches (greps and globs) running at once per agent (or per account's file server), each in a thread; past it 429. */
export const SEARCH_THREADS_MAX = 4;
/** A search thread's old-generation heap, in MB: past it the thread dies, not the agent (answered as truncated). */
export const SEARCH_THREAD_HEAP_MB = 256;
/** A search thread's young generation, in MB (small, as the agent's own, see bin/edgetty.js). */
const SEARCH_THREAD_YOUNG_MB = 4;
/** Longest the text extraction of one document runs, in milliseconds; then its thread is terminated and the read answers 400. */
export const DOCUMENT_TIME_MAX_MS = 60_000;
/** The old-generation heap of a thread extracting a document's text, in MB (a 64 MiB spreadsheet's cells need far more than a search). */
export const DOCUMENT_THREAD_HEAP_MB = 2048;
/**
 * How long a document thread that has answered waits for the next document, in milliseconds:
 * its libraries take most of a second to load (a small .docx: 14–50 ms to extract on a waiting
 * thread, 0.4–0.8 s on a new one), so reads in a row share one thread. At most one waits.
 */
export const DOCUMENT_THREAD_IDLE_MS = 60_000;

let searchThreads = 0;

/** Searches running now in this process (each in its thread). */
export function searchesRunning(): number {
  return searchThreads;
}

/**
 * The search thread's program: from the sources, the entry that registers tsx and imports
 * grep-worker.ts; in the agent bundle, `edgetty-grep-worker.mjs` beside it (scripts/build-agent.mjs).
 */
function searchWorkerEntry(): URL {
  const here = import.meta.url;
  return new URL(here.endsWith(".ts") ? "./grep-worker-entry.mjs" : "./edgetty-grep-worker.mjs", here);
}

/**
 * Runs `job` in a search thread of its own for at most `timeMs`, taking one of
 * SEARCH_THREADS_MAX (429 when none is left); the thread is terminated at the deadline or when
 * `signal` aborts, and the first `maxResults` matches found by then are the answer with
 * `truncated: true` (also when the thread ran out of its heap). Other thread failures reject.
 */
async function searchInThread<M>(job: SearchJob, maxResults: number, signal: AbortSignal | undefined, timeMs: number): Promise<{ matches: M[]; truncated: boolean }> {
  if (searchThreads >= SEARCH_THREADS_MAX) throw new FileApiError(otError(429, OtCode.TOO_MANY_REQUESTS, `Too many searches at once (${SEARCH_THREADS_MAX}); try again when one has finished`));
  searchThreads++;
  try {
    return await new Promise((resolve, reject) => {
      const matches: M[] = [];
      const worker = new Worker(searchWorkerEntry(), {
        workerData: job,
        resourceLimits: { maxOldGenerationSizeMb: SEARCH_THREAD_HEAP_MB, maxYoungGenerationSizeMb: SEARCH_THREAD_YOUNG_MB },
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
      worker.on("message", (m: FromSearchThread) => {
        if (m.t === "match") {
          if (matches.length < maxResults) matches.push(m.match as M);
        } else if (m.t === "done") finish(null, m.truncated);
      });
      worker.on("error", (error: Error & { code?: string }) => finish(error.code === "ERR_WORKER_OUT_OF_MEMORY" ? null : error));
      worker.on("exit", (code) => finish(new Error(`search thread exited (${code}) before it finished`)));
    });
  } finally {
    searchThreads--;
  }
}

/** Document threads started so far in this process. */
let documentThreads = 0;

/** How many document threads this process has started (each read that found none waiting starts one). */
export function documentThreadsStarted(): number {
  return documentThreads;
}

/** The document thread waiting for its next document (at most one), and the timer that ends it. */
let idleDocumentThread: { worker: Worker; timer: NodeJS.Timeout } | null = null;

/** The waiting document thread, or a new one. */
function documentThread(): Worker {
  const idle = idleDocumentThread;
  if (idle) {
    clearTimeout(idle.timer);
    idleDocumentThread = null;
    return idle.worker;
  }
  documentThreads++;
  const worker = new Worker(searchWorkerEntry(), {
    workerData: { kind: "documents" } satisfies SearchJob,
    resourceLimits: { maxOldGenerationSizeMb: DOCUMENT_THREAD_HEAP_MB, maxYoungGenerationSizeMb: SEARCH_THREAD_YOUNG_MB },
  });
  // While it waits nobody else listens: a failure then only ends it (an unheard 'error' would end the agent).
  worker.on("error", () => {});
  worker.on("exit", () => {
    if (idleDocumentThread?.worker !== worker) return;
    clearTimeout(idleDocumentThread.timer);
    idleDocumentThread = null;
  });
  worker.unref(); // the agent's links keep it running; a thread alone must not
  return worker;
}

/** Keeps a thread that answered for the next document for DOCUMENT_THREAD_IDLE_MS (or ends it: one already waits). */
function keepDocumentThread(worker: Worker): void {
  if (idleDocumentThread) return void worker.terminate();
  const timer = setTimeout(() => void worker.terminate(), DOCUMENT_THREAD_IDLE_MS);
  timer.unref();
  idleDocumentThread = { worker, timer };
}

/**
 * The text of a document (documents.ts extractText), extracted in a thread of its own: parsing a
 * hostile or merely large document (a 775 kB .docx of 300 000 short paragraphs took 24 s) keeps
 * that thread busy, never the agent's main thread, which relays every terminal (its links'
 * heartbeats timed out meanwhile). Takes one of SEARCH_THREADS_MAX (429 when none is left); past
 * `timeMs`, or out of its heap, the thread is ended and the extraction fails (a thread that
 * answered is kept for the next document, DOCUMENT_THREAD_IDLE_MS). Throws ExtractorMissing when
 * the library is not installed.
 */
export async function documentText(data: Buffer, timeMs = DOCUMENT_TIME_MAX_MS): Promise<string> {
  if (searchThreads >= SEARCH_THREADS_MAX) throw new FileApiError(otError(429, OtCode.TOO_MANY_REQUESTS, `Too many searches at once (${SEARCH_THREADS_MAX}); try again when one has finished`));
  searchThreads++;
  try {
    const worker = documentThread();
    return await new Promise<string>((resolve, reject) => {
      /** Answers the read; `answered`: the thread finished this document and may take the next. */
      const finish = (result: string | Error, answered: boolean) => {
        clearTimeout(timer);
        worker.off("message", onMessage).off("error", onError).off("exit", onExit);
        if (answered) keepDocumentThread(worker);
        else void worker.terminate();
        if (typeof result === "string") resolve(result);
        else reject(result);
      };
      const onMessage = (m: FromSearchThread) => {
        if (m.t === "text") finish(m.text, true);
        else if (m.t === "failed") finish(m.missing ? new ExtractorMissing(m.message) : new Error(m.message), true);
      };
      const onError = (error: Error & { code?: string }) => finish(error.code === "ERR_WORKER_OUT_OF_MEMORY" ? new Error(`it needs more than ${DOCUMENT_THREAD_HEAP_MB} MB`) : error, false);
      const onExit = (code: number) => finish(new Error(`the extraction thread exited (${code})`), false);
      const timer = setTimeout(() => finish(new Error(`it took longer than ${timeMs / 1000} s`), false), timeMs);
      worker.on("message", onMessage).on("error", onError).on("exit", onExit);
      worker.postMessage({ data } satisfies DocumentJob);
    });
  } finally {
    searchThreads--;
  }
}

/**
 * `GET /files/grep`: `{query, path, matches, truncated}`; binary, unreadable, non-regular and
 * oversized files are skipped. `truncated` is also true when the search ran out of its time
 * budget (SEARCH_TIME_MAX_MS). 429 when SEARCH_THREADS_MAX searches are running already.
 */
export async function grep(target: string, q: GrepQuery, signal?: AbortSignal, timeMs = SEARCH_TIME_MAX_MS): Promise<Response> {
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
  const job: SearchJob = { kind: "grep", target, isFile: s.isFile(), source, flags, include: q.include, match_per_line: q.match_per_line, max_results: q.max_results };
  const { matches, truncated } = await searchInThread<GrepMatch>(job, q.max_results, signal, timeMs);
  return Response.json({ query: q.query, path: target, matches, truncated });
}

/**
 * `GET /files/glob`: `{pattern, path, matches:[{path (relative), type, size, modified}], truncated}`.
 * `truncated` is also true when the search ran out of its time budget (SEARCH_TIME_MAX_MS). 429
 * when SEARCH_THREADS_MAX searches are running already.
 */
export async function glob(target: string, q: GlobQuery, signal?: AbortSignal, timeMs = SEARCH_TIME_MAX_MS): Promise<Response> {
  if (!(await stat(target).catch(() => null))?.isDirectory()) fail(404, "Search directory not found");
  const job: SearchJob = { kind: "glob", target, pattern: q.pattern, exclude: q.exclude, type: q.type, max_results: q.max_results };
  const { matches, truncated } = await searchInThread<GlobMatch>(job, q.max_results, signal, timeMs);
  return Response.json({ pattern: q.pattern, path: target, matches, truncated });
}
