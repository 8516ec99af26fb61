/**
 * A real WebSocket client of /api/v1/terminal/ws for tests and the benchmark. It folds frames
 * into state (output bytes, INFO, EXIT, errors) and renders what it received into its own
 * headless terminal, so tests can assert on the screen a person would see. Waits are driven by
 * incoming frames, never by sleeping.
 */
import xterm from "@xterm/headless";
import type { Terminal } from "@xterm/headless";
import WebSocket from "ws";
import {
  decodeServerFrame,
  encodeClientFrame,
  type ErrorInfo,
  type ExitInfo,
  type SessionInfo,
} from "../../shared/links/client.ts";
import { Waiters } from "./waiters.ts";

/** Output a test client keeps, in bytes (older output is dropped from `text`). */
export const CLIENT_OUTPUT_MAX_BYTES = 8 << 20; // 8 MiB

export class HttpRefusal extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`HTTP ${status}: ${body}`);
  }

  json(): Record<string, unknown> {
    return JSON.parse(this.body) as Record<string, unknown>;
  }
}

export interface ConnectOptions {
  apiKey?: string;
  headers?: Record<string, string>;
  /** Render into a headless terminal (off for the benchmark). */
  screen?: boolean;
  /** WebSocket subprotocols to offer (a share link's token rides as one). */
  protocols?: string[];
  cols?: number;
  rows?: number;
  /** Answer the edge's MARKs (default); false acts as a client that predates them. */
  acks?: boolean;
}

export class TermClient {
  info: SessionInfo | null = null;
  exit: ExitInfo | null = null;
  closed: { code: number; reason: string } | null = null;
  readonly errors: ErrorInfo[] = [];
  readonly titles: string[] = [];
  /** Every OUTPUT payload received, in order (bounded). */
  private chunks: Buffer[] = [];
  private chunkBytes = 0;
  /** Total OUTPUT payload bytes received. */
  received = 0;
  /** Frames received so far. */
  frameCount = 0;
  readonly terminal: Terminal | null;
  private readonly waiters = new Waiters();
  private pongs = new Map<string, () => void>();
  private parsed: Promise<void> = Promise.resolve();

  private constructor(
    readonly ws: WebSocket,
    options: ConnectOptions,
  ) {
    this.terminal = options.screen === false ? null : new xterm.Terminal({ cols: options.cols ?? 80, rows: options.rows ?? 24, allowProposedApi: true });
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return;
      const f = decodeServerFrame(data);
      this.frameCount++;
      switch (f.t) {
        case "output":
          this.received += f.data.byteLength;
          this.chunks.push(Buffer.from(f.data));
          this.chunkBytes += f.data.byteLength;
          while (this.chunkBytes > CLIENT_OUTPUT_MAX_BYTES && this.chunks.length > 1) this.chunkBytes -= this.chunks.shift()!.byteLength;
          if (this.terminal) {
            const term = this.terminal;
            this.parsed = new Promise((resolve) => term.write(f.data, resolve));
          }
          break;
        case "info":
          this.info = f.info;
          break;
        case "exit":
          this.exit = f.exit;
          break;
        case "error":
          this.errors.push(f.error);
          break;
        case "title":
          this.titles.push(f.title);
          break;
        case "pong":
          this.pongs.get(Buffer.from(f.data).toString())?.();
          break;
        case "mark":
          // Read: say so, so the edge keeps sending at full rate (docs/protocol.md, flow control).
          this.ws.send(encodeClientFrame({ t: "ack", mark: f.mark }));
          break;
      }
      this.notify();
    });
    ws.on("close", (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.notify();
    });
  }

  static connect(url: string, options: ConnectOptions = {}): Promise<TermClient> {
    const headers = { ...(options.apiKey ? { Authorization: `Bearer ${options.apiKey}` } : {}), ...options.headers };
    const ws = new WebSocket(url.replace(/^http/, "ws"), options.protocols ?? [], { headers, perMessageDeflate: false });
    ws.binaryType = "nodebuffer";
    const client = new TermClient(ws, options);
    return new Promise((resolve, reject) => {
      // Ready once INFO, the first frame of every attach, has arrived.
      ws.once("open", () => {
        if (options.acks !== false) ws.send(encodeClientFrame({ t: "ack", mark: new Uint8Array(0) }));
      });
      ws.once("open", () => client.waitFor(() => client.info !== null || client.closed !== null, "INFO").then(() => resolve(client), reject));
      ws.once("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => reject(new HttpRefusal(res.statusCode ?? 0, body)));
      });
      ws.once("error", reject);
    });
  }

  private notify(): void {
    this.waiters.notify();
  }


  /** All output kept so far as text. */
  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }

  /** Resolves once `predicate` holds, checked on every frame; rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    return this.waiters.until(predicate, what, timeoutMs, () => `; output tail: ${JSON.stringify(this.text().slice(-400))}`);
  }


  waitForText(pattern: string | RegExp, timeoutMs?: number): Promise<void> {
    const test = typeof pattern === "string" ? (t: string) => t.includes(pattern) : (t: string) => pattern.test(t);
    return this.waitFor(() => test(this.text()), `output matching ${pattern}`, timeoutMs);
  }

  /** The client's rendered screen, one string per row, trailing spaces trimmed. */
  async screen(): Promise<string[]> {
    if (!this.terminal) throw new Error("this client renders no screen");
    await this.parsed;
    const buffer = this.terminal.buffer.active;
    const rows: string[] = [];
    for (let y = 0; y < this.terminal.rows; y++) rows.push(buffer.getLine(buffer.viewportY + y)?.translateToString(true) ?? "");
    return rows;
  }

  /** Waits until the rendered screen contains `text`, re-checking after every frame. */
  async waitForScreen(text: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const seen = this.frameCount;
      if ((await this.screen()).join("\n").includes(text)) return;
      const left = deadline - Date.now();
      if (left <= 0) break;
      await this.waitFor(() => this.frameCount > seen, "a frame", left).catch(() => undefined);
    }
    throw new Error(`screen never showed ${JSON.stringify(text)}:\n${(await this.screen()).join("\n")}`);
  }

  input(text: string | Buffer): void {
    this.ws.send(encodeClientFrame({ t: "input", data: typeof text === "string" ? Buffer.from(text) : text }));
  }

  resize(cols: number, rows: number): void {
    this.ws.send(encodeClientFrame({ t: "resize", size: { cols, rows } }));
  }

  pause(): void {
    this.ws.send(encodeClientFrame({ t: "pause" }));
  }

  resume(): void {
    this.ws.send(encodeClientFrame({ t: "resume" }));
  }

  /** Sends PING and resolves on its PONG: everything sent before the PONG has arrived. */
  ping(tag = String(Math.random())): Promise<void> {
    return new Promise((resolve) => {
      this.pongs.set(tag, () => {
        this.pongs.delete(tag);
        resolve();
      });
      this.ws.send(encodeClientFrame({ t: "ping", data: Buffer.from(tag) }));
    });
  }

  close(): void {
    this.ws.close();
    this.terminal?.dispose();
  }
}
