/**
 * What `npm run bench` (bench.ts) measures with: the in-process baseline (a PTY read directly),
 * the benchmark's WebSocket client, and the measurements through a running local stack
 * (throughput, echo round trips, memory under `yes`), each returning raw figures for the report.
 */
import { readFileSync, readdirSync } from "node:fs";
import type { Socket } from "node:net";
import * as pty from "node-pty";
import WebSocket from "ws";
import { ClientOp, encodeClientFrame, frame, ServerOp } from "../shared/links/client.ts";
import { CountingWebSocket, OutputCounter } from "./counting-client.ts";
import type { LocalStack } from "../worker/cli/local-stack.ts";

/** Megabyte, decimal (the unit of every MB figure). */
export const MB = 1e6;
const LINE = "edgetty benchmark line: the quick brown fox jumps over the lazy dog 0123456789";
/** Printed after a measured command, to know it finished. */
export const DONE = "BENCH-DONE";
/** The command line prints the marker with quotes inside, so its echo never matches. */
export const DONE_CMD = "echo BENCH-DO''NE";

/** A whole-number setting from the environment, or `fallback`. */
export function envInt(name: string, fallback: number): number {
  const n = Number(process.env[name]);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

/** Throughput is measured this many times each way, alternating; the medians are compared. */
export const THROUGHPUT_RUNS = 9;
/** Runs with the `ws` library as the client, shown for comparison. */
export const WS_CLIENT_RUNS = 3;
/** Memory is sampled this often during the `yes` run, in seconds. */
export const MEMORY_SAMPLE_S = 5;
/** The paced fan-out source: how fast and how much, in MB/s and MB. */
export const PACED_MB_PER_S = 2;
export const PACED_TOTAL_MB = 4;

/** A program that prints `bytes` of text at `mbPerS`, in 10 ms ticks. */
export function pacedCommand(bytes: number, mbPerS: number): string {
  const perTick = Math.round((mbPerS * MB) / 100);
  const script = `const b=Buffer.from("${LINE}\\n".repeat(${Math.ceil(perTick / (LINE.length + 1))}));let n=0;const t=setInterval(()=>{process.stdout.write(b);n+=b.length;if(n>=${bytes})clearInterval(t)},10)`;
  return `${JSON.stringify(process.execPath)} -e '${script}'`;
}

/** A program that prints `bytes` of text lines as fast as it can. */
export function textCommand(bytes: number): string {
  return `yes '${LINE}' | head -c ${bytes}`;
}

/** The median of a series. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** "min–max" of a series, for the report. */
export function range(values: number[], digits = 1): string {
  return `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;
}

/** The `p`-th percentile (0–100) of a sorted series. */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

// --- the in-process baseline ---------------------------------------------------------------------

/** Bytes per second reading `command`'s output straight from a PTY in this process. */
export function rawThroughput(command: string): Promise<{ bytes: number; seconds: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    let bytes = 0;
    const p = pty.spawn("/bin/sh", ["-c", command], { cols: 80, rows: 24, encoding: null });
    p.onData((d) => (bytes += (d as unknown as Buffer).byteLength));
    p.onExit(() => resolve({ bytes, seconds: (performance.now() - started) / 1000 }));
  });
}

/** Keystroke round trips on a raw-mode `cat` in a PTY read in-process. */
export async function rawEcho(count: number): Promise<number[]> {
  const p = pty.spawn("/bin/sh", ["-c", "stty raw -echo; echo READY; exec cat"], { cols: 80, rows: 24, encoding: null });
  let onData: (d: Buffer) => void = () => {};
  p.onData((d) => onData(d as unknown as Buffer));
  await new Promise<void>((resolve) => (onData = (d) => d.includes("READY") && resolve()));
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const key = String.fromCharCode(97 + (i % 26));
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      onData = (d) => d.includes(key) && resolve();
      p.write(key);
    });
    samples.push(performance.now() - t0);
  }
  p.kill();
  return samples.sort((a, b) => a - b);
}

// --- clients ------------------------------------------------------------------------------------

/**
 * A viewer for the measurements: a real WebSocket that counts output. Two transports: the
 * counting client (the default; it allocates nothing per read, so the CPU it takes from these
 * two cores is the kernel's reading and little more) and the `ws` library, shown for comparison.
 */
export class BenchClient {
  private constructor(
    private readonly output: OutputCounter,
    private readonly transport: { send(bytes: Uint8Array): void; close(): void },
  ) {}

  static async counting(url: string, apiKey: string): Promise<BenchClient> {
    const ws = await CountingWebSocket.open(url, { Authorization: `Bearer ${apiKey}` });
    ws.send(Uint8Array.of(ClientOp.ACK)); // it answers MARKs
    return new BenchClient(ws.output, ws);
  }

  static ws(url: string, apiKey: string): Promise<BenchClient> {
    const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${apiKey}` }, perMessageDeflate: false });
    const output = new OutputCounter();
    ws.on("message", (data: Buffer) => {
      if (data[0] === ServerOp.OUTPUT) output.feed(data.subarray(1));
      else if (data[0] === ServerOp.MARK) ws.send(Uint8Array.of(ClientOp.ACK, ...data.subarray(1)));
    });
    return new Promise((resolve, reject) => {
      ws.once("open", () => {
        ws.send(Uint8Array.of(ClientOp.ACK)); // it answers MARKs
        resolve(new BenchClient(output, { send: (bytes) => ws.send(bytes), close: () => ws.close() }));
      });
      ws.once("error", reject);
    });
  }

  /** OUTPUT bytes received so far. */
  get bytes(): number {
    return this.output.bytes;
  }

  until(needle: string): Promise<void> {
    return this.output.until(needle);
  }

  send(bytes: Uint8Array): void {
    this.transport.send(bytes);
  }

  type(text: string): void {
    this.send(encodeClientFrame({ t: "input", data: Buffer.from(text) }));
  }

  close(): void {
    this.transport.close();
  }
}

type Connect = (url: string, apiKey: string) => Promise<BenchClient>;

// --- measurements through the stack ---------------------------------------------------------------

/** A running stack and the sessions the current part created. */
export interface Ctx {
  stack: LocalStack;
  nextId: number;
  /** Sessions created and not yet deleted. */
  live: number[];
}

/** Creates a session for a part; answers its id. */
export async function session(ctx: Ctx): Promise<string> {
  const id = ctx.nextId++;
  const res = await fetch(`${ctx.stack.url}/api/v1/terminal/create`, {
    method: "POST",
    headers: { Authorization: `Bearer ${ctx.stack.apiKey}`, "Content-Type": "application/json" },
    body: JSON.stringify({ terminal_id: id, shell: "sh" }),
  });
  if (!res.ok) throw new Error(`create failed: ${res.status} ${await res.text()}`);
  ctx.live.push(id);
  return `${ctx.stack.url.replace(/^http/, "ws")}/api/v1/terminal/ws?terminal_id=${id}`;
}

/** Deletes the sessions a part created, so the next part starts from a clean agent. */
export async function endSessions(ctx: Ctx): Promise<void> {
  for (const id of ctx.live.splice(0)) {
    await fetch(`${ctx.stack.url}/api/v1/terminal/${id}`, { method: "DELETE", headers: { Authorization: `Bearer ${ctx.stack.apiKey}` } });
  }
}

async function ready(client: BenchClient): Promise<void> {
  const marker = `READY${Math.random().toString(36).slice(2, 8)}`;
  const wait = client.until(marker);
  client.type(`echo ${marker.slice(0, 3)}''${marker.slice(3)}\r`);
  await wait;
}

/** Seconds and bytes for `command`'s output through the edge to `viewers` clients at once. */
export async function edgeThroughput(ctx: Ctx, command: string, viewers: number, connect: Connect = BenchClient.counting): Promise<{ seconds: number[]; bytes: number[] }> {
  const url = await session(ctx);
  const clients = await Promise.all(Array.from({ length: viewers }, () => connect(url, ctx.stack.apiKey)));
  await Promise.all(clients.map(ready));
  const starts = clients.map((c) => c.bytes);
  const t0 = performance.now();
  const done = clients.map((c) => c.until(DONE).then(() => performance.now()));
  clients[0]!.type(`${command}; ${DONE_CMD}\r`);
  const ends = await Promise.all(done);
  const result = { seconds: ends.map((t) => (t - t0) / 1000), bytes: clients.map((c, i) => c.bytes - starts[i]!) };
  for (const c of clients) c.close();
  return result;
}

/** Keystroke → echo round trips through the edge, in ms. */
export async function edgeEcho(ctx: Ctx, count: number): Promise<number[]> {
  const url = await session(ctx);
  const client = await BenchClient.counting(url, ctx.stack.apiKey);
  await ready(client);
  const armed = client.until("ECHO-READY");
  client.type("stty raw -echo; echo ECHO-RE''ADY; exec cat\r");
  await armed;
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const key = `\u0001${String.fromCharCode(97 + (i % 26))}${i % 10}`;
    const t0 = performance.now();
    const echoed = client.until(key);
    client.send(frame(ClientOp.INPUT, Buffer.from(key)));
    await echoed;
    samples.push(performance.now() - t0);
  }
  client.close();
  return samples.sort((a, b) => a - b);
}

/** RSS in MB of a process and its descendants matching `name`. */
export function rssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return kb / 1024;
  } catch {
    return 0;
  }
}

/**
 * The workerd processes this bench started (descendants of this process), not the machine's
 * others: other work on a shared host runs its own workerd, whose CPU and memory are not ours.
 */
export function findWorkerd(): number[] {
  const parent = new Map<number, number>();
  const workerd: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmd.includes("workerd") && cmd.includes("serve")) workerd.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  const ours = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < PROCESS_TREE_MAX_DEPTH; p = parent.get(p) ?? 0, hops++) if (p === process.pid) return true;
    return false;
  };
  return workerd.filter(ours);
}

/** How many parents findWorkerd follows up from a process before giving up. */
const PROCESS_TREE_MAX_DEPTH = 64;

/**
 * Agent and workerd RSS samples (MB, every MEMORY_SAMPLE_S) while `yes` runs for `seconds`, and the
 * bytes it moved to a reading client; with `stalled`, two more clients stop reading beside it (one
 * that answers MARKs, one that never did): what the edge queues for them, which it must bound.
 */
export async function memoryUnderYes(ctx: Ctx, seconds: number, workerdPids: number[], stalled = false): Promise<{ agent: number[]; workerd: number[]; bytes: number }> {
  const url = await session(ctx);
  const client = await BenchClient.counting(url, ctx.stack.apiKey);
  await ready(client);
  const stalledClients = stalled ? [await stalledClient(url, ctx.stack.apiKey, true), await stalledClient(url, ctx.stack.apiKey, false)] : [];
  const agent = [rssMb(ctx.stack.agent.pid!)];
  const workerd = [workerdPids.reduce((s, p) => s + rssMb(p), 0)];
  const startBytes = client.bytes;
  client.type("yes\r");
  for (let t = 0; t < seconds; t += MEMORY_SAMPLE_S) {
    await new Promise((r) => setTimeout(r, MEMORY_SAMPLE_S * 1000));
    agent.push(rssMb(ctx.stack.agent.pid!));
    workerd.push(workerdPids.reduce((s, p) => s + rssMb(p), 0));
  }
  client.send(frame(ClientOp.INPUT, Buffer.from("\u0003")));
  const bytes = client.bytes - startBytes;
  client.close();
  for (const ws of stalledClients) ws.terminate();
  return { agent, workerd, bytes };
}

/**
 * A `ws` client that stops reading its socket once it has its INFO: with `answersMarks` it
 * first says it answers MARKs (docs/protocol.md, flow control), as the web app does, and then
 * answers none, like a browser tab whose machine went to sleep.
 */
async function stalledClient(url: string, apiKey: string, answersMarks: boolean): Promise<WebSocket> {
  const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${apiKey}` }, perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once("message", () => resolve()); // INFO: the edge has it
    ws.once("error", reject);
  });
  if (answersMarks) ws.send(Uint8Array.of(ClientOp.ACK));
  (ws as unknown as { _socket: Socket })._socket.pause();
  return ws;
}
