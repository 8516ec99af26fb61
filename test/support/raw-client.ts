/**
 * A real client of the Open Terminal WebSocket `/api/terminals/{id}` for tests: it connects
 * without credentials, authenticates with its first message when asked, and folds what arrives
 * (raw PTY bytes, text frames, the close) into state. Waits are driven by incoming frames.
 */
import WebSocket from "ws";
import { Waiters } from "./waiters.ts";

/** Output a test client keeps, in bytes (older output is dropped). */
export const RAW_CLIENT_OUTPUT_MAX_BYTES = 4 << 20; // 4 MiB

export class RawClient {
  closed: { code: number; reason: string } | null = null;
  /** Text frames received (the protocol sends none; kept to prove it). */
  readonly texts: string[] = [];
  private output = Buffer.alloc(0);
  private readonly waiters = new Waiters();

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (!isBinary) this.texts.push(data.toString());
      else {
        this.output = Buffer.concat([this.output, data]);
        if (this.output.byteLength > RAW_CLIENT_OUTPUT_MAX_BYTES) this.output = this.output.subarray(-RAW_CLIENT_OUTPUT_MAX_BYTES);
      }
      this.notify();
    });
    ws.on("close", (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.notify();
    });
  }

  /** Opens the socket (no credentials; `headers` beside them); resolves once it is open. */
  static open(url: string, headers: Record<string, string> = {}): Promise<RawClient> {
    const ws = new WebSocket(url.replace(/^http/, "ws"), { perMessageDeflate: false, headers });
    const client = new RawClient(ws);
    return new Promise((resolve, reject) => {
      ws.once("open", () => resolve(client));
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once("error", reject);
    });
  }

  /** Opens and authenticates with `token`. */
  static async connect(url: string, token: string, headers: Record<string, string> = {}): Promise<RawClient> {
    const client = await RawClient.open(url, headers);
    client.auth(token);
    return client;
  }

  auth(token: string): void {
    this.ws.send(JSON.stringify({ type: "auth", token }));
  }

  /** Raw bytes for the PTY (a binary frame). */
  type(text: string | Buffer): void {
    this.ws.send(typeof text === "string" ? Buffer.from(text) : text, { binary: true });
  }

  resize(cols: number, rows: number): void {
    this.ws.send(JSON.stringify({ type: "resize", cols, rows }));
  }

  text(): string {
    return this.output.toString("utf8");
  }

  close(): void {
    this.ws.close();
  }

  /** Resolves once `predicate` holds, checked on every frame; rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    return this.waiters.until(predicate, what, timeoutMs, () => `; output tail: ${JSON.stringify(this.text().slice(-300))}`);
  }


  waitForText(pattern: string | RegExp, timeoutMs?: number): Promise<void> {
    const test = typeof pattern === "string" ? (t: string) => t.includes(pattern) : (t: string) => pattern.test(t);
    return this.waitFor(() => test(this.text()), `output matching ${pattern}`, timeoutMs);
  }

  async waitForClose(timeoutMs?: number): Promise<{ code: number; reason: string }> {
    await this.waitFor(() => this.closed !== null, "the close", timeoutMs);
    return this.closed!;
  }

  private notify(): void {
    this.waiters.notify();
  }

}
