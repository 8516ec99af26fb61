/**
 * What every link module (client.ts, data.ts, control.ts, exec.ts) is built from: the one error
 * their decoders throw, the framing helpers of the binary links, and `decodeWith`, which checks a
 * parsed value against a valibot schema. Web standards only: it runs in workerd, Node and the
 * browser.
 */
import * as v from "valibot";

/**
 * Thrown by every decoder of every link for a frame it refuses; the message says which frame and
 * which field. Nothing else escapes a decoder (the fuzz suite in test/fuzz/ holds them to that).
 */
export class LinkDecodeError extends Error {
  override name = "LinkDecodeError";
  /** The request id of a refused request, when one could be read (so it can be answered). */
  readonly id: number | null;
  /** The refused message's type (`t`), when one could be read. */
  readonly t: string | null;
  /** The HTTP status a refused request is answered with (400, or 501 for an unknown op). */
  readonly status: number;
  constructor(message: string, refused: { id?: number | null; t?: string; status?: number } = {}) {
    super(message);
    this.id = refused.id ?? null;
    this.t = refused.t ?? null;
    this.status = refused.status ?? 400;
  }
}

const encoder = new TextEncoder();
/** Strict: a payload that is not UTF-8 is refused, not patched with U+FFFD. */
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
const lenientDecoder = new TextDecoder();

/** One type byte followed by `payload`. */
export function frame(op: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(1 + payload.byteLength);
  out[0] = op;
  out.set(payload, 1);
  return out;
}

/** One type byte followed by `value` as JSON. */
export function jsonFrame(op: number, value: unknown): Uint8Array {
  return frame(op, encoder.encode(JSON.stringify(value)));
}

/** A frame type byte as people read it in errors: `0x0a`. */
export function hex(op: number): string {
  return `0x${op.toString(16).padStart(2, "0")}`;
}

/** Decodes one frame type: `payload` is what follows the type byte, `bytes` the whole frame. */
export type FrameCase<T> = (payload: Uint8Array, bytes: Uint8Array) => T;

/**
 * The decoder of a link direction whose frames start with a type byte: `cases[type]` decodes
 * the rest. LinkDecodeError for an empty frame or a type with no case (`unknown <link> frame
 * type 0x..`); each case throws its own for a malformed payload.
 */
export function typedFrameDecoder<T>(link: string, cases: Readonly<Record<number, FrameCase<T>>>): (bytes: Uint8Array) => T {
  return (bytes) => {
    if (bytes.byteLength === 0) throw new LinkDecodeError("empty frame");
    const decode = cases[bytes[0]!];
    if (!decode) throw new LinkDecodeError(`unknown ${link} frame type ${hex(bytes[0]!)}`);
    return decode(bytes.subarray(1), bytes);
  };
}

/** UTF-8 text (replacement characters for bad sequences: for display-only payloads). */
export function utf8(bytes: Uint8Array): string {
  return lenientDecoder.decode(bytes);
}

/** The JSON in a frame's payload; LinkDecodeError names `what` when it is not UTF-8 JSON. */
export function parseJson(payload: Uint8Array | string, what: string): unknown {
  try {
    return JSON.parse(typeof payload === "string" ? payload : strictDecoder.decode(payload));
  } catch {
    throw new LinkDecodeError(`${what} payload is not JSON`);
  }
}

/** `value` checked against `schema`; LinkDecodeError names the frame and the first bad field. */
export function decodeWith<S extends v.GenericSchema>(
  schema: S,
  value: unknown,
  what: string,
  refused: { id?: number | null; t?: string } = {},
): v.InferOutput<S> {
  const result = v.safeParse(schema, value);
  if (result.success) return result.output;
  const issue = result.issues[0];
  const path = issue.path?.map((p) => String(p.key)).join(".");
  throw new LinkDecodeError(`${what}${path ? `.${path}` : ""}: ${issue.message}`, refused);
}

/** A request or message id: a safe integer ≥ 0. */
export const RequestId = v.pipe(v.number(), v.safeInteger(), v.minValue(0));

/** The `id` of a decoded JSON message, when it has a valid one (to answer a refused request). */
export function idOf(value: unknown): number | null {
  const id = typeof value === "object" && value !== null ? (value as { id?: unknown }).id : undefined;
  return v.is(RequestId, id) ? id : null;
}

const TWO_32 = 2 ** 32;

/** A DataView over exactly `bytes`. */
export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Writes a stream offset (a safe integer) as a big-endian u64. */
export function writeU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, Math.floor(value / TWO_32));
  view.setUint32(at + 4, value >>> 0);
}

/** Reads a big-endian u64 stream offset; LinkDecodeError when it is past 2^53 (not exact in JS). */
export function readOffset(view: DataView, at: number, what: string): number {
  const high = view.getUint32(at);
  if (high >= 0x20_0000) throw new LinkDecodeError(`${what} offset is past 2^53`);
  return high * TWO_32 + view.getUint32(at + 4);
}
