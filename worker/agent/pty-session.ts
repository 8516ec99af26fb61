/**
 * One PTY on this host and its data link to the edge's TerminalDO.
 *
 * Output path (hot): PTY chunk → copied into the output log's open frame (offset-addressed) →
 * frame sealed → data link; sealed frames are kept until acknowledged. The first chunk after a
 * quiet spell goes out at once (keystroke echo); chunks in a burst are coalesced into frames of up
 * to FRAME_PAYLOAD_MAX_BYTES. The log also keeps the newest output for raw downloads; the screen
 * model gets a copy of every sealed frame's payload and parses it in the agent's screen thread,
 * off this path (screen/screen-thread.ts). When
 * too much output is unacknowledged, or not yet parsed, the PTY is paused, so a flood never grows
 * memory; the program simply blocks on its writes, as over ssh.
 */
import * as pty from "node-pty";
import { encodeServerFrame, type ErrorInfo, type ExitInfo, type TerminalSize } from "../../shared/links/client.ts";
import { decodeEdgeFrame, encodeAgentFrame, encodeSnapshot, OUTPUT_FRAME_OVERHEAD } from "../../shared/links/data.ts";
import type { LiveSession, SessionMeta } from "../../shared/links/session.ts";
import type { CommandRecord } from "../../shared/history.ts";
import { HistoryOutbox } from "./history-outbox.ts";
import { InputGate } from "./input-gate.ts";
import { InputBacklog, ptyInputQueue, type PtyInputQueue } from "./pty-input.ts";
import { Link } from "./link.ts";
import { processStartTime } from "./launch.ts";
import { KILL_GRACE_MS, signalGroup, TerminalReaper } from "./process-reaper.ts";
import { PtyOutputLog, UNACKED_MAX_BYTES, UNACKED_RESUME_BYTES } from "./pty-output-log.ts";
import { listenWholly } from "./pty-tail.ts";
import type { Terminal } from "@xterm/headless";
import { PARSE_BACKLOG_MAX_BYTES, PARSE_BACKLOG_RESUME_BYTES } from "./screen/screen-state.ts";
import { ScreenModel } from "./screen/screen-thread.ts";
import { launchAs, type SpawnPlan } from "./spawn.ts";

/** Output within this long of a bulk frame counts as a burst, in milliseconds… */
export const BURST_WINDOW_MS = 2;
/** …where a bulk frame is at least this big, in bytes (a keystroke's echo never is). */
export const BULK_FRAME_BYTES = 1 << 10; // 1 KiB
/** Longest a chunk waits in a burst before its frame is sent, in milliseconds. */
export const BURST_FLUSH_MS = 4;

/**
 * Shortest time between two resizes of the PTY, in milliseconds. Resizes asked for within it are
 * merged: the last one is applied when it ends. Each resize reflows the screen model and may send a
 * SIGWINCH, so a client sending thousands a second (a window dragged, or a hostile writer) must
 * not make the agent do each one.
 */
export const RESIZE_INTERVAL_MS = 20;

/**
 * Resizes kept until the edge has had them at their place in the output stream (while output is
 * held for a repaint, or the link is down), oldest first; past this many the oldest are folded
 * into the next (its output is then announced at the older size's successor a little early).
 */
export const SIZE_MARKS_MAX = 64;

/** A resize of the PTY, after the output before `offset` (a frame boundary) and before the rest. */
interface SizeMark {
  offset: number;
  /** The size before it, what the output before `offset` was written at. */
  from: TerminalSize;
  size: TerminalSize;
}

export interface PtySessionOptions {
  meta: SessionMeta;
  plan: SpawnPlan;
  /** The program and arguments to run (the shell, possibly with init injected). */
  file: string;
  args: string[];
  env: Record<string, string>;
  size: TerminalSize;
  /** The tag every process of this terminal carries (launch.ts processTag). */
  tag: string;
  /** Text typed into the shell once it starts (the `cmd` option). */
  initialInput?: string;
  /** Data link URL and agent token. */
  linkUrl: string;
  token: string;
  onExit(exit: ExitInfo): void;
  /** Extra consumers of raw output (title scanner, command tracker…), called per chunk. */
  onOutput?(chunk: Buffer): void;
  /** Why the process ended, when that was a failure (kinds/launch.ts): sent with the EXIT. */
  describeExit?(exit: ExitInfo): ErrorInfo | undefined;
  log(line: string): void;
}

export class PtySession {
  readonly meta: SessionMeta;
  private readonly screen: ScreenModel;
  private readonly proc: pty.IPty;
  private readonly output: PtyOutputLog;
  /** Command records until the edge has stored them. */
  private readonly history = new HistoryOutbox();
  private readonly link: Link;
  private size: TerminalSize;
  title: string | undefined;
  /** Offset up to which output has been handed to the link. */
  private sent = 0;
  /** Resizes the edge has not had yet, in stream order (at most SIZE_MARKS_MAX; see send). */
  private sizeMarks: SizeMark[] = [];
  /** Where the output log's sealed output ended at the last flush, and how much that flush sealed. */
  private flushedEnd = 0;
  private lastFlushBytes = 0;
  /** False between a (re)connect and the edge's RESUME: output waits in the log. */
  private streaming = false;
  /** Repaints being made: while non-zero, output waits in the log (see sendSnapshot)… */
  private holdOutput = 0;
  /** …and so does the EXIT, if the shell ended meanwhile. */
  private exitHeld = false;
  private flushTimer: NodeJS.Timeout | null = null;
  /** Running while a resize was applied less than RESIZE_INTERVAL_MS ago; `wantedSize` waits for it. */
  private resizeTimer: NodeJS.Timeout | null = null;
  private wantedSize: TerminalSize | null = null;
  private lastFlushAt = 0;
  private paused = false;
  private exited: ExitInfo | null = null;
  private readonly linkOpened: Promise<void>;
  /** Typeahead held until the shell is ready (input-gate.ts). */
  private readonly gate: InputGate;
  /** node-pty's write queue (pty-input.ts); null on a node-pty without it (input then unbounded). */
  private readonly inputQueue: PtyInputQueue | null;
  /** Refuses input the program does not read, and acknowledges input to the edge (pty-input.ts). */
  private readonly inputBacklog: InputBacklog;
  /** Ends the terminal's processes, once (DELETE, or the shell exited; process-reaper.ts). */
  private readonly reaper: TerminalReaper;
  /** True once kill() was called: the terminal is going away, whatever its shell does meanwhile. */
  killed = false;
  /** Resolves when the shell has exited. */
  readonly exitedPromise: Promise<void>;
  private resolveExited!: () => void;

  constructor(private readonly options: PtySessionOptions) {
    this.size = options.size;
    this.exitedPromise = new Promise((resolve) => (this.resolveExited = resolve));
    // The screen model runs in the agent's screen thread (screen-thread.ts); it is handed a copy
    // of every sealed frame's payload, so the log need not keep frames for it.
    this.screen = new ScreenModel(options.size.cols, options.size.rows, () => this.maybeResume(), (line) => options.log(`terminal ${options.meta.terminal_id}: ${line}`));
    this.output = new PtyOutputLog((frame) => this.screen.push(frame.payload));
    const { plan } = options;
    const launch = launchAs(plan, options.file, options.args, options.env, options.tag);
    this.proc = pty.spawn(launch.file, launch.args, {
      name: "xterm-256color",
      cols: options.size.cols,
      rows: options.size.rows,
      cwd: plan.cwd,
      env: launch.env,
      encoding: null,
    });
    // Read at once: the pid is ours until the shell is reaped, which node-pty does after onExit.
    // The shell as a session leader: its session id is its pid (forkpty calls setsid).
    const leader = { pid: this.proc.pid, start: processStartTime(this.proc.pid) ?? 0 };
    this.reaper = new TerminalReaper(options.tag, leader, (line) => options.log(`terminal ${this.meta.terminal_id}: ${line}`));
    this.meta = { ...options.meta, pid: this.proc.pid };
    listenWholly(this.proc, (data) => this.onData(data), ({ exitCode, signal }) => this.onProcessExit({ exit_code: exitCode, signal }));
    this.inputQueue = ptyInputQueue(this.proc);
    if (!this.inputQueue) options.log(`terminal ${this.meta.terminal_id}: node-pty has no write queue this agent knows; input is not bounded`);
    this.inputBacklog = new InputBacklog(
      () => this.inputQueue?.pending() ?? 0,
      (refused, bytes) => this.link.send(encodeAgentFrame({ t: "input-ack", refused, bytes })),
    );
    this.gate = new InputGate(
      (data) => this.proc.write(data),
      () => this.exited !== null,
      (line) => options.log(`terminal ${this.meta.terminal_id}: ${line}`),
    );
    if (options.initialInput) this.write(Buffer.from(options.initialInput));

    let opened!: () => void;
    this.linkOpened = new Promise((resolve) => (opened = resolve));
    this.link = new Link({
      url: options.linkUrl,
      token: options.token,
      finalCodes: [1000],
      log: (line) => options.log(`terminal ${this.meta.terminal_id}: ${line}`),
      onOpen: (ws) => {
        this.streaming = false;
        this.history.unsendAll();
        this.inputBacklog.reset();
        ws.send(
          encodeAgentFrame({
            t: "hello",
            hello: { end: this.output.end, oldest: this.output.acked, size: this.size, meta: this.meta, input_acks: true },
          }),
        );
      },
      onMessage: (data) => this.onEdgeFrame(data, opened),
      onClose: () => {
        this.streaming = false;
      },
    });
    this.link.start();
  }

  /** Resolves once the edge has answered the data link's HELLO. */
  ready(): Promise<void> {
    return this.linkOpened;
  }

  get pid(): number {
    return this.proc.pid;
  }

  live(cwd: string | undefined): LiveSession {
    return {
      ...this.meta,
      cwd: cwd ?? this.meta.cwd,
      cols: this.size.cols,
      rows: this.size.rows,
      ...(this.title ? { title: this.title } : {}),
    };
  }

  // --- input ------------------------------------------------------------------------------------

  /** Writes input to the PTY, or holds it until the shell is ready for it. */
  write(data: Buffer): void {
    if (this.exited || this.killed) return;
    this.gate.write(data);
  }

  /** The shell is ready for input (a prompt marker): release what was typed ahead. */
  shellReady(): void {
    this.gate.open();
  }

  // --- output -----------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    this.gate.onOutput();
    this.output.append(chunk);
    this.options.onOutput?.(chunk);
    if (!this.paused && (this.output.unacked >= UNACKED_MAX_BYTES || this.screen.backlog > PARSE_BACKLOG_MAX_BYTES)) {
      this.paused = true;
      this.proc.pause();
    }
    this.send(); // frames that filled up
    if (this.flushTimer || this.output.end === this.output.sealedEnd) return;
    // Small output (a keystroke's echo) goes out at once; inside a burst of bulk output, coalesce.
    if (this.lastFlushBytes >= BULK_FRAME_BYTES && performance.now() - this.lastFlushAt < BURST_WINDOW_MS) {
      this.flushTimer = setTimeout(() => this.flush(), BURST_FLUSH_MS);
    } else {
      this.flush();
    }
  }

  /** Resumes a paused PTY once both the edge and the screen model have caught up. */
  private maybeResume(): void {
    if (this.paused && !this.exited && this.output.unacked < UNACKED_RESUME_BYTES && this.screen.backlog < PARSE_BACKLOG_RESUME_BYTES) {
      this.paused = false;
      this.proc.resume();
    }
  }

  /** Seals the output produced so far and sends what the link has not had. */
  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    this.output.seal();
    this.lastFlushBytes = this.output.sealedEnd - this.flushedEnd;
    this.flushedEnd = this.output.sealedEnd;
    this.lastFlushAt = performance.now();
    this.send();
  }

  /** Hands sealed frames the link has not had to it (once the edge has said where to resume). */
  private send(): void {
    if (!this.streaming || this.holdOutput > 0) return;
    if (this.sent < this.output.sealedEnd) {
      // SIZE frames go between the output written before each resize and the output after it.
      let at = this.sent;
      for (const frame of this.output.framesFrom(this.sent)) {
        this.sendSizesUpTo(at);
        this.link.send(frame);
        at += frame.byteLength - OUTPUT_FRAME_OVERHEAD;
      }
      this.sent = this.output.sealedEnd;
    }
    this.sendSizesUpTo(this.sent);
  }

  /** Sends the SIZE of each kept resize at or before `offset`; one the link refuses stays for its RESUME. */
  private sendSizesUpTo(offset: number): void {
    while (this.sizeMarks.length > 0 && this.sizeMarks[0]!.offset <= offset) {
      if (!this.link.send(encodeAgentFrame({ t: "size", size: this.sizeMarks[0]!.size }))) return;
      this.sizeMarks.shift();
    }
  }

  /** The newest raw output, for `/raw?format=download`, up to the last byte the PTY printed. */
  readRaw(lines?: number): Uint8Array {
    this.flush();
    return this.output.tail(lines);
  }

  /**
   * Runs `use` on a copy of the screen made on this thread, reflecting every byte the PTY printed
   * so far, with `scrollback` lines of scrollback (default: all the model keeps); the copy is
   * disposed once `use` is done.
   */
  async withScreen<T>(use: (term: Terminal) => T | Promise<T>, scrollback?: number): Promise<T> {
    this.flush();
    const term = await this.screen.screen(this.size.cols, this.size.rows, scrollback);
    try {
      return await use(term);
    } finally {
      term.dispose();
    }
  }

  // --- frames from the edge ---------------------------------------------------------------------

  private onEdgeFrame(data: Buffer, opened: () => void): void {
    let f;
    try {
      f = decodeEdgeFrame(data);
    } catch (error) {
      this.options.log(`terminal ${this.meta.terminal_id}: bad frame from edge: ${(error as Error).message}`);
      return;
    }
    switch (f.t) {
      case "input":
        // A program that does not read its input gets no more of it (refused, and said so).
        if (this.inputBacklog.offer(f.data.byteLength)) this.write(Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength));
        return;
      case "resize":
        this.resize(f.size);
        return;
      case "ack":
        this.output.ack(f.offset);
        this.history.confirm(f.offset);
        this.maybeResume();
        return;
      case "resume": {
        this.output.ack(f.offset);
        this.sent = Math.max(f.offset, this.output.acked);
        this.streaming = true;
        // HELLO told the edge the size now; output it will be resent from before a resize it has
        // not had was written at the size before: say so first (send() announces the resize after).
        const next = this.sizeMarks.find((m) => m.offset > this.sent);
        const last = this.sizeMarks.findLast((m) => m.offset <= this.sent);
        this.sizeMarks = this.sizeMarks.filter((m) => m.offset > this.sent);
        const atResume = last?.size ?? next?.from;
        if (atResume && (atResume.cols !== this.size.cols || atResume.rows !== this.size.rows)) this.link.send(encodeAgentFrame({ t: "size", size: atResume }));
        this.sendHistory();
        this.flush();
        if (this.exited) this.sendExit();
        opened();
        return;
      }
      case "snapshot-request":
        void this.sendSnapshot(f.id);
        return;
    }
  }

  /**
   * Answers a SNAPSHOT_REQUEST with a repaint of exactly the output sent so far. Output is held
   * back (kept in the log, the PTY still read) from the moment the repaint's offset is fixed until
   * the repaint is sent: the edge then has nothing to replay to the joiners after it, where
   * otherwise each joiner of a flood would be sent everything printed while the repaint was made
   * (measured: megabytes per joiner, the join storm's main cost). The wait for the repaints'
   * time share comes first, with output flowing.
   */
  private async sendSnapshot(id: number): Promise<void> {
    await this.screen.repaintSlot();
    this.flush();
    this.holdOutput++;
    try {
      // Snapshots asked for together share one serialization, all at this offset.
      const { bytes, offset } = await this.screen.snapshot();
      this.link.send(encodeSnapshot(id, offset, bytes));
    } finally {
      this.holdOutput--;
      this.send();
      if (this.exitHeld && this.holdOutput === 0) {
        this.exitHeld = false;
        this.sendExit();
      }
    }
  }

  /**
   * Resizes the PTY and the screen model, and tells the edge (SIZE) at this point of the output
   * stream: after the output read so far, which was written at the old size (sealed here, so the
   * model and the edge take it first), before what follows. The SIZE waits, in order, while output
   * is held for a repaint or the link is down (docs/protocol.md: read-only viewers follow it).
   */
  /**
   * Resizes the PTY and the screen model, at most once per RESIZE_INTERVAL_MS: a resize asked for
   * sooner waits for the interval's end, and only the newest waiting one is applied.
   */
  resize(size: TerminalSize): void {
    if (this.exited) return;
    this.wantedSize = size;
    if (this.resizeTimer === null) this.applyWantedSize();
  }

  private applyWantedSize(): void {
    const size = this.wantedSize;
    this.wantedSize = null;
    this.resizeTimer = null;
    if (size === null || this.exited) return;
    this.resizeTimer = setTimeout(() => this.applyWantedSize(), RESIZE_INTERVAL_MS);
    if (size.cols === this.size.cols && size.rows === this.size.rows) return;
    this.flush();
    this.sizeMarks.push({ offset: this.output.sealedEnd, from: this.size, size });
    if (this.sizeMarks.length > SIZE_MARKS_MAX) {
      const [dropped, next] = this.sizeMarks.splice(0, 2);
      this.sizeMarks.unshift({ ...next!, from: dropped!.from });
    }
    this.size = size;
    this.proc.resize(size.cols, size.rows);
    this.screen.resize(size.cols, size.rows);
    this.send();
  }

  /** A command record for the edge's history (sent now, or after the link's next RESUME). */
  record(record: CommandRecord): void {
    this.history.push(record);
    this.sendHistory();
  }

  private sendHistory(): void {
    if (!this.streaming) return;
    for (const record of this.history.take(this.sent)) this.link.send(encodeAgentFrame({ t: "history", record }));
  }

  setTitle(title: string): void {
    if (title === this.title) return;
    this.title = title;
    this.link.send(encodeAgentFrame({ t: "title", frame: encodeServerFrame({ t: "title", title }) }));
  }

  // --- ending -----------------------------------------------------------------------------------

  private onProcessExit(exit: ExitInfo): void {
    const error = this.options.describeExit?.(exit);
    if (error) exit = { ...exit, error };
    this.exited = exit;
    this.resolveExited();
    this.gate.dispose();
    this.inputQueue?.drop();
    this.flush();
    this.sendExit();
    this.options.onExit(exit);
    // Whatever the shell left running (background jobs, nohup) ends with the terminal.
    void this.reaper.endAll();
  }

  private sendExit(): void {
    // Never ahead of output held back for a repaint: sendSnapshot sends it, then the EXIT.
    if (this.holdOutput > 0) {
      this.exitHeld = true;
      return;
    }
    if (this.exited && this.streaming && this.link.send(encodeAgentFrame({ t: "exit", exit: this.exited }))) {
      this.dispose();
    }
  }

  /**
   * Ends the terminal: hangs up the shell's process group and every other process of the
   * terminal, then SIGKILLs whatever is left after KILL_GRACE_MS (process-reaper.ts). Resolves once that is done.
   */
  kill(): Promise<void> {
    this.killed = true;
    this.inputQueue?.drop(); // input nobody will read; node-pty would retry it into a closed PTY
    if (!this.exited) {
      signalGroup(this.proc.pid, "SIGHUP");
      // The shell's own group, also where /proc cannot be scanned (the scan covers the rest).
      setTimeout(() => {
        if (!this.exited) signalGroup(this.proc.pid, "SIGKILL");
      }, KILL_GRACE_MS).unref();
    }
    return this.reaper.endAll();
  }

  /**
   * Hangs up the shell's process group only, and leaves ending the rest to the caller (the agent
   * stopping ends all its processes with one scan instead of one per terminal).
   */
  hangUpForStop(): void {
    this.reaper.leaveToCaller();
    if (!this.exited) signalGroup(this.proc.pid, "SIGHUP");
  }

  /** Drops the data link as a network failure would (tests, diagnostics). */
  dropLink(): void {
    this.link.drop();
  }

  dispose(): void {
    this.gate.dispose();
    this.inputBacklog.flush();
    this.inputBacklog.dispose();
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.resizeTimer) clearTimeout(this.resizeTimer);
    // Let the EXIT frame drain before the link closes.
    setTimeout(() => this.link.stop(1000, "session ended"), 50).unref();
    this.screen.dispose();
  }
}
