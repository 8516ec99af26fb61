/**
 * The Open Terminal API in `npm run bench` (`--only open-terminal`): the `/execute` round trip of
 * `echo hi` (today's background model with `wait`, and seed 004's synchronous run), and 100 MB
 * file downloads (`/files/view`) and multipart uploads (`/files/upload`) through the local edge,
 * with the agent's and workerd's memory growth and CPU time per 100 MB while the files move; then
 * the same transfers with curl (no targets), when curl is installed.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { open, rm } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { LocalStack } from "../worker/cli/local-stack.ts";

const MB = 1e6;

export interface OpenTerminalBenchOptions {
  stack: LocalStack;
  /** The agent's HOME (files are written there). */
  home: string;
  /** Round trips of `echo hi` measured per mode. */
  echoes: number;
  /** Size of the file moved each way, in MB. */
  fileMb: number;
  /** Transfers per direction (the median is reported). */
  runs: number;
  /** The stack's state folder (its workerd is found by it: other stacks on the machine are not measured). */
  stateDir: string;
  rssMb(pid: number): number;
  /** Prints a result row: label, value, baseline, ratio, target, verdict (null: no target). */
  row(label: string, value: string, baseline: string, ratio: string, target: string, ok: boolean | null): void;
  check(ok: boolean): boolean;
}

/** The workerd processes serving the stack in `stateDir`: descendants of the process that runs it (the edge runner, whose command line names the state folder). */
export function stackWorkerd(stateDir: string): number[] {
  const parent = new Map<number, number>();
  const cmd = new Map<number, string>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "latin1");
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
      cmd.set(Number(name), readFileSync(`/proc/${name}/cmdline`, "utf8"));
    } catch {
      /* gone */
    }
  }
  const ours = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = parent.get(p) ?? 0, hops++) if (cmd.get(p)?.includes(stateDir)) return true;
    return false;
  };
  return [...cmd].filter(([pid, c]) => c.includes("workerd") && c.includes("serve") && ours(pid)).map(([pid]) => pid);
}

/** CPU time (user + system) the processes `pids` have used so far, in seconds (/proc/<pid>/stat). */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      /* gone */
    }
  }
  return ticks / CLOCK_TICKS_PER_S;
}

/** USER_HZ, the unit of /proc/<pid>/stat's times (100 on Linux). */
const CLOCK_TICKS_PER_S = 100;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function median(values: number[]): number {
  return percentile(values, 50);
}

/** Peak RSS growth of `pids` (summed per group) while `work` runs, in MB. */
async function growthDuring<T>(o: OpenTerminalBenchOptions, groups: number[][], work: () => Promise<T>): Promise<{ result: T; growth: number[] }> {
  const sum = (pids: number[]) => pids.reduce((n, pid) => n + o.rssMb(pid), 0);
  const base = groups.map(sum);
  const peak = [...base];
  const timer = setInterval(() => groups.forEach((g, i) => (peak[i] = Math.max(peak[i]!, sum(g)))), 50);
  try {
    const result = await work();
    return { result, growth: peak.map((p, i) => p - base[i]!) };
  } finally {
    clearInterval(timer);
  }
}

async function echoRoundTrips(o: OpenTerminalBenchOptions, path: string, body: unknown): Promise<number[]> {
  const { url, apiKey } = o.stack;
  const init = { method: "POST", headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const times: number[] = [];
  for (let i = 0; i < o.echoes + 10; i++) {
    const t0 = performance.now();
    const res = await fetch(url + path, init);
    const text = await res.text();
    if (!text.includes("hi")) throw new Error(`unexpected /execute answer: ${text.slice(0, 200)}`);
    if (i >= 10) times.push(performance.now() - t0); // the first ten warm up
  }
  return times;
}

/** Runs the Open Terminal part of the bench; prints its rows. */
export async function benchOpenTerminal(o: OpenTerminalBenchOptions): Promise<void> {
  const { url, apiKey } = o.stack;
  const auth = { Authorization: `Bearer ${apiKey}` };
  await o.stack.waitForAgent();

  for (const [label, path, body] of [
    ["/execute echo hi, wait", "/execute?wait=5", { command: "echo hi" }],
    ["/execute echo hi, seed", "/execute", { command: "echo hi", timeout: 30 }],
  ] as const) {
    const times = await echoRoundTrips(o, path, body);
    const p50 = percentile(times, 50);
    row(o, `${label} p50 (ms)`, p50.toFixed(2), label.endsWith("wait") ? "≤ 4 ms" : "", label.endsWith("wait") ? o.check(p50 <= 4) : null);
    row(o, `${label} p99 (ms)`, percentile(times, 99).toFixed(2), "", null);
  }

  const bytes = o.fileMb * MB;
  const file = join(o.home, "bench-file.bin");
  const block = randomBytes(1 << 20);
  const fh = await open(file, "w");
  for (let left = bytes; left > 0; left -= block.length) await fh.write(block.subarray(0, Math.min(block.length, left)));
  await fh.close();
  const groups = [[o.stack.agent.pid!], stackWorkerd(o.stateDir)];
  if (groups[1]!.length === 0) throw new Error("the stack's workerd was not found");

  const download = async (): Promise<number> => {
    const t0 = performance.now();
    const res = await fetch(`${url}/files/view?path=bench-file.bin`, { headers: auth });
    let n = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) n += chunk.byteLength;
    if (n !== bytes) throw new Error(`download returned ${n} of ${bytes} bytes`);
    return bytes / MB / ((performance.now() - t0) / 1000);
  };
  // As a browser uploads a file (FormData): multipart with its Content-Length, streamed from a Blob.
  const boundary = `bench${randomBytes(8).toString("hex")}`;
  const parts: Uint8Array[] = [Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="up.bin"\r\n\r\n`)];
  for (let left = bytes; left > 0; left -= block.length) parts.push(block.subarray(0, Math.min(block.length, left)));
  parts.push(Buffer.from(`\r\n--${boundary}--\r\n`));
  const form = new Blob(parts as BlobPart[]);
  const upload = async (): Promise<number> => {
    const t0 = performance.now();
    const res = await fetch(`${url}/files/upload?directory=bench-up`, {
      method: "POST",
      headers: { ...auth, "Content-Type": `multipart/form-data; boundary=${boundary}` },
      body: form,
    });
    const answer = (await res.json()) as { size?: number };
    if (answer.size !== bytes) throw new Error(`upload answered ${JSON.stringify(answer)}`);
    return bytes / MB / ((performance.now() - t0) / 1000);
  };

  for (const [label, move] of [["download", download], ["upload", upload]] as const) {
    const rates: number[] = [];
    const cpu0 = groups.map(cpuSeconds);
    const { growth } = await growthDuring(o, groups, async () => {
      for (let i = 0; i < o.runs; i++) rates.push(await move());
    });
    // CPU per 100 MB moved, per process: what the transfer costs each side, whatever else runs on
    // the machine (the rate is the wall clock's, shared with everyone).
    const per100 = groups.map((g, i) => ((cpuSeconds(g) - cpu0[i]!) / (o.runs * o.fileMb)) * 100);
    const rate = median(rates);
    row(o, `${o.fileMb} MB ${label} (MB/s)`, rate.toFixed(1), "≥ 240", o.check(rate >= 240));
    console.log(`${"".padEnd(30)} ${`runs ${rates.map((r) => r.toFixed(0)).join(", ")}`.padStart(52)}`);
    console.log(`${"".padEnd(30)} ${`CPU s per 100 MB: agent ${per100[0]!.toFixed(2)}, workerd ${per100[1]!.toFixed(2)}`.padStart(52)}`);
    row(o, `  agent growth (MB)`, growth[0]!.toFixed(1), "< 50 MB", o.check(growth[0]! < 50));
    row(o, `  workerd growth (MB)`, growth[1]!.toFixed(1), "< 50 MB", o.check(growth[1]! < 50));
  }
  // The same transfers with curl, a client that costs these two cores little (Node's fetch spends
  // 0.15–0.25 CPU s per 100 MB uploaded): what the edge carries when the client is not the limit.
  if (await hasCurl()) {
    const curl = async (args: string[]): Promise<number> => {
      const rates: number[] = [];
      for (let i = 0; i < o.runs; i++) rates.push(await curlRate(url, apiKey, args, bytes));
      return median(rates);
    };
    const down = await curl([`${url}/files/view?path=bench-file.bin`]);
    row(o, `  with curl: download (MB/s)`, down.toFixed(1), "", null);
    const upArgs = ["-F", `file=@${file};filename=up.bin`, `${url}/files/upload?directory=bench-up`];
    row(o, `  with curl: upload (MB/s)`, (await curl(["-H", "Expect:", ...upArgs])).toFixed(1), "", null);
    // As curl uploads by default: it asks `Expect: 100-continue` and waits 1 s for an answer the
    // local stack's workerd never sends (docs/open-terminal.md, "curl and Expect").
    row(o, `  … curl as is (Expect)`, (await curl(upArgs)).toFixed(1), "", null);
  } else {
    console.log(`${"".padEnd(30)} ${"(curl not found: its rows are skipped)".padStart(52)}`);
  }
  await rm(file, { force: true });
  await rm(join(o.home, "bench-up"), { recursive: true, force: true });
}

/** Whether `curl` runs here. */
function hasCurl(): Promise<boolean> {
  return new Promise((resolve) => execFile("curl", ["--version"], (error) => resolve(!error)));
}

/** One curl transfer through the edge (`args` name the URL and body), in MB/s of `bytes`; rejects on an HTTP error. */
function curlRate(base: string, apiKey: string, args: string[], bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    // The key goes by stdin (`-H @-`), never the command line other users of the host can read.
    const child = execFile("curl", ["-sS", "--fail", "-o", "/dev/null", "-w", "%{time_total}", "-H", "@-", ...args], (error, stdout) => {
      if (error) reject(new Error(`curl against ${base} failed: ${error.message}`));
      else resolve(bytes / MB / Number(stdout));
    });
    child.stdin!.end(`Authorization: Bearer ${apiKey}\n`);
  });
}

function row(o: OpenTerminalBenchOptions, label: string, value: string, target: string, ok: boolean | null): void {
  o.row(label, value, "", "", target, ok);
}
