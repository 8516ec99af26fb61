/**
 * A PTY's output, all of it, before its exit.
 *
 * node-pty 1.x on Unix reads the PTY master through a `tty.ReadStream` and reports the exit once
 * that stream has closed, or, when it has not closed 200 ms after the process was reaped, by
 * destroying it. Destroying it discards what the kernel still held for the master and what the
 * stream had buffered while paused (its `pause()` is the stream's: Node goes on reading up to the
 * stream's high-water mark and keeps that), and an EIO from the master while paused destroys the
 * stream's buffer the same way. A command's last line could so be missing while its exit was
 * reported (node-pty issues #72, #85, #726 describe the same on other hosts).
 *
 * {@link listenWholly} hands everything over first: when the stream is about to be destroyed
 * (by node-pty's timer, by an EIO, or by a kill) it gives `onData` what the stream holds and then
 * reads the master until the kernel has no more (EAGAIN, or EIO once the slave side is closed;
 * Linux hands over pending output before that EIO). The exit, which node-pty reports only after
 * the stream closed, so always follows the last byte.
 *
 * This reaches into node-pty's own fields (`_socket`, `_fd`): node-pty has no API for it, and a
 * test (test/worker/pty-tail.test.ts) fails when an upgrade renames them, instead of output
 * silently going missing again.
 */
import { closeSync, constants, openSync, readSync } from "node:fs";
import type { Readable } from "node:stream";
import type { IPty } from "node-pty";

/** Bytes read from the master per call while draining it (the kernel's PTY buffer is smaller). */
const DRAIN_CHUNK_BYTES = 64 * 1024; // 64 KiB
/** Most read from the master at its end, in bytes: a program still writing cannot hold the drain. */
export const PTY_DRAIN_MAX_BYTES = 1 << 20; // 1 MiB

/** The fields of node-pty 1.x's UnixTerminal this module uses. */
interface UnixTerminalFields {
  _socket?: Readable & { destroy(error?: Error): unknown };
  _fd?: number;
  /** The slave's path (`/dev/pts/N`). */
  _pty?: string;
  /** Set by node-pty when it has reaped the process and the master is still open (its `onexit`). */
  _boundClose?: boolean;
}

/** {@link listenWholly}'s options. */
export interface ListenOptions {
  /**
   * Keep the PTY's slave side open in this process until the process has exited: a command that
   * points all its descriptors elsewhere (`exec </dev/null >log 2>&1; …`) closes the last slave
   * descriptor, the master then reads EIO and node-pty closes it, and the kernel hangs the
   * terminal up: SIGHUP kills the command mid-way, reported as done (exit -1). Held, the master
   * reads nothing until the exit, as a terminal whose program went quiet.
   */
  holdSlave?: boolean;
}

/**
 * True when `proc` has the node-pty fields that tell when it reaped its process (`_boundClose`)
 * and name its slave (`_pty`): without them a held slave would be let go only by node-pty's 200 ms
 * fallback timer after each exit, so it is not held (see {@link ListenOptions.holdSlave}).
 */
export function slaveHoldable(proc: IPty): boolean {
  const fields = proc as unknown as UnixTerminalFields;
  return typeof fields._boundClose === "boolean" && typeof fields._pty === "string";
}

/** True when `proc` has the node-pty fields {@link listenWholly} drains through. */
export function drainable(proc: IPty): boolean {
  const fields = proc as unknown as UnixTerminalFields;
  return typeof fields._fd === "number" && typeof fields._socket?.destroy === "function" && typeof fields._socket.read === "function";
}

/**
 * Listens to a node-pty PTY spawned with `encoding: null`: `onData` gets every chunk of output,
 * including what is still buffered or in the kernel when the stream ends, and `onExit` comes after
 * the last one. Call once per PTY, right after spawning it. On a node-pty without the fields it
 * drains through (see {@link drainable}) it listens as node-pty alone would.
 */
export function listenWholly(
  proc: IPty,
  onData: (data: Buffer) => void,
  onExit: (exit: { exitCode: number; signal: number }) => void,
  options: ListenOptions = {},
): void {
  proc.onData((data) => onData(data as unknown as Buffer));
  proc.onExit(({ exitCode, signal }) => onExit({ exitCode, signal: signal ?? 0 }));
  if (!drainable(proc)) return;
  const fields = proc as unknown as UnixTerminalFields;
  const { _socket: stream, _fd: fd } = fields as Required<UnixTerminalFields>;
  const release = options.holdSlave && slaveHoldable(proc) ? holdSlave(fields) : () => {};
  const destroy = stream.destroy.bind(stream);
  let drained = false;
  stream.destroy = (error?: Error) => {
    release();
    if (!drained) {
      drained = true;
      drain(stream, fd, onData);
    }
    return destroy(error);
  };
}

/**
 * Opens the slave of `fields`' PTY (not as this process's controlling terminal; close-on-exec, as
 * Node opens every file) and returns what closes it. It is closed the moment node-pty has reaped
 * the process (it sets `_boundClose` then, and would otherwise wait 200 ms for the EIO that only
 * the last slave descriptor's close brings), or when the stream is destroyed (a kill). Call right
 * after spawning, before the loop runs: the master is not read before then, so no EIO was seen.
 * A slave that cannot be opened is not held (as before).
 */
function holdSlave(fields: UnixTerminalFields): () => void {
  let slave: number | null = null;
  try {
    slave = openSync(fields._pty!, constants.O_RDWR | constants.O_NOCTTY);
  } catch {
    slave = null;
  }
  if (slave === null) return () => {};
  const release = () => {
    if (slave === null) return;
    try {
      closeSync(slave);
    } catch {
      /* already closed */
    }
    slave = null;
  };
  let bound = fields._boundClose;
  Object.defineProperty(fields, "_boundClose", {
    configurable: true,
    enumerable: true,
    get: () => bound,
    set: (value: boolean | undefined) => {
      bound = value;
      if (value) release();
    },
  });
  return release;
}

/**
 * Hands over what `stream` buffered (`read()` emits each chunk as a 'data' event, which node-pty
 * forwards to `onData`), then what the master `fd` still gives, straight to `onData`.
 */
function drain(stream: Readable, fd: number, onData: (data: Buffer) => void): void {
  while (stream.read() !== null);
  const buffer = Buffer.allocUnsafe(DRAIN_CHUNK_BYTES);
  for (let total = 0; total < PTY_DRAIN_MAX_BYTES; ) {
    let n: number;
    try {
      n = readSync(fd, buffer, 0, buffer.length, null);
    } catch {
      return; // EAGAIN: nothing more now; EIO: the slave side is closed and all is read; EBADF: closed
    }
    if (n <= 0) return;
    onData(Buffer.from(buffer.subarray(0, n)));
    total += n;
  }
}
