/**
 * The search thread's program (search.ts starts one per grep or glob): runs grep-core.ts or
 * glob-core.ts on the job in `workerData` and posts, in order, `{t: "match", match}` for each hit
 * and `{t: "done", truncated}` at the end. A document thread (`{kind: "documents"}`, search.ts
 * documentText) instead extracts the text of each document posted to it, one after another, and
 * answers each with `{t: "text"}` or `{t: "failed"}`. A regex that backtracks for ever (a grep query, or the
 * expression picomatch made of a glob pattern) blocks only this thread, which search.ts
 * terminates at SEARCH_TIME_MAX_MS or when the caller goes away.
 */
import { parentPort, workerData } from "node:worker_threads";
import { runGlob, type GlobJob, type GlobMatch } from "./glob-core.ts";
import { runGrep, type GrepJob, type GrepMatch } from "./grep-core.ts";
import { ExtractorMissing, extractText } from "./documents.ts";

/** A search thread's job; `documents`: text out of the documents posted to it (documents.ts), off the main thread too. */
export type SearchJob = ({ kind: "grep" } & GrepJob) | ({ kind: "glob" } & GlobJob) | { kind: "documents" };

/** Main thread → a document thread: one document's bytes. */
export interface DocumentJob {
  data: Uint8Array;
}

/** Search thread → main thread. */
export type FromSearchThread =
  | { t: "match"; match: GrepMatch | GlobMatch }
  | { t: "done"; truncated: boolean }
  | { t: "text"; text: string }
  | { t: "failed"; message: string; missing: boolean };

const port = parentPort;
if (port) {
  const post = (m: FromSearchThread) => port.postMessage(m);
  const job = workerData as SearchJob;
  const found = (match: GrepMatch | GlobMatch) => post({ t: "match", match });
  if (job.kind === "documents") {
    // One document at a time: the main thread posts the next only once this one is answered.
    port.on("message", async ({ data }: DocumentJob) => {
      try {
        post({ t: "text", text: await extractText(Buffer.from(data.buffer, data.byteOffset, data.byteLength)) });
      } catch (e) {
        post({ t: "failed", message: (e as Error).message, missing: e instanceof ExtractorMissing });
      }
    });
  } else {
    const { truncated } = job.kind === "grep" ? await runGrep(job, found) : await runGlob(job, found);
    post({ t: "done", truncated });
  }
}
