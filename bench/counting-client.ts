/**
 * A WebSocket client for the benchmark that only counts what it receives. A general client (ws)
 * allocates a buffer per socket read and another per message, and under a flood the garbage
 * collector then costs as much CPU as the reading; on a two-core machine that CPU comes out of
 * the very pipeline being measured. This one reads into one reused buffer (`onread`) and parses
 * frames in place, feeding OUTPUT payloads to an OutputCounter.
 *
 * It speaks just enough RFC 6455 for that: the upgrade handshake, binary and text messages
 * (fragmented or not), ping (answered), close; what it sends is masked, as a client must. It
 * answers the edge's MARKs (docs/protocol.md, flow control), as a client that reads at full rate.
 */
import { createHash, randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { ClientOp, MARK_BYTES, ServerOp } from "../shared/links/client.ts";

/** The reused read buffer, in bytes. */
const READ_BUFFER_BYTES = 256 << 10; // 256 KiB
/** Longest handshake response accepted, in bytes. */
const HANDSHAKE_MAX_BYTES = 16 << 10; // 16 KiB
/** The newest bytes of each piece of output searched for markers. */
const SEARCH_BYTES = 4096;
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** How long `close()` waits for the server's Close before dropping the connection, in milliseconds. */
const CLOSE_WAIT_MS = 5_000;

const Opcode = { CONTINUATION: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

/**
 * Counts output bytes and watches for markers. A marker is looked for in the newest 4 KiB of each
 * piece fed (markers here end a burst of output), across piece boundaries, and only in output fed
 * after `until` was called.
 */
export class OutputCounter {
  /** Output bytes fed so far. */
  bytes = 0;
  private watchers: { needle: string; resolve: () => void; tail: string }[] = [];

  /** Resolves once `needle` (latin1) appears in the output fed from now on. */
  until(needle: string): Promise<void> {
    return new Promise((resolve) => this.watchers.push({ needle, resolve, tail: "" }));
  }

  /** The next output bytes (OUTPUT payloads without their type byte), in order. */
  feed(bytes: Uint8Array): void {
    this.bytes += bytes.byteLength;
    if (this.watchers.length === 0) return;
    const newest = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1", Math.max(0, bytes.byteLength - SEARCH_BYTES));
    for (const w of [...this.watchers]) {
      const text = w.tail + newest;
      if (text.includes(w.needle)) {
        this.watchers.splice(this.watchers.indexOf(w), 1);
        w.resolve();
      } else {
        // Keep what could be the start of a marker that the next piece completes.
        w.tail = text.slice(-(w.needle.length - 1) || text.length);
      }
    }
  }
}

export class CountingWebSocket {
  readonly output = new OutputCounter();
  /** Resolves at the first OUTPUT message's first byte (a joiner's repaint), or when the socket ends. */
  readonly firstOutput: Promise<void>;
  private resolveFirstOutput!: () => void;
  /** Nothing more is sent (a Close went out, or the socket ended). */
  private closed = false;

  // Frame parser state.
  private readonly header = new Uint8Array(14);
  private headerHave = 0;
  private opcode = 0;
  /** Payload bytes of the current frame still to come; -1 while reading a header. */
  private remaining = -1;
  /** The current message's first payload byte is still to come. */
  private atMessageStart = true;
  /** Counting the current message (an OUTPUT frame). */
  private counting = false;
  private control: number[] = [];
  /** The id of the MARK being read (the current message is one), else null. */
  private mark: number[] | null = null;

  private constructor(private readonly socket: Socket) {
    // After the handshake a failing socket just ends the count; the caller sees no more output.
    this.firstOutput = new Promise((resolve) => (this.resolveFirstOutput = resolve));
    const ended = () => {
      this.closed = true;
      this.resolveFirstOutput();
    };
    socket.on("error", ended);
    socket.on("close", ended);
  }

  /** Opens `url` (ws://) with extra request headers. */
  static open(url: string, headers: Record<string, string> = {}): Promise<CountingWebSocket> {
    const target = new URL(url);
    const key = randomBytes(16).toString("base64");
    const accept = createHash("sha1").update(key + GUID).digest("base64");
    return new Promise((resolve, reject) => {
      let client: CountingWebSocket | null = null;
      let handshake = Buffer.alloc(0);
      const readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
      // Returning true keeps the socket reading (false would pause it).
      const socket = connect({
        host: target.hostname,
        port: Number(target.port || 80),
        onread: {
          buffer: readBuffer,
          callback: (n) => {
            if (client) {
              client.onBytes(readBuffer.subarray(0, n));
              return true;
            }
            handshake = Buffer.concat([handshake, readBuffer.subarray(0, n)]);
            const end = handshake.indexOf("\r\n\r\n");
            if (end < 0) {
              if (handshake.byteLength > HANDSHAKE_MAX_BYTES) socket.destroy(new Error("handshake response too long"));
              return true;
            }
            const head = handshake.subarray(0, end).toString("latin1");
            if (!/^HTTP\/1\.1 101 /.test(head) || !head.toLowerCase().includes(`sec-websocket-accept: ${accept.toLowerCase()}`)) {
              socket.destroy(new Error(`upgrade refused: ${head.split("\r\n")[0]}`));
              return false;
            }
            client = new CountingWebSocket(socket);
            resolve(client);
            const rest = handshake.subarray(end + 4);
            if (rest.byteLength > 0) client.onBytes(rest);
            return true;
          },
        },
      });
      socket.setNoDelay(true);
      socket.once("error", reject);
      socket.once("connect", () => {
        const lines = [
          `GET ${target.pathname}${target.search} HTTP/1.1`,
          `Host: ${target.host}`,
          "Upgrade: websocket",
          "Connection: Upgrade",
          `Sec-WebSocket-Key: ${key}`,
          "Sec-WebSocket-Version: 13",
          ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
        ];
        socket.write(`${lines.join("\r\n")}\r\n\r\n`);
      });
    });
  }

  /** Sends one binary message. */
  send(payload: Uint8Array): void {
    this.sendFrame(Opcode.BINARY, payload);
  }

  /** One final frame, masked as a client's must be. */
  private sendFrame(opcode: number, payload: Uint8Array): void {
    if (this.closed) return;
    const n = payload.byteLength;
    const lengthBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
    const out = Buffer.allocUnsafe(2 + lengthBytes + 4 + n);
    out[0] = 0x80 | opcode;
    if (lengthBytes === 0) out[1] = 0x80 | n;
    else if (lengthBytes === 2) (out[1] = 0x80 | 126), out.writeUInt16BE(n, 2);
    else (out[1] = 0x80 | 127), out.writeBigUInt64BE(BigInt(n), 2);
    const mask = 2 + lengthBytes;
    randomBytes(4).copy(out, mask);
    for (let i = 0; i < n; i++) out[mask + 4 + i] = payload[i]! ^ out[mask + (i & 3)]!;
    this.socket.write(out);
  }

  /**
   * Closes as a browser does (RFC 6455 §7.1.2): a Close frame (1000), then it reads on, counting
   * what was already on its way, until the server's Close; the connection is dropped if that
   * takes CLOSE_WAIT_MS.
   */
  close(): void {
    if (this.closed) return;
    this.sendFrame(Opcode.CLOSE, Uint8Array.of(0x03, 0xe8));
    this.closed = true;
    setTimeout(() => this.socket.destroy(), CLOSE_WAIT_MS).unref();
  }

  /** Parses what arrived, in place; the buffer is reused after this returns. */
  private onBytes(data: Buffer): void {
    let at = 0;
    while (at < data.byteLength) {
      if (this.remaining < 0) {
        at = this.readHeader(data, at);
        continue;
      }
      const take = Math.min(this.remaining, data.byteLength - at);
      this.onPayload(data.subarray(at, at + take));
      at += take;
      this.remaining -= take;
      if (this.remaining === 0) this.endFrame();
    }
  }

  /** Reads header bytes from `data` at `at`; returns where the header ended (or the data did). */
  private readHeader(data: Buffer, at: number): number {
    const h = this.header;
    while (at < data.byteLength) {
      h[this.headerHave++] = data[at++]!;
      if (this.headerHave < 2) continue;
      if (h[1]! & 0x80) {
        this.socket.destroy(new Error("the server sent a masked frame"));
        return data.byteLength;
      }
      const short = h[1]! & 0x7f;
      const need = 2 + (short === 126 ? 2 : short === 127 ? 8 : 0);
      if (this.headerHave < need) continue;
      this.opcode = h[0]! & 0x0f;
      const view = new DataView(h.buffer);
      this.remaining = short === 126 ? view.getUint16(2) : short === 127 ? Number(view.getBigUint64(2)) : short;
      this.headerHave = 0;
      if (this.opcode >= Opcode.CLOSE) {
        // RFC 6455 caps control frames at 125 bytes; more is a broken server, not a ping.
        if (this.remaining > 125) {
          this.socket.destroy(new Error("control frame over 125 bytes"));
          return data.byteLength;
        }
        this.control = [];
      }
      if (this.remaining === 0) this.endFrame();
      return at;
    }
    return at;
  }

  private onPayload(bytes: Buffer): void {
    if (this.opcode >= Opcode.CLOSE) {
      for (const b of bytes) this.control.push(b);
      return;
    }
    let payload = bytes;
    if (this.atMessageStart && payload.byteLength > 0) {
      this.atMessageStart = false;
      this.counting = this.opcode === Opcode.BINARY && payload[0] === ServerOp.OUTPUT;
      if (this.counting) this.resolveFirstOutput();
      this.mark = this.opcode === Opcode.BINARY && payload[0] === ServerOp.MARK ? [] : null;
      payload = payload.subarray(1);
    }
    if (this.mark && this.mark.length + payload.byteLength <= MARK_BYTES) for (const b of payload) this.mark.push(b);
    if (this.counting && payload.byteLength > 0) this.output.feed(payload);
  }

  private endFrame(): void {
    this.remaining = -1;
    const fin = (this.header[0]! & 0x80) !== 0;
    switch (this.opcode) {
      case Opcode.PING:
        this.sendFrame(Opcode.PONG, Uint8Array.from(this.control));
        return;
      case Opcode.CLOSE:
        // The server's Close: echo it unless ours went first (§5.5.1), then end the connection.
        if (!this.closed) this.sendFrame(Opcode.CLOSE, Uint8Array.from(this.control.slice(0, 2)));
        this.closed = true;
        this.socket.end();
        return;
      case Opcode.PONG:
        return;
    }
    if (!fin) return;
    this.atMessageStart = true;
    if (this.mark?.length === MARK_BYTES) this.send(Uint8Array.of(ClientOp.ACK, ...this.mark));
    this.mark = null;
  }
}
