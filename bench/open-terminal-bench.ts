/**
 * The Open Terminal API in `npm run bench` (`--only open-terminal`): the `/execute` round trip of
 * `echo hi` (today's background model with `wait`, and seed 004's synchronous run), and 100 MB
 * file downloads (`/files/view`) and multipart uploads (`/files/upload`) through the local edge,
 * with the agent's and workerd's memory growth and CPU time per 100 MB while the files move; then
 * the same transfers with Node's fetch and with curl (no targets), when curl is installed.
 *
 * The headline transfers use Node's http module as a browser's network stack moves a file: the
 * download read as it arrives, the upload a multipart body with its Content-Length streamed from
 * the file on disk. Both cost this machine's two cores about as little as curl (70–120 ms of CPU
 * per 100 MB), so the figure is the edge's; fetch spends 100–800 ms per 100 MB here (an upload
 * from a Blob: 250–700 ms), taken from the same two cores the edge and the agent run on. Each
 * direction starts with one transfer not counted (the JIT and the page cache warm up: the first
 * of either ran at half the rate of the next ones), inside the memory window.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createReadStream, readdirSync, readFileSync } from "node:fs";
import { request, type IncomingMessage } from "node:http";
import { open, rm } from "node:fs/promises";
import { join } from "node:path";
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

/**
 * One HTTP/1.1 call with Node's http module: resolves with the response once its head arrives
 * (its body is read by the caller); `body` yields the request body, written with backpressure.
 */
function httpCall(url: string, init: { method: string; headers: Record<string, string> }, body?: () => AsyncIterable<Uint8Array>): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(url, init, resolve);
    req.on("error", reject);
    if (!body) {
      req.end();
      return;
    }
    void (async () => {
      for await (const chunk of body()) if (!req.write(chunk)) await new Promise((r) => req.once("drain", r));
      req.end();
    })().catch((e: unknown) => req.destroy(e as Error));
  });
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

  const fileUrl = `${url}/files/view?path=bench-file.bin`;
  const uploadUrl = `${url}/files/upload?directory=bench-up`;
  const boundary = `bench${randomBytes(8).toString("hex")}`;
  const partHead = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="up.bin"\r\n\r\n`);
  const partTail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const contentType = `multipart/form-data; boundary=${boundary}`;
  const uploaded = async (res: { status: number; text(): Promise<string> }) => {
    const answer = JSON.parse(await res.text()) as { size?: number };
    if (answer.size !== bytes) throw new Error(`upload answered ${res.status} ${JSON.stringify(answer)}`);
  };
  /** MB/s of one transfer. */
  const timed = async (move: () => Promise<void>): Promise<number> => {
    const t0 = performance.now();
    await move();
    return bytes / MB / ((performance.now() - t0) / 1000);
  };
  const download = () =>
    timed(async () => {
      const res = await httpCall(fileUrl, { method: "GET", headers: auth });
      const n = await new Promise<number>((resolve, reject) => {
        let got = 0;
        res.on("data", (chunk: Buffer) => (got += chunk.byteLength));
        res.once("end", () => resolve(got));
        res.once("error", reject);
      });
      if (n !== bytes) throw new Error(`download returned ${n} of ${bytes} bytes`);
    });
  const upload = () =>
    timed(async () => {
      const length = partHead.byteLength + bytes + partTail.byteLength;
      const res = await httpCall(uploadUrl, { method: "POST", headers: { ...auth, "Content-Type": contentType, "Content-Length": String(length) } }, async function* () {
        yield partHead;
        yield* createReadStream(file, { highWaterMark: 1 << 20 });
        yield partTail;
      });
      const chunks: Buffer[] = [];
      for await (const chunk of res as AsyncIterable<Buffer>) chunks.push(chunk);
      await uploaded({ status: res.statusCode ?? 0, text: async () => Buffer.concat(chunks).toString() });
    });

  for (const [label, move] of [["download", download], ["upload", upload]] as const) {
    const rates: number[] = [];
    const cpu0 = groups.map(cpuSeconds);
    const { growth } = await growthDuring(o, groups, async () => {
      await move(); // the warm-up, not counted
      for (let i = 0; i < o.runs; i++) rates.push(await move());
    });
    // CPU per 100 MB moved, per process: what the transfer costs each side, whatever else runs on
    // the machine (the rate is the wall clock's, shared with everyone).
    const per100 = groups.map((g, i) => ((cpuSeconds(g) - cpu0[i]!) / ((o.runs + 1) * o.fileMb)) * 100);
    const rate = median(rates);
    row(o, `${o.fileMb} MB ${label} (MB/s)`, rate.toFixed(1), "≥ 240", o.check(rate >= 240));
    console.log(`${"".padEnd(30)} ${`runs ${rates.map((r) => r.toFixed(0)).join(", ")}`.padStart(52)}`);
    console.log(`${"".padEnd(30)} ${`CPU s per 100 MB: agent ${per100[0]!.toFixed(2)}, workerd ${per100[1]!.toFixed(2)}`.padStart(52)}`);
    row(o, `  agent growth (MB)`, growth[0]!.toFixed(1), "< 50 MB", o.check(growth[0]! < 50));
    row(o, `  workerd growth (MB)`, growth[1]!.toFixed(1), "< 50 MB", o.check(growth[1]! < 50));
  }

  // The same transfers with fetch: a download read from the response's body, an upload from a
  // Blob of the multipart body (as a page's script would send a FormData).
  const blocks: Uint8Array[] = [];
  for (let left = bytes; left > 0; left -= block.length) blocks.push(block.subarray(0, Math.min(block.length, left)));
  const form = new Blob([partHead, ...blocks, partTail] as BlobPart[]);
  const fetchRates = async (move: () => Promise<number>) => {
    await move(); // the warm-up
    const rates: number[] = [];
    for (let i = 0; i < o.runs; i++) rates.push(await move());
    return median(rates);
  };
  const fetchDown = await fetchRates(() =>
    timed(async () => {
      const res = await fetch(fileUrl, { headers: auth });
      let n = 0;
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) n += chunk.byteLength;
      if (n !== bytes) throw new Error(`download returned ${n} of ${bytes} bytes`);
    }),
  );
  row(o, `  with fetch: download (MB/s)`, fetchDown.toFixed(1), "", null);
  const fetchUp = await fetchRates(() => timed(async () => uploaded(await fetch(uploadUrl, { method: "POST", headers: { ...auth, "Content-Type": contentType }, body: form }))));
  row(o, `  with fetch: upload (MB/s)`, fetchUp.toFixed(1), "", null);

  // The same transfers with curl, the other client that costs these two cores little.
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
