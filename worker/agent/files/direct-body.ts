/**
 * The agent's end of direct bodies (shared/links/tunnel.ts): a large tunnelled answer goes to the
 * edge as HTTP POSTs of TUNNEL_DIRECT_SEGMENT_BYTES at most, which the HostDO pipes into the
 * client's response without JavaScript touching the bytes. Each POST carries its Content-Length,
 * the agent token and the call's key; TCP's backpressure paces the reading of the file.
 */
import { once } from "node:events";
import http from "node:http";
import https from "node:https";
import { TUNNEL_BODY_KEY_HEADER, TUNNEL_BODY_PATH } from "../../../shared/links/tunnel.ts";

/** Longest edge answer to a segment read, in bytes (a short JSON; more is cut). */
const SEGMENT_ANSWER_MAX_BYTES = 4096;

/** One segment of a direct body: `size` bytes from `offset`, given as chunks that add up to `size`. */
export interface BodySegment {
  rid: number;
  key: string;
  offset: number;
  size: number;
  chunks: AsyncIterable<Uint8Array>;
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
            if (!request.write(chunk)) await once(request, "drain", { signal });
          }
          request.end();
        } catch (error) {
          request.destroy(error as Error);
        }
      })();
    });
}
