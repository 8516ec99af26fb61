/**
 * What browsers get: the client link measured with a WebSocket that negotiates
 * `permessage-deflate` exactly as Chromium offers it (`permessage-deflate;
 * client_max_window_bits`), beside the same client without it. For each: keystroke echo
 * (p50/p99), throughput, the bytes that crossed the socket, and the CPU time workerd (the
 * Durable Object's runtime) spent per MB delivered — the costs a compression decision trades.
 */
import { readFileSync } from "node:fs";
import WebSocket from "ws";
import { ClientOp, encodeClientFrame, frame, ServerOp } from "../shared/links/client.ts";
import { OutputCounter } from "./counting-client.ts";

const MB = 1e6;

/** A `ws` client offering deflate as Chromium does (or not at all), counting output and socket bytes. */
export class BrowserLikeClient {
  readonly output = new OutputCounter();
  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (data: Buffer) => {
      if (data[0] === ServerOp.OUTPUT) this.output.feed(data.subarray(1));
      // As the web app: it answers the edge's MARKs (docs/protocol.md, flow control).
      else if (data[0] === ServerOp.MARK) ws.send(Uint8Array.of(ClientOp.ACK, ...data.subarray(1)));
    });
  }

  /** `deflate`: offer permessage-deflate as Chromium does; otherwise offer no extension. */
  static open(url: string, apiKey: string, deflate: boolean): Promise<BrowserLikeClient> {
    const ws = new WebSocket(url, {
      headers: { Authorization: `Bearer ${apiKey}` },
      // ws's default offer is exactly Chromium's: `permessage-deflate; client_max_window_bits`.
      perMessageDeflate: deflate,
    });
    return new Promise((resolve, reject) => {
      ws.once("open", () => {
        ws.send(Uint8Array.of(ClientOp.ACK)); // it answers MARKs
        resolve(new BrowserLikeClient(ws));
      });
      ws.once("error", reject);
    });
  }

  /** The extension the server accepted (empty: none). */
  get extensions(): string {
    return this.ws.extensions;
  }

  /** Bytes read from the socket so far (frames as they crossed the wire). */
  get wireBytes(): number {
    return (this.ws as unknown as { _socket?: { bytesRead: number } })._socket?.bytesRead ?? 0;
  }

  type(text: string): void {
    this.ws.send(encodeClientFrame({ t: "input", data: Buffer.from(text) }));
  }

  send(bytes: Uint8Array): void {
    this.ws.send(bytes);
  }

  close(): void {
    this.ws.close();
  }
}

/** CPU seconds (user + system) used so far by each of the given processes (those still running). */
export function cpuSeconds(pids: number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      out.set(pid, (Number(fields[11]) + Number(fields[12])) / 100); // utime + stime, in USER_HZ
    } catch {
      /* gone */
    }
  }
  return out;
}

/** CPU seconds used between two samples by the processes present in both. */
function cpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [pid, t] of after) if (before.has(pid)) sum += t - before.get(pid)!;
  return sum;
}

/** One throughput run: MB/s delivered, and the raw PTY read's MB/s measured just before it (null: not measured). */
export interface ThroughputRun {
  mbPerS: number;
  rawMbPerS: number | null;
  /** Socket bytes per output byte. */
  wireRatio: number;
  /** workerd CPU milliseconds per MB delivered. */
  workerdCpuMsPerMb: number;
}

export interface BrowserFigures {
  extensions: string;
  echo: number[];
  /** Medians over the throughput runs. */
  mbPerS: number;
  rawMbPerS: number | null;
  runs: ThroughputRun[];
  wireRatio: number;
  workerdCpuMsPerMb: number;
}

/**
 * Echo and throughput for one client kind. `url` is a fresh session's WebSocket URL each time
 * (`session()`), `command` prints the throughput payload, `done` its end marker. Throughput is
 * the median of `runs` runs, each on a fresh client (and session).
 */
export async function measureBrowserLike(
  session: () => Promise<string>,
  apiKey: string,
  deflate: boolean,
  opts: {
    echoes: number;
    command: string;
    doneCmd: string;
    done: string;
    workerdPids: number[];
    /** Throughput runs (default 1); with `raw`, each is preceded by a raw PTY read (MB/s), so the two alternate. */
    runs?: number;
    raw?: () => Promise<number>;
  },
): Promise<BrowserFigures> {
  // Echo on a raw-mode cat, as bench.ts's own echo.
  const echoClient = await BrowserLikeClient.open(await session(), apiKey, deflate);
  await ready(echoClient);
  const armed = echoClient.output.until("ECHO-READY");
  echoClient.type("stty raw -echo; echo ECHO-RE''ADY; exec cat\r");
  await armed;
  const echo: number[] = [];
  for (let i = 0; i < opts.echoes; i++) {
    const key = `\u0001${String.fromCharCode(97 + (i % 26))}${i % 10}`;
    const t0 = performance.now();
    const echoed = echoClient.output.until(key);
    echoClient.send(frame(ClientOp.INPUT, Buffer.from(key)));
    await echoed;
    echo.push(performance.now() - t0);
  }
  const extensions = echoClient.extensions;
  echoClient.close();

  const runs: ThroughputRun[] = [];
  for (let run = 0; run < Math.max(1, opts.runs ?? 1); run++) {
    const rawRun = opts.raw ? await opts.raw() : null;
    runs.push({ ...(await browserThroughput(await session(), apiKey, deflate, opts)), rawMbPerS: rawRun });
  }
  const mbPerS = median(runs.map((r) => r.mbPerS));
  const rawMbPerS = runs.every((r) => r.rawMbPerS !== null) ? median(runs.map((r) => r.rawMbPerS!)) : null;
  return {
    extensions,
    echo: echo.sort((a, b) => a - b),
    mbPerS,
    rawMbPerS,
    runs,
    wireRatio: median(runs.map((r) => r.wireRatio)),
    workerdCpuMsPerMb: median(runs.map((r) => r.workerdCpuMsPerMb)),
  };
}

/** One throughput run of a fresh browser-like client on the session at `url`. */
async function browserThroughput(url: string, apiKey: string, deflate: boolean, opts: { command: string; doneCmd: string; done: string; workerdPids: number[] }): Promise<Omit<ThroughputRun, "rawMbPerS">> {
  const client = await BrowserLikeClient.open(url, apiKey, deflate);
  await ready(client);
  const bytes0 = client.output.bytes;
  const wire0 = client.wireBytes;
  const cpu0 = cpuSeconds(opts.workerdPids);
  const t0 = performance.now();
  const done = client.output.until(opts.done);
  client.type(`${opts.command}; ${opts.doneCmd}\r`);
  await done;
  const seconds = (performance.now() - t0) / 1000;
  const bytes = client.output.bytes - bytes0;
  const cpu = cpuDelta(cpu0, cpuSeconds(opts.workerdPids));
  const wire = client.wireBytes - wire0;
  client.close();
  return { mbPerS: bytes / MB / seconds, wireRatio: wire / bytes, workerdCpuMsPerMb: (cpu * 1000) / (bytes / MB) };
}

/** Types a marker and waits for its echo: the shell is ready. */
async function ready(c: BrowserLikeClient): Promise<void> {
  const marker = `READY${Math.random().toString(36).slice(2, 8)}`;
  const wait = c.output.until(marker);
  c.type(`echo ${marker.slice(0, 3)}''${marker.slice(3)}\r`);
  await wait;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
