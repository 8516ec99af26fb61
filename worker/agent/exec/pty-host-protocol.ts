/**
 * The link between the agent and its PTY host (pty-host-main.ts), over the host's stdin and
 * stdout pipes: binary frames, each `kind` (u8), `id` (u32 BE, the run), `length` (u32 BE), then
 * `length` bytes of payload.
 *
 *   agent → host  SPAWN   JSON {@link SpawnRequest}: start this program as run `id`, on a new
 *                         PTY, or on pipes with `pipes: true`
 *                 INPUT   bytes for run `id`'s PTY; answered by one INPUT_RESULT, in order
 *                 PAUSE   stop reading run `id`'s output (its consumer is behind); RESUME reads again
 *                 DRAIN   run `id` was killed: once its leader has exited, close its pipes after
 *                         PIPE_DRAIN_GRACE_MS (a process that escaped its group may hold them)
 *   host → agent  READY   (id 0) JSON `{mode, reason?}`: the host has chosen its descriptor closer and
 *                         takes SPAWNs; `mode` is how it spawns PTYs ("posix_spawn" or "fork",
 *                         pty-spawn.ts) and `reason` why not posix_spawn when the agent asked
 *                 SPAWNED JSON `{pid}`: run `id` started
 *                 FAILED  JSON `{message}`: run `id` could not start
 *                 DATA    bytes run `id`'s PTY (or, on pipes, its stdout) gave
 *                 STDERR  bytes run `id`'s stderr gave (pipes only)
 *                 EXIT    JSON `{exitCode, signal}`: run `id` exited and its output was all sent
 *                 INPUT_RESULT  one byte, {@link InputResultCode}: what became of run `id`'s
 *                         oldest unanswered INPUT (written, refused as the PTY's queue is full,
 *                         or the run is gone)
 *
 * Both ends refuse a frame of an unknown kind or longer than PTY_HOST_FRAME_MAX_BYTES by ending
 * the link (the host exits; the agent kills it): only the agent and the host it started speak it.
 */

/** Largest payload of one frame, in bytes (a SPAWN carries the command's environment). */
export const PTY_HOST_FRAME_MAX_BYTES = 8 << 20; // 8 MiB
/** Bytes of a frame's header. */
export const PTY_HOST_HEADER_BYTES = 9;

export const PtyHostKind = {
  SPAWN: 0x01,
  INPUT: 0x02,
  PAUSE: 0x03,
  RESUME: 0x04,
  DRAIN: 0x05,
  READY: 0x10,
  SPAWNED: 0x11,
  FAILED: 0x12,
  DATA: 0x13,
  EXIT: 0x14,
  STDERR: 0x15,
  INPUT_RESULT: 0x16,
} as const;
export type PtyHostKind = (typeof PtyHostKind)[keyof typeof PtyHostKind];

const KINDS = new Set<number>(Object.values(PtyHostKind));

/** The payload byte of INPUT_RESULT. */
export const InputResultCode = {
  /** Handed to the PTY (queued for the kernel, which takes it as the program reads). */
  WRITTEN: 0,
  /** Refused: the run's queue (or all runs' together) would pass its limit; nothing was written. */
  FULL: 1,
  /** The run has exited (or never was): nothing was written. */
  CLOSED: 2,
} as const;
export type InputResultCode = (typeof InputResultCode)[keyof typeof InputResultCode];

/**
 * Input one PTY run may have queued and not yet taken by its program, in bytes: an INPUT that
 * would pass it is refused (FULL). The agent keeps as much at most in flight per run, too.
 */
export const PTY_RUN_INPUT_QUEUE_MAX_BYTES = 2 << 20; // 2 MiB
/** Input all of the host's PTYs may have queued together, in bytes (past it every INPUT is FULL). */
export const PTY_HOST_INPUT_QUEUE_MAX_BYTES = 32 << 20; // 32 MiB

/** After DRAIN, how long a killed run's exited leader may leave its pipes open, in ms. */
export const PIPE_DRAIN_GRACE_MS = 1_000;

/**
 * What the agent asks the host to start: the launch command (launch.ts), and the PTY's settings;
 * with `pipes`, no PTY: stdin /dev/null, stdout and stderr on pipes, in a session of its own.
 */
export interface SpawnRequest {
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  /** TERM, as node-pty's `name` (PTY runs). */
  name: string;
  cols: number;
  rows: number;
  pipes?: boolean;
}

/** One decoded frame. */
export interface PtyHostFrame {
  kind: PtyHostKind;
  id: number;
  payload: Buffer;
}

/** A frame with `payload` (bytes, or a value sent as JSON). */
export function encodeFrame(kind: PtyHostKind, id: number, payload: Uint8Array | object = new Uint8Array(0)): Buffer {
  const body = payload instanceof Uint8Array ? payload : Buffer.from(JSON.stringify(payload));
  const frame = Buffer.allocUnsafe(PTY_HOST_HEADER_BYTES + body.byteLength);
  frame.writeUInt8(kind, 0);
  frame.writeUInt32BE(id >>> 0, 1);
  frame.writeUInt32BE(body.byteLength, 5);
  frame.set(body, PTY_HOST_HEADER_BYTES);
  return frame;
}

/** The header of a frame whose payload follows separately (DATA, without copying the bytes). */
export function frameHeader(kind: PtyHostKind, id: number, length: number): Buffer {
  const head = Buffer.allocUnsafe(PTY_HOST_HEADER_BYTES);
  head.writeUInt8(kind, 0);
  head.writeUInt32BE(id >>> 0, 1);
  head.writeUInt32BE(length, 5);
  return head;
}

/** Thrown by FrameReader for a frame the link does not allow. */
export class PtyHostProtocolError extends Error {
  override name = "PtyHostProtocolError";
}

/**
 * Cuts a byte stream into frames. Holds at most one incomplete frame (bounded by
 * PTY_HOST_FRAME_MAX_BYTES); throws PtyHostProtocolError for an unknown kind or an oversized one.
 */
export class FrameReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /** The complete frames `chunk` finishes, in order. Payloads may be views of `chunk`. */
  push(chunk: Buffer): PtyHostFrame[] {
    let data = chunk;
    if (this.pendingBytes > 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.byteLength;
      // Joined once the incomplete frame is whole (not on every read of a long frame).
      if (this.pendingBytes < this.needed()) return [];
      data = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
    }
    const frames: PtyHostFrame[] = [];
    let at = 0;
    while (data.byteLength - at >= PTY_HOST_HEADER_BYTES) {
      const kind = data.readUInt8(at);
      const length = data.readUInt32BE(at + 5);
      if (!KINDS.has(kind)) throw new PtyHostProtocolError(`unknown frame kind ${kind}`);
      if (length > PTY_HOST_FRAME_MAX_BYTES) throw new PtyHostProtocolError(`frame of ${length} bytes is over the limit`);
      if (data.byteLength - at < PTY_HOST_HEADER_BYTES + length) break;
      frames.push({ kind: kind as PtyHostKind, id: data.readUInt32BE(at + 1), payload: data.subarray(at + PTY_HOST_HEADER_BYTES, at + PTY_HOST_HEADER_BYTES + length) });
      at += PTY_HOST_HEADER_BYTES + length;
    }
    if (at < data.byteLength) {
      // Kept as a copy: `chunk` may be a buffer its stream reuses.
      const rest = Buffer.from(data.subarray(at));
      this.pending.push(rest);
      this.pendingBytes = rest.byteLength;
    }
    return frames;
  }

  /** Bytes the incomplete frame needs in all (its header, then header and payload). */
  private needed(): number {
    const first = this.pending[0]!;
    if (first.byteLength < PTY_HOST_HEADER_BYTES) return PTY_HOST_HEADER_BYTES;
    const length = first.readUInt32BE(5);
    if (length > PTY_HOST_FRAME_MAX_BYTES) throw new PtyHostProtocolError(`frame of ${length} bytes is over the limit`);
    return PTY_HOST_HEADER_BYTES + length;
  }
}

/** A JSON payload, or null when it does not parse. */
export function jsonPayload<T>(payload: Buffer): T | null {
  try {
    return JSON.parse(payload.toString("utf8")) as T;
  } catch {
    return null;
  }
}
