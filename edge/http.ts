/** Small HTTP helpers shared by the routes: bounded JSON bodies and query values. */
import { ApiError } from "../shared/errors.ts";

/** Largest JSON body the API reads, in bytes. */
export const JSON_BODY_MAX_BYTES = 64 << 10; // 64 KiB

/** Reads a JSON object body of at most `maxBytes`; a clear 4xx for anything else. */
export async function readJsonObject(request: Request, maxBytes = JSON_BODY_MAX_BYTES): Promise<Record<string, unknown>> {
  const declared = Number(request.headers.get("Content-Length") ?? "0");
  if (declared > maxBytes) throw new ApiError(413, "BODY_TOO_LARGE", `Request body exceeds ${maxBytes} bytes`);
  const reader = request.body?.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (reader) {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel();
        throw new ApiError(413, "BODY_TOO_LARGE", `Request body exceeds ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
  }
  if (size === 0) return {};
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new ApiError(400, "INVALID_JSON", "Request body is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ApiError(400, "INVALID_JSON", "Request body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

/**
 * JSON bodies shorter than this are sent uncompressed, in characters. Cloudflare's front (and
 * Miniflare's entry worker, which the local stack runs) gzips `application/json` answers for a
 * client that accepts gzip; for a few hundred bytes that saves no time on the wire and costs both
 * ends a compressor's set-up (about 1 ms of a `/execute` round trip on a 2-core host, client
 * included).
 */
export const UNCOMPRESSED_JSON_MAX_CHARS = 1024;

/**
 * `Response.json(body, {status})`, marked `Content-Encoding: identity` when it is shorter than
 * UNCOMPRESSED_JSON_MAX_CHARS: a compressing front leaves a body that already names an encoding
 * alone (Miniflare's entry worker does), and clients read `identity` as no encoding (checked:
 * Chromium's fetch, Node's fetch, curl).
 */
export function jsonAnswer(body: unknown, status = 200): Response {
  const text = JSON.stringify(body);
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (text.length < UNCOMPRESSED_JSON_MAX_CHARS) headers["Content-Encoding"] = "identity";
  return new Response(text, { status, headers });
}

/** The first value of a query parameter (itty gives arrays for repeats). */
export function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** All values of a query parameter. */
export function all(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/**
 * A limit given as a query parameter: a whole number, capped to [min, max] (asking for more than
 * the most gets the most, as the seed's "max" reads); 400 INVALID_PARAMETERS when not a number.
 */
export function intParam(value: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined || value === "") return fallback;
  if (!/^\d+$/.test(value)) throw new ApiError(400, "INVALID_PARAMETERS", `${name} must be a whole number (${min}-${max}; more counts as ${max})`);
  return Math.min(max, Math.max(min, Number(value)));
}

/** True when the request carries a body (a declared length above 0, or a stream of unknown length). */
export function hasBody(request: Request): boolean {
  if (request.body === null) return false;
  const length = request.headers.get("Content-Length");
  return length === null || Number(length) !== 0;
}

/** True for `application/json` and `application/*+json`, with or without parameters. */
export function isJsonContentType(value: string | null): boolean {
  if (value === null) return false;
  const type = value.split(";")[0]!.trim().toLowerCase();
  return type === "application/json" || /^application\/[a-z0-9.+-]+\+json$/.test(type);
}

export function isWebSocketUpgrade(request: Request): boolean {
  return request.headers.get("Upgrade")?.toLowerCase() === "websocket";
}

/**
 * Unread request body bytes read and dropped after an answer that did not need them (a refusal
 * before the body, a 404, an agent that answered without reading), at most: the local runtime
 * closes a keep-alive connection whose request body was left unread, without `Connection: close`,
 * so the client's next request on it (or the rest of this body) fails with ECONNRESET or EPIPE. A
 * bigger unread remainder is cancelled (that connection then closes).
 */
export const UNREAD_BODY_DRAIN_MAX_BYTES = 64 * 1024; // 64 KiB

/**
 * Reads and drops what is left of a request body (a stream not yet locked, or the reader that
 * holds it), up to UNREAD_BODY_DRAIN_MAX_BYTES, then cancels the rest; never throws.
 */
export async function drainUnread(body: ReadableStream<Uint8Array> | ReadableStreamDefaultReader<Uint8Array> | null): Promise<void> {
  if (!body || (body instanceof ReadableStream && body.locked)) return;
  const reader = body instanceof ReadableStream ? body.getReader() : body;
  try {
    for (let read = 0; read <= UNREAD_BODY_DRAIN_MAX_BYTES; ) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
    }
  } catch {
    /* the client went away */
  }
  await reader.cancel().catch(() => {});
}

/**
 * A signal that aborts when the client of `request` goes away, for a Durable Object fetch made on
 * its behalf: the DO's own `request.signal` then aborts (wrangler.toml's `enable_request_signal`;
 * checked in workerd by test/edge/abandoned-calls.test.ts). The incoming request's signal is
 * ignored by fetch() unless `request_signal_passthrough` is set, so a controller of our own
 * carries it across.
 */
export function clientLeaving(request: Request): AbortSignal {
  const left = new AbortController();
  const incoming = request.signal;
  if (incoming.aborted) left.abort(incoming.reason);
  else incoming.addEventListener("abort", () => left.abort(incoming.reason), { once: true });
  return left.signal;
}
