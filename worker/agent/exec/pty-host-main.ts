/**
 * The PTY host: a small process the agent starts once (pty-host.ts) to fork its background
 * commands' PTYs, so that the fork happens in a process of a few tens of MB instead of the agent.
 * fork(2) copies the parent's page tables and leaves every page of it copy-on-write; in the agent
 * (100+ MB of heap and code, written by its GC all the time) that cost several ms per command and
 * slowed the agent after each one. Measured on this project's 2-core machine: `sh -c 'echo hi'` on
 * a PTY took 24 ms p50 from a 180 MB process and 4–7 ms through a small host like this one.
 *
 * It speaks pty-host-protocol.ts on its stdin and stdout and nothing else: SPAWN starts the given
 * launch command on a new PTY (node-pty), its output goes back as DATA and its end as EXIT; INPUT
 * is typed into it. Every spawn passes `guardLaunch` (launch.ts): the host holds the PTY masters
 * of the commands it runs (node-pty opens them without close-on-exec), so while one runs, the
 * next is started through the descriptor closer and inherits none of them. It exits when its
 * stdin ends (the agent stopped or died); the PTYs close with it and their commands get SIGHUP.
 * A malformed frame ends it too.
 */
import { Socket } from "node:net";
import * as pty from "node-pty";
import { guardLaunch } from "../launch.ts";
import { listenWholly } from "../pty-tail.ts";
import { encodeFrame, FrameReader, frameHeader, jsonPayload, PtyHostKind, type PtyHostFrame, type SpawnRequest } from "./pty-host-protocol.ts";

/** PTYs open at once (the agent runs at most MAX_RUNNING_PROCESSES; this is the host's own guard). */
export const PTY_HOST_MAX_PTYS = 256;
/** Output waiting in the pipe to the agent before the PTYs are paused, in bytes. */
export const PTY_HOST_OUTPUT_BUFFER_BYTES = 1 << 20; // 1 MiB

/** Runs the host on this process's stdin and stdout; returns when it is set up. */
export function runPtyHost(): void {
  // Pipes, read and written asynchronously (process.stdout on a pipe writes synchronously on Linux).
  const input = new Socket({ fd: 0, readable: true, writable: false });
  const output = new Socket({ fd: 1, readable: false, writable: true });
  const ptys = new Map<number, pty.IPty>();
  const paused = new Set<pty.IPty>();
  const reader = new FrameReader();

  const send = (frame: Buffer): void => {
    output.write(frame);
    if (output.writableLength > PTY_HOST_OUTPUT_BUFFER_BYTES) {
      // The agent is behind: stop reading the PTYs until the pipe drains (bounds what waits here).
      for (const p of ptys.values()) {
        if (!paused.has(p)) {
          p.pause();
          paused.add(p);
        }
      }
    }
  };
  // Past the buffer a write has returned false, so "drain" comes once the pipe has taken it all.
  output.on("drain", () => {
    for (const p of paused) p.resume();
    paused.clear();
  });
  output.on("error", () => process.exit(0));

  const spawn = (id: number, request: SpawnRequest | null): void => {
    if (!request || ptys.has(id) || ptys.size >= PTY_HOST_MAX_PTYS) {
      send(encodeFrame(PtyHostKind.FAILED, id, { message: request ? "too many PTYs, or a repeated id" : "malformed spawn request" }));
      return;
    }
    let proc: pty.IPty;
    try {
      const launch = guardLaunch({ file: request.file, args: request.args, env: request.env });
      proc = pty.spawn(launch.file, launch.args, { name: request.name, cols: request.cols, rows: request.rows, cwd: request.cwd, env: launch.env, encoding: null });
    } catch (error) {
      send(encodeFrame(PtyHostKind.FAILED, id, { message: error instanceof Error ? error.message : String(error) }));
      return;
    }
    ptys.set(id, proc);
    send(encodeFrame(PtyHostKind.SPAWNED, id, { pid: proc.pid }));
    listenWholly(
      proc,
      (bytes) => send(Buffer.concat([frameHeader(PtyHostKind.DATA, id, bytes.byteLength), bytes])),
      ({ exitCode, signal }) => {
        ptys.delete(id);
        paused.delete(proc);
        send(encodeFrame(PtyHostKind.EXIT, id, { exitCode, signal }));
      },
    );
  };

  const handle = (frame: PtyHostFrame): void => {
    switch (frame.kind) {
      case PtyHostKind.SPAWN:
        spawn(frame.id, jsonPayload<SpawnRequest>(frame.payload));
        return;
      case PtyHostKind.INPUT: {
        const p = ptys.get(frame.id);
        if (p) {
          try {
            // A copy: the payload may be a view of a buffer the pipe reuses.
            p.write(Buffer.from(frame.payload));
          } catch {
            /* the PTY closed */
          }
        }
        return;
      }
      default:
        throw new Error(`unexpected frame kind ${frame.kind}`);
    }
  };

  input.on("data", (chunk: Buffer) => {
    try {
      for (const frame of reader.push(chunk)) handle(frame);
    } catch (error) {
      process.stderr.write(`edgetty pty host: ${error instanceof Error ? error.message : String(error)}; exiting\n`);
      process.exit(1);
    }
  });
  // The agent went away: so do the PTYs (their commands get SIGHUP).
  input.on("end", () => process.exit(0));
  input.on("error", () => process.exit(0));
  // Chosen once, before the first spawn (a self-test that starts a shell).
  guardLaunch({ file: "/bin/true", args: [], env: {} });
  send(encodeFrame(PtyHostKind.READY, 0));
}

runPtyHost();
