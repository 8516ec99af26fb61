/**
 * Bench figures for the Open Terminal execute API through the local stack (moved here from the
 * end-to-end tests, where timing and memory have no place):
 *
 *   execute timeout     how long `POST /execute` with `timeout: 1` takes to answer (ms)
 *   execute 50 MB       agent and workerd RSS growth (peak) while 50 MB stream to a reader that stalls,
 *                       then drains (MB)
 */
import { readdirSync, readFileSync } from "node:fs";
import type { LocalStack } from "../worker/cli/local-stack.ts";

/** Output streamed for the memory figure, in bytes. */
const STREAM_BYTES = 50_000_000;
/** How much the reader takes before it stalls, in bytes. */
const STALL_AFTER_BYTES = 1 << 20; // 1 MiB
/** How long the reader stays stalled, in milliseconds. */
const STALL_MS = 3_000;
/** RSS sampling interval, in milliseconds. */
const RSS_SAMPLE_MS = 50;
/** Targets. */
const TIMEOUT_ANSWER_TARGET_MS = 3_000;
const STREAM_RSS_GROWTH_TARGET_MB = 96;

/** Prints one figure; `ok` null for figures without a target. */
export type Report = (label: string, value: string, target: string, ok: boolean | null) => void;

function rssMb(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** The workerd serving `port` (found by its listening address in its command line). */
function workerdOf(port: number): number | null {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmd.includes("workerd") && cmd.includes(`--socket-addr=entry=127.0.0.1:${port}`)) return Number(entry);
    } catch {
      /* gone */
    }
  }
  return null;
}

function post(stack: LocalStack, path: string, body: unknown): Promise<Response> {
  return fetch(`${stack.url}${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${stack.apiKey}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** Measures the execute API's figures against `stack` and reports them. */
export async function benchExecute(stack: LocalStack, report: Report): Promise<void> {
  const t0 = performance.now();
  const timedOut = await post(stack, "/execute", { command: "sleep 30", timeout: 1 });
  await timedOut.text();
  const answerMs = performance.now() - t0;
  report("execute timeout 1 s (ms)", answerMs.toFixed(0), `≤ ${TIMEOUT_ANSWER_TARGET_MS} ms`, answerMs <= TIMEOUT_ANSWER_TARGET_MS);

  const agentPid = stack.agent.pid;
  const workerd = workerdOf(Number(new URL(stack.url).port));
  if (agentPid === undefined || workerd === null) throw new Error("bench execute: agent or workerd not found");
  const base = { agent: rssMb(agentPid), workerd: rssMb(workerd) };
  const peak = { ...base };
  const sample = setInterval(() => {
    peak.agent = Math.max(peak.agent, rssMb(agentPid));
    peak.workerd = Math.max(peak.workerd, rssMb(workerd));
  }, RSS_SAMPLE_MS);
  try {
    const res = await post(stack, "/execute?stream=true", { command: `head -c ${STREAM_BYTES} /dev/zero | tr '\\0' a | fold -w 999` });
    const reader = res.body!.getReader();
    let received = 0;
    while (received < STALL_AFTER_BYTES) received += (await reader.read()).value!.byteLength;
    await new Promise((r) => setTimeout(r, STALL_MS)); // the stalled reader: what piles up meanwhile
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.byteLength;
    }
    if (received < STREAM_BYTES) throw new Error(`bench execute: only ${received} of ${STREAM_BYTES} bytes arrived`);
  } finally {
    clearInterval(sample);
  }
  for (const name of ["agent", "workerd"] as const) {
    const growth = peak[name] - base[name];
    report(`execute 50 MB, ${name} (MB)`, growth.toFixed(1), `< ${STREAM_RSS_GROWTH_TARGET_MB} MB`, growth < STREAM_RSS_GROWTH_TARGET_MB);
  }
}
