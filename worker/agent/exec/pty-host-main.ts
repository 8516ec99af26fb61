/**
 * The PTY host: a small process the agent starts once (pty-host.ts) to fork its background
 * commands' PTYs, so that the fork happens in a process of a few tens of MB instead of the agent.
 * fork(2) copies the parent's page tables and leaves every page of it copy-on-write; in the agent
 * (100+ MB of heap and code, written by its GC all the time) that cost several ms per command and
 * slowed the agent after each one. Measured on this project's 2-core machine: `sh -c 'echo hi'` on
 * a PTY took 24 ms p50 from a 180 MB process and 4–7 ms through a small host like this one.
 *
 * It speaks pty-host-protocol.ts on its stdin and stdout and nothing else: SPAWN starts the given
 * launch command on a new PTY (node-pty, spawning with posix_spawn when the agent passes the helper
 * pty-spawn.ts loads as its argument), its output goes back as DATA and its end as EXIT; INPUT
 * is typed into it. A SPAWN with `pipes` starts it on pipes instead (seed 004's runs: stdout as
 * DATA, stderr as STDERR, in a session of its own). Each INPUT is answered with INPUT_RESULT: input
 * that would grow a PTY's write queue (what its program has not read yet) past
 * PTY_RUN_INPUT_QUEUE_MAX_BYTES, or all of them past PTY_HOST_INPUT_QUEUE_MAX_BYTES, is refused
 * whole instead of queued without limit. No command inherits the PTY masters of the others the
 * host runs: the spawn helper closes every descriptor above 2 in the child (pty-spawn.ts
 * spawnsWithoutLeaks); without it every spawn passes `guardLaunch` (launch.ts), since node-pty
 * opens masters without close-on-exec, so while one runs, the next is started through the
 * descriptor closer. It exits when its stdin ends (the agent stopped or died); the PTYs close
 * with it and their commands get SIGHUP (the agent kills the piped ones' groups). A malformed
 * frame ends it too.
 */
import { spawn as spawnChild } from "node:child_process";
import { Socket } from "node:net";
import { constants } from "node:os";
import * as pty from "node-pty";
import { guardLaunch, type LaunchCommand } from "../launch.ts";
import { ptyInputQueue, type PtyInputQueue } from "../pty-input.ts";
import { spawnOnPipes, spawnsWithoutLeaks, usePosixSpawn, type PipedChild } from "../pty-spawn.ts";
import { listenWholly } from "../pty-tail.ts";
import {
  encodeFrame,
  FrameReader,
  frameHeader,
  InputResultCode,
  jsonPayload,
  PIPE_DRAIN_GRACE_MS,
  PTY_HOST_INPUT_QUEUE_MAX_BYTES,
  PTY_RUN_INPUT_QUEUE_MAX_BYTES,
  PtyHostKind,
  type PtyHostFrame,
  type SpawnRequest,
} from "./pty-host-protocol.ts";

/** Runs open at once, PTYs and piped (the agent runs at most MAX_RUNNING_PROCESSES; this is the host's own guard). */
export const PTY_HOST_MAX_PTYS = 256;
/** Output waiting in the pipe to the agent before the PTYs are paused, in bytes. */
export const PTY_HOST_OUTPUT_BUFFER_BYTES = 1 << 20; // 1 MiB

/** Something the host reads a run's output from: a PTY, or one pipe of a piped run. */
interface Source {
  pause(): void;
  resume(): void;
}

/** A command on pipes: its process, what ends it, and whether its leader has exited. */
interface PipedRun {
  child: PipedChild;
  started: boolean;
  exit: { exitCode: number; signal: number } | null;
  /** DRAIN came: close the pipes PIPE_DRAIN_GRACE_MS after the leader's exit. */
  draining: boolean;
  drainTimer: NodeJS.Timeout | null;
}

/** Runs the host on this process's stdin and stdout; returns when it is set up. */
export function runPtyHost(): void {
  // Pipes, read and written asynchronously (process.stdout on a pipe writes synchronously on Linux).
  const input = new Socket({ fd: 0, readable: true, writable: false });
  const output = new Socket({ fd: 1, readable: false, writable: true });
  const ptys = new Map<number, pty.IPty>();
  /** The write queue of each PTY (null: node-pty changed and its queue cannot be read; see pty-input.ts). */
  const inputQueues = new Map<number, PtyInputQueue | null>();
  const piped = new Map<number, PipedRun>();
  /** Sources paused because the pipe to the agent is full, and those the agent paused (PAUSE). */
  const heldForPipe = new Set<Source>();
  const heldForAgent = new Set<Source>();
  const reader = new FrameReader();

  const sourcesOf = (id: number): Source[] => {
    const p = ptys.get(id);
    if (p) return [p];
    const run = piped.get(id);
    return run ? [run.child.stdout!, run.child.stderr!] : [];
  };
  const forget = (sources: Source[]): void => {
    for (const source of sources) {
      heldForPipe.delete(source);
      heldForAgent.delete(source);
    }
  };

  const send = (frame: Buffer): void => {
    output.write(frame);
    if (output.writableLength > PTY_HOST_OUTPUT_BUFFER_BYTES) {
      // The agent is behind: stop reading the commands until the pipe drains (bounds what waits here).
      for (const id of [...ptys.keys(), ...piped.keys()]) {
        for (const source of sourcesOf(id)) {
          if (!heldForPipe.has(source) && !heldForAgent.has(source)) {
            source.pause();
            heldForPipe.add(source);
          }
        }
      }
    }
  };
  // Past the buffer a write has returned false, so "drain" comes once the pipe has taken it all.
  output.on("drain", () => {
    for (const source of heldForPipe) source.resume();
    heldForPipe.clear();
  });
  output.on("error", () => process.exit(0));

  /**
   * The request's command as the host may start it now: as is when the spawn helper closes every
   * descriptor above 2 in the child, else through `guardLaunch` (which reads /proc/self/fdinfo
   * first: about 0.3 ms of every spawn).
   */
  const checkedLaunch = (request: SpawnRequest): LaunchCommand => {
    const command = { file: request.file, args: request.args, env: request.env };
    return spawnsWithoutLeaks() ? command : guardLaunch(command);
  };

  const refuse = (id: number, message: string): void => send(encodeFrame(PtyHostKind.FAILED, id, { message }));

  const spawn = (id: number, request: SpawnRequest | null): void => {
    if (!request || ptys.has(id) || piped.has(id) || ptys.size + piped.size >= PTY_HOST_MAX_PTYS) {
      refuse(id, request ? "too many runs, or a repeated id" : "malformed spawn request");
      return;
    }
    if (request.pipes) return spawnPiped(id, request);
    let proc: pty.IPty;
    try {
      const launch = checkedLaunch(request);
      proc = pty.spawn(launch.file, launch.args, { name: request.name, cols: request.cols, rows: request.rows, cwd: request.cwd, env: launch.env, encoding: null });
    } catch (error) {
      refuse(id, error instanceof Error ? error.message : String(error));
      return;
    }
    ptys.set(id, proc);
    inputQueues.set(id, ptyInputQueue(proc));
    send(encodeFrame(PtyHostKind.SPAWNED, id, { pid: proc.pid }));
    listenWholly(
      proc,
      (bytes) => send(Buffer.concat([frameHeader(PtyHostKind.DATA, id, bytes.byteLength), bytes])),
      ({ exitCode, signal }) => {
        ptys.delete(id);
        inputQueues.delete(id);
        forget([proc]);
        send(encodeFrame(PtyHostKind.EXIT, id, { exitCode, signal }));
      },
      // Background commands only come here: one that points its descriptors elsewhere keeps running (pty-tail.ts).
      { holdSlave: true },
    );
  };

  const spawnPiped = (id: number, request: SpawnRequest): void => {
    let child: PipedChild;
    try {
      const launch = checkedLaunch(request);
      // Its own session and group (pgid = pid), so a kill or a timeout reaches all it started.
      child =
        spawnOnPipes(launch.file, launch.args, launch.env, request.cwd) ??
        spawnChild(launch.file, launch.args, { cwd: request.cwd, env: launch.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
      refuse(id, error instanceof Error ? error.message : String(error));
      return;
    }
    const run: PipedRun = { child, started: false, exit: null, draining: false, drainTimer: null };
    piped.set(id, run);
    const sources = [child.stdout!, child.stderr!];
    child.stdout!.on("data", (bytes: Buffer) => send(Buffer.concat([frameHeader(PtyHostKind.DATA, id, bytes.byteLength), bytes])));
    child.stderr!.on("data", (bytes: Buffer) => send(Buffer.concat([frameHeader(PtyHostKind.STDERR, id, bytes.byteLength), bytes])));
    for (const stream of sources) stream.on("error", () => {});
    child.once("spawn", () => {
      run.started = true;
      send(encodeFrame(PtyHostKind.SPAWNED, id, { pid: child.pid }));
    });
    child.on("error", (error: Error) => {
      if (run.started) return; // a failed kill later: nothing to report
      piped.delete(id);
      forget(sources);
      refuse(id, error.message);
    });
    child.on("exit", (code: number | null, signal: NodeJS.Signals | null) => {
      run.exit = { exitCode: code ?? 0, signal: signal ? (constants.signals[signal] ?? 0) : 0 };
      if (run.draining) closeSoon(run);
    });
    // Both pipes closed and the leader exited: everything it wrote has been sent.
    child.on("close", () => {
      if (!run.started) return;
      piped.delete(id);
      forget(sources);
      if (run.drainTimer) clearTimeout(run.drainTimer);
      send(encodeFrame(PtyHostKind.EXIT, id, run.exit ?? { exitCode: 0, signal: 0 }));
    });
  };

  /** A killed run whose leader exited: what escaped its group may hold the pipes, so they close after the grace. */
  const closeSoon = (run: PipedRun): void => {
    if (run.drainTimer) return;
    run.drainTimer = setTimeout(() => {
      run.child.stdout?.destroy();
      run.child.stderr?.destroy();
    }, PIPE_DRAIN_GRACE_MS);
  };

  /** Writes INPUT to run `id`'s PTY unless that would pass a queue limit; says which. */
  const writeInput = (id: number, payload: Buffer): InputResultCode => {
    const p = ptys.get(id);
    if (!p) return InputResultCode.CLOSED;
    const queued = inputQueues.get(id)?.pending() ?? 0;
    let queuedByAll = 0;
    for (const queue of inputQueues.values()) queuedByAll += queue?.pending() ?? 0;
    if (queued + payload.byteLength > PTY_RUN_INPUT_QUEUE_MAX_BYTES || queuedByAll + payload.byteLength > PTY_HOST_INPUT_QUEUE_MAX_BYTES) {
      return InputResultCode.FULL;
    }
    try {
      // A copy: the payload may be a view of a buffer the pipe reuses.
      p.write(Buffer.from(payload));
      return InputResultCode.WRITTEN;
    } catch {
      return InputResultCode.CLOSED;
    }
  };

  const handle = (frame: PtyHostFrame): void => {
    switch (frame.kind) {
      case PtyHostKind.SPAWN:
        spawn(frame.id, jsonPayload<SpawnRequest>(frame.payload));
        return;
      case PtyHostKind.INPUT:
        send(encodeFrame(PtyHostKind.INPUT_RESULT, frame.id, Uint8Array.of(writeInput(frame.id, frame.payload))));
        return;
      case PtyHostKind.PAUSE:
        for (const source of sourcesOf(frame.id)) {
          heldForAgent.add(source);
          if (!heldForPipe.delete(source)) source.pause();
        }
        return;
      case PtyHostKind.RESUME:
        for (const source of sourcesOf(frame.id)) {
          if (heldForAgent.delete(source) && !heldForPipe.has(source)) source.resume();
        }
        return;
      case PtyHostKind.DRAIN: {
        const run = piped.get(frame.id);
        if (run) {
          run.draining = true;
          if (run.exit) closeSoon(run);
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
  // Only the agent ends the host (above). A SIGTERM or SIGINT to the agent's whole process group (a
  // supervisor stopping it, Ctrl-C where it runs) reaches the host too; ending on it would end its
  // commands, and the agent would report those ends as their exits before its own handler closes
  // the links, where a client must instead learn that the agent went away.
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => {});
  input.on("error", () => process.exit(0));
  // The helper the agent named, if any: PTYs spawned with posix_spawn instead of fork (pty-spawn.ts).
  const addon = process.argv[2];
  const spawning = addon ? usePosixSpawn(addon) : { mode: "fork" as const };
  // Chosen once, before the first spawn (a self-test that starts a shell).
  guardLaunch({ file: "/bin/true", args: [], env: {} });
  send(encodeFrame(PtyHostKind.READY, 0, spawning));
}

runPtyHost();
