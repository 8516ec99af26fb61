/**
 * The grep worker thread's program (search.ts starts one per search): runs grep-core.ts on the
 * job in `workerData` and posts, in order, `{t: "match", match}` for each hit and
 * `{t: "done", truncated}` at the end. A regex that backtracks for ever blocks only this thread,
 * which search.ts terminates at GREP_TIME_MAX_MS or when the caller goes away.
 */
import { parentPort, workerData } from "node:worker_threads";
import { runGrep, type GrepJob, type GrepMatch } from "./grep-core.ts";

/** Grep thread → main thread. */
export type FromGrepThread = { t: "match"; match: GrepMatch } | { t: "done"; truncated: boolean };

const port = parentPort;
if (port) {
  const post = (m: FromGrepThread) => port.postMessage(m);
  const { truncated } = await runGrep(workerData as GrepJob, (match) => post({ t: "match", match }));
  post({ t: "done", truncated });
}
