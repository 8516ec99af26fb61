/**
 * The agent's end of direct bodies (shared/links/tunnel.ts): a large tunnelled answer goes to the
 * edge as HTTP POSTs of TUNNEL_DIRECT_SEGMENT_BYTES at most, which the HostDO pipes into the
 * client's response without JavaScript touching the bytes. Each POST carries its Content-Length,
 * the agent token and the call's key; TCP's backpressure paces the reading of the file.
 */
import { once } from "node:events";
import http from "node:http";
import https from "node:https";
import type { Writable } from "node:stream";
import { TUNNEL_BODY_KEY_HEADER, TUNNEL_BODY_PATH, TUNNEL_FRAME_BYTES } from "../../../shared/links/tunnel.ts";

/** Longest edge answer to a segment read, in bytes (a short JSON; more is cut). */
const SEGMENT_ANSWER_MAX_BYTES = 4096;
/** Buffers a direct body is read into when its stream takes readers' buffers (BYOB), each TUNNEL_FRAME_BYTES. */
export const DIRECT_READ_BUFFERS = 4;

/** One segment of a direct body: `size` bytes from `offset`, given as chunks that add up to `size`. */
export interface BodySegment {
  rid: number;
  key: string;
  offset: number;
  size: number;
  chunks: AsyncIterable<Uint8Array>;
  /** To be called once a chunk's bytes are no longer needed (written to the socket, or dropped): its memory is reused. */
  written(chunk: Uint8Array): void;
}

/**
 * Reads a body in pieces of at most a given size (a direct body's segments, or a multi-user file
 * server's answer in `writeBody`). A byte stream is read into
 * DIRECT_READ_BUFFERS buffers of TUNNEL_FRAME_BYTES, each reused once the sender says it was
 * written, so a 1 GB download leaves no garbage behind (V8 collects `ArrayBuffer`s only after
 * ~64 MB of them); any other stream's chunks are taken as they come and cut where asked.
 */
export class DirectBodyReader {
  private readonly byob: ReadableStreamBYOBReader | null;
  private readonly plain: ReadableStreamDefaultReader<Uint8Array> | null;
  /** What is left of a chunk cut at a segment's end (plain streams only). */
  private carry: Uint8Array | null = null;
  private readonly free: ArrayBuffer[] = [];
  private made = 0;
  private wake: (() => void) | null = null;

  constructor(body: ReadableStream<Uint8Array>) {
    let byob: ReadableStreamBYOBReader | null = null;
    try {
      byob = body.getReader({ mode: "byob" });
    } catch {
      /* not a byte stream */
    }
    this.byob = byob;
    this.plain = byob ? null : body.getReader();
  }

  /** The next 1..`max` bytes, or null at the end; rejects when `signal` aborts while it waits for a buffer. */
  async read(max: number, signal: AbortSignal): Promise<Uint8Array | null> {
    if (this.plain) {
      let chunk = this.carry;
      this.carry = null;
      while (!chunk || chunk.byteLength === 0) {
        const { done, value } = await this.plain.read();
        if (done) return null;
        chunk = value;
      }
      if (chunk.byteLength > max) {
        this.carry = chunk.subarray(max);
        chunk = chunk.subarray(0, max);
      }
      return chunk;
    }
    let buffer = this.free.pop();
    while (!buffer) {
      if (this.made < DIRECT_READ_BUFFERS) {
        this.made++;
        buffer = new ArrayBuffer(TUNNEL_FRAME_BYTES);
        break;
      }
      signal.throwIfAborted();
      await new Promise<void>((resolve) => {
        const wake = () => {
          signal.removeEventListener("abort", wake);
          this.wake = null;
          resolve();
        };
        this.wake = wake;
        signal.addEventListener("abort", wake, { once: true });
      });
      buffer = this.free.pop();
    }
    const { done, value } = await this.byob!.read(new Uint8Array(buffer, 0, Math.min(max, buffer.byteLength)));
    if (done) {
      if (value) this.free.push(value.buffer as ArrayBuffer);
      return null;
    }
    return value;
  }

  /** Buffers allocated so far (at most DIRECT_READ_BUFFERS; 0 for a stream that is not a byte stream). */
  get buffersMade(): number {
    return this.made;
  }

  /** `chunk` (from `read`) has been written: its buffer may take the next read. */
  written(chunk: Uint8Array): void {
    if (!this.byob) return;
    this.free.push(chunk.buffer as ArrayBuffer);
    this.wake?.();
  }

  /** Stops reading the body (what follows is not sent). */
  async cancel(): Promise<void> {
    await (this.byob ?? this.plain)!.cancel().catch(() => {});
  }
}

/**
 * Writes `body` to `out` (an HTTP response) and ends it, through a DirectBodyReader, so a byte
 * stream's buffers are reused once written. Rejects when the body fails or `signal` aborts (the
 * reader of `out` left); `out` is left to the caller then.
 */
export async function writeBody(body: ReadableStream<Uint8Array>, out: Writable, signal: AbortSignal): Promise<void> {
  const reader = new DirectBodyReader(body);
  try {
    for (;;) {
      const chunk = await reader.read(TUNNEL_FRAME_BYTES, signal);
      if (!chunk) break;
      if (!out.write(chunk, () => reader.written(chunk))) await once(out, "drain", { signal });
    }
    out.end();
  } catch (error) {
    await reader.cancel();
    throw error;
  }
}

/** Sends one segment; resolves once the edge wrote it, rejects with why not (the edge's `detail`, or the network's error). */
export type SegmentSender = (segment: BodySegment, signal: AbortSignal) => Promise<void>;

/** A SegmentSender that POSTs to the edge at `edge` (http or https) as server `server` with its agent `token`. */
export function segmentPoster(edge: string, server: string, token: string): SegmentSender {
  return (segment, signal) =>
    new Promise<void>((resolve, reject) => {
      const url = new URL(TUNNEL_BODY_PATH, edge);
      url.search = new URLSearchParams({ server, rid: String(segment.rid), offset: String(segment.offset) }).toString();
      const request = (url.protocol === "https:" ? https : http).request(url, {
        method: "POST",
        signal,
        headers: {
          Authorization: `Bearer ${token}`,
          "Content-Length": String(segment.size),
          "Content-Type": "application/octet-stream",
          [TUNNEL_BODY_KEY_HEADER]: segment.key,
        },
      });
      request.on("error", reject);
      request.on("response", (response) => {
        const parts: Buffer[] = [];
        let length = 0;
        response.on("data", (part: Buffer) => {
          if (length < SEGMENT_ANSWER_MAX_BYTES) parts.push(part);
          length += part.byteLength;
        });
        response.on("error", reject);
        response.on("end", () => {
          if (response.statusCode === 200) return resolve();
          const text = Buffer.concat(parts).toString("utf8").slice(0, SEGMENT_ANSWER_MAX_BYTES);
          let detail = text;
          try {
            detail = String((JSON.parse(text) as { detail?: unknown }).detail ?? text);
          } catch {
            /* not JSON: the text as it came */
          }
          reject(new Error(`the edge refused the body's segment at ${segment.offset}: ${response.statusCode} ${detail}`));
        });
      });
      void (async () => {
        try {
          for await (const chunk of segment.chunks) {
            if (!request.write(chunk, () => segment.written(chunk))) await once(request, "drain", { signal });
          }
          request.end();
        } catch (error) {
          request.destroy(error as Error);
        }
      })();
    });
}
