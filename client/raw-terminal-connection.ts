/**
 * A terminal attached over the Open Terminal WebSocket `/api/terminals/{id}` (at the top level or
 * under `/api/v1/terminals/{server_id}/`): the first message authenticates
 * (`{"type":"auth","token"}`), then binary frames are raw PTY bytes both ways and a text frame
 * `{"type":"resize","cols","rows"}` resizes. The protocol has no acknowledgements, so the inbox
 * is bounded: more than RAW_INBOX_MAX_BYTES unread closes the connection (INBOX_FULL).
 */
import { TERMINAL_WS_AUTH_TIMEOUT_MS } from "../shared/open-terminal-terminals.ts";
import { EdgettyError, errorFromClose } from "./errors.ts";
import type { CloseInfo } from "./terminal-connection.ts";
import { Inbox, INBOX_MAX_ITEMS, readUntilMatch, WAIT_OUTPUT_DEFAULT_MS, type Channel } from "./socket.ts";

/** Unread output that closes a raw connection, in bytes. */
export const RAW_INBOX_MAX_BYTES = 8 << 20; // 8 MiB
/** How long to wait for the first output (the repaint) after authenticating, in milliseconds. */
export const RAW_READY_TIMEOUT_MS = TERMINAL_WS_AUTH_TIMEOUT_MS + 5_000;

const textEncoder = new TextEncoder();

/** A raw terminal WebSocket. Read output with `for await (const bytes of conn)`. */
export class RawTerminalConnection implements AsyncIterable<Uint8Array> {
  /** Resolves when the socket has closed. */
  readonly closed: Promise<CloseInfo>;
  private readonly inbox = new Inbox<Uint8Array>();

  private constructor(private readonly channel: Channel) {
    this.closed = channel.closed().then((info) => {
      this.inbox.end();
      return info;
    });
    channel.onMessage((data) => {
      if (typeof data === "string") return; // the edge sends no text frames
      if (this.inbox.bytes + data.byteLength > RAW_INBOX_MAX_BYTES || this.inbox.size >= INBOX_MAX_ITEMS) {
        this.inbox.fail(new EdgettyError(0, "INBOX_FULL", `more than ${RAW_INBOX_MAX_BYTES} bytes of output were left unread`, "websocket"));
        this.close(4413, "client inbox full"); // an application code: browsers refuse 1008
        return;
      }
      this.inbox.push(data, data.byteLength);
    });
  }

  /**
   * Authenticates on an open channel and resolves once the edge sent its first output (the
   * repaint); a refusal (close 4001, 4003, 4004, 4009) rejects with its EdgettyError.
   */
  static async attach(channel: Channel, token: string): Promise<RawTerminalConnection> {
    const conn = new RawTerminalConnection(channel);
    channel.send(JSON.stringify({ type: "auth", token }));
    const first = await conn.inbox.next(Date.now() + RAW_READY_TIMEOUT_MS).catch((error: unknown) => {
      conn.close();
      throw error;
    });
    if (first === null) {
      const close = await conn.closed;
      throw close.code >= 4000 ? errorFromClose(close.code, close.reason) : new EdgettyError(0, "WS_CLOSED", `the terminal closed before it was ready (${close.code} ${close.reason})`, "websocket", close.reason, close.code);
    }
    conn.first = first;
    return conn;
  }

  private first: Uint8Array | null = null;

  /** Sends keystrokes (a binary frame). */
  write(input: string | Uint8Array): void {
    this.channel.send(typeof input === "string" ? textEncoder.encode(input) : input);
  }

  /** Resizes the PTY (a text frame). */
  resize(cols: number, rows: number): void {
    this.channel.send(JSON.stringify({ type: "resize", cols, rows }));
  }

  /** The next output chunk, or null once closed; `timeoutMs` bounds the wait (TIMEOUT error). */
  async next(timeoutMs?: number): Promise<Uint8Array | null> {
    if (this.first) {
      const first = this.first;
      this.first = null;
      return first;
    }
    return this.inbox.next(timeoutMs === undefined ? undefined : Date.now() + timeoutMs);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const chunk = await this.next();
      if (chunk === null) return;
      yield chunk;
    }
  }

  /** Reads output until its text (the newest 1 Mi characters) matches; answers it. TIMEOUT / WS_CLOSED otherwise. */
  waitForOutput(match: string | RegExp, timeoutMs = WAIT_OUTPUT_DEFAULT_MS): Promise<string> {
    return readUntilMatch((deadline) => this.next(Math.max(0, deadline - Date.now())), match, timeoutMs);
  }

  /** Closes the socket; the session stays (delete it to end it). */
  close(code = 1000, reason = ""): void {
    this.channel.close(code, reason);
  }
}
