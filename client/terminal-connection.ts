/**
 * An attached terminal over the client link (`/api/v1/terminal/ws`, shared/links/client.ts):
 * INFO first, then a repaint, then live output; INPUT, RESIZE, PING from the client. Frames are
 * read as an async iterator. Back-pressure uses the protocol's PAUSE/RESUME: when more than
 * INBOX_PAUSE_BYTES of output waits unread the edge is asked to stop, and to go on (with what was
 * missed, or a repaint) once the reader is below INBOX_RESUME_BYTES.
 */
import { decodeServerFrame, encodeClientFrame, LinkDecodeError, type ServerFrame, type SessionInfo } from "../shared/links/client.ts";
import { EdgettyError, errorFromClose } from "./errors.ts";
import { Inbox, INBOX_MAX_ITEMS, readUntilMatch, WAIT_OUTPUT_DEFAULT_MS, type Channel } from "./socket.ts";

/** Unread output that makes the client send PAUSE, in bytes. */
export const INBOX_PAUSE_BYTES = 1 << 20; // 1 MiB
/** Unread output under which a paused client sends RESUME, in bytes. */
export const INBOX_RESUME_BYTES = 256 * 1024; // 256 KiB
/** How long `connect` waits for the session's INFO once the socket is open, in milliseconds. */
export const ATTACH_TIMEOUT_MS = 30_000;
/** PINGs awaiting their PONG at once. */
export const PINGS_MAX = 64;

/** How a connection ended. */
export interface CloseInfo {
  code: number;
  reason: string;
}

const textEncoder = new TextEncoder();

/** A terminal attached over `/api/v1/terminal/ws`. Read frames with `for await (const f of conn)`. */
export class TerminalConnection implements AsyncIterable<ServerFrame> {
  /** The newest INFO the edge sent (the first arrives before `connect` resolves). */
  info!: SessionInfo;
  /** Resolves when the socket has closed. */
  readonly closed: Promise<CloseInfo>;
  private readonly inbox: Inbox<ServerFrame>;
  private holding = false;
  private readonly pings = new Map<string, { resolve: () => void; reject: (error: unknown) => void }>();
  private pingSeq = 0;
  private readonly decoder = new TextDecoder();

  private constructor(private readonly channel: Channel) {
    this.inbox = new Inbox<ServerFrame>((left) => {
      if (this.holding && left < INBOX_RESUME_BYTES) {
        this.holding = false;
        try {
          this.sendFrame({ t: "resume" });
        } catch {
          /* closed meanwhile: nothing to resume */
        }
      }
    });
    this.closed = channel.closed().then((info) => {
      this.inbox.end();
      for (const ping of this.pings.values()) ping.reject(new EdgettyError(0, "WS_CLOSED", "the terminal closed before the PONG", "websocket"));
      this.pings.clear();
      return info;
    });
    channel.onMessage((data) => this.receive(data));
    this.sendFrame({ t: "ack", mark: new Uint8Array(0) }); // this client answers MARKs
  }

  /** True while the client has asked the edge to hold output (PAUSE sent, RESUME not yet). */
  get paused(): boolean {
    return this.holding;
  }

  /** Output bytes received and not yet read. */
  get unreadBytes(): number {
    return this.inbox.bytes;
  }

  /** Wraps an open channel; resolves once INFO arrived, rejects with the edge's ERROR or close. */
  static async attach(channel: Channel): Promise<TerminalConnection> {
    const conn = new TerminalConnection(channel);
    let error: { code: string; message: string } | null = null;
    const deadline = Date.now() + ATTACH_TIMEOUT_MS;
    for (;;) {
      const frame = await conn.inbox.next(deadline).catch((failure: unknown) => {
        conn.close();
        throw failure;
      });
      if (frame === null) {
        const close = await conn.closed;
        if (error) throw new EdgettyError(/^(SSH|SOCKS5)_/.test(error.code) ? 502 : 0, error.code, error.message, "websocket", error, close.code);
        throw close.code >= 4000 ? errorFromClose(close.code, close.reason) : new EdgettyError(0, "WS_CLOSED", `the terminal closed before it was ready (${close.code} ${close.reason})`, "websocket", close.reason, close.code);
      }
      if (frame.t === "error") error = frame.error;
      if (frame.t === "info") {
        conn.info = frame.info;
        return conn;
      }
    }
  }

  private receive(data: Uint8Array | string): void {
    if (typeof data === "string") return; // the edge sends no text on this link
    let frame: ServerFrame;
    try {
      frame = decodeServerFrame(data);
    } catch (error) {
      const message = error instanceof LinkDecodeError ? error.message : String(error);
      this.inbox.fail(new EdgettyError(0, "INVALID_FRAME", `the edge sent a frame the client cannot read: ${message}`, "websocket"));
      this.close(4400, "invalid frame"); // an application code: browsers refuse 1002
      return;
    }
    if (frame.t === "info") this.info = frame.info;
    if (frame.t === "mark") {
      // Read off the socket: say so, so the edge keeps sending at full rate (docs/protocol.md).
      this.sendFrame({ t: "ack", mark: frame.mark });
      return;
    }
    if (frame.t === "pong") {
      const key = this.decoder.decode(frame.data);
      this.pings.get(key)?.resolve();
      this.pings.delete(key);
      return;
    }
    if (this.inbox.size >= INBOX_MAX_ITEMS) {
      this.inbox.fail(new EdgettyError(0, "INBOX_FULL", `more than ${INBOX_MAX_ITEMS} frames were left unread`, "websocket"));
      this.close(4413, "client inbox full"); // an application code: browsers refuse 1008
      return;
    }
    const bytes = frame.t === "output" ? frame.data.byteLength : 0;
    this.inbox.push(frame, bytes);
    if (!this.holding && this.inbox.bytes > INBOX_PAUSE_BYTES) {
      this.holding = true;
      this.sendFrame({ t: "pause" });
    }
  }

  private sendFrame(frame: Parameters<typeof encodeClientFrame>[0]): void {
    this.channel.send(encodeClientFrame(frame));
  }

  /** Types into the terminal (INPUT). A read-only client gets an ERROR frame back. */
  write(input: string | Uint8Array): void {
    this.sendFrame({ t: "input", data: typeof input === "string" ? textEncoder.encode(input) : input });
  }

  /** Resizes the terminal (RESIZE), 1–1000 cells each way. */
  resize(cols: number, rows: number): void {
    this.sendFrame({ t: "resize", size: { cols, rows } });
  }

  /** PING; resolves on its PONG, which comes after everything the edge sent before it (WS_CLOSED if the socket closes first). */
  ping(): Promise<void> {
    if (this.pings.size >= PINGS_MAX) return Promise.reject(new EdgettyError(0, "TOO_MANY_PINGS", `at most ${PINGS_MAX} pings at once`, "websocket"));
    const key = `p${++this.pingSeq}`;
    return new Promise((resolve, reject) => {
      this.pings.set(key, { resolve, reject });
      try {
        this.sendFrame({ t: "ping", data: textEncoder.encode(key) });
      } catch (error) {
        this.pings.delete(key);
        reject(error);
      }
    });
  }

  /** Every frame after INFO, in order (OUTPUT, TITLE, INFO, EXIT, ERROR); ends when the socket closes. */
  [Symbol.asyncIterator](): AsyncIterator<ServerFrame> {
    return this.inbox[Symbol.asyncIterator]();
  }

  /** The next frame, or null once closed; `timeoutMs` bounds the wait (TIMEOUT error). */
  nextFrame(timeoutMs?: number): Promise<ServerFrame | null> {
    return this.inbox.next(timeoutMs === undefined ? undefined : Date.now() + timeoutMs);
  }

  /**
   * Reads frames until the output (as UTF-8, the newest 1 Mi characters) matches; answers the
   * output read so far. Rejects with TIMEOUT, or WS_CLOSED if the terminal ends first.
   */
  waitForOutput(match: string | RegExp, timeoutMs = WAIT_OUTPUT_DEFAULT_MS): Promise<string> {
    return readUntilMatch(
      async (deadline) => {
        for (;;) {
          const frame = await this.inbox.next(deadline);
          if (frame === null) return null;
          if (frame.t === "output") return frame.data;
        }
      },
      match,
      timeoutMs,
    );
  }

  /** Closes the connection (the session goes on; delete it to end it). */
  close(code = 1000, reason = ""): void {
    this.channel.close(code, reason);
  }
}
