/**
 * One PTY on this host and its data link to the edge's TerminalDO.
 *
 * Output path (hot): PTY chunk → copied into the output log's open frame (offset-addressed) →
 * frame sealed → data link; sealed frames are kept until acknowledged. The first chunk after a
 * quiet spell goes out at once (keystroke echo); chunks in a burst are coalesced into frames of up
 * to FRAME_PAYLOAD_MAX_BYTES. The log also keeps the newest output for raw downloads; the screen
 * model queues sealed frames' payloads and parses them off this path (see ScreenState). When too
 * much output is unacknowledged the PTY is paused, so a flood never grows memory; the program
 * simply blocks on its writes, as over ssh.
 */
import * as pty from "node-pty";
import {
  decodeEdgeFrame,
  encodeAgentFrame,
  encodeSnapshot,
  type LiveSession,
  type SessionMeta,
} from "../../shared/agent-protocol.ts";
import { encodeServerFrame, parseSize, type ExitInfo, type TerminalSize } from "../../shared/protocol.ts";
import type { CommandRecord } from "../../shared/history.ts";
import { HistoryOutbox } from "./history-outbox.ts";
import { Link } from "./link.ts";
import { PtyOutputLog, UNACKED_MAX_BYTES, UNACKED_RESUME_BYTES } from "./pty-output-log.ts";
import { ScreenState } from "./screen/screen-state.ts";
import type { SpawnPlan } from "./spawn.ts";

/** Output within this long of a bulk frame counts as a burst, in milliseconds… */
export const BURST_WINDOW_MS = 2;
/** …where a bulk frame is at least this big, in bytes (a keystroke's echo never is). */
export const BULK_FRAME_BYTES = 1 << 10; // 1 KiB
/** Longest a chunk waits in a burst before its frame is sent, in milliseconds. */
export const BURST_FLUSH_MS = 4;
/**
 * Input that arrives before the shell is ready is held back: shells flush typeahead while they
 * set up the terminal. The shell counts as ready once it printed something and then went quiet
 * for this long, in milliseconds (or a prompt marker says so, when shell integration is on)…
 */
export const INPUT_GATE_QUIET_MS = 60;
/** …or, whatever it printed, this long after it started, in milliseconds. */
export const INPUT_GATE_MAX_MS = 2_000;
/** Input held back before the shell is ready, in bytes; more is refused. */
export const INPUT_GATE_MAX_BYTES = 64 << 10; // 64 KiB
/** Grace between SIGHUP and SIGKILL when a session is killed, in milliseconds. */
export const KILL_GRACE_MS = 2_000;

/**
 * The command line that runs `file` as the plan's account. node-pty's own uid/gid switch keeps
 * the agent's supplementary groups (root's among them), so the switch goes through setpriv,
 * which sets the target user's groups too, then execs the shell under the same pid.
 */
function asAccount(plan: SpawnPlan, file: string, args: string[]): [string, string[]] {
  if (!plan.switchUser) return [file, args];
  if (!plan.setpriv) throw new Error("setpriv (util-linux) is needed to start shells as another user");
  const { uid, gid } = plan.account;
  return [plan.setpriv, [`--reuid=${uid}`, `--regid=${gid}`, "--init-groups", "--", file, ...args]];
}

export interface PtySessionOptions {
  meta: SessionMeta;
  plan: SpawnPlan;
  /** The program and arguments to run (the shell, possibly with init injected). */
  file: string;
  args: string[];
  env: Record<string, string>;
  size: TerminalSize;
  /** Text typed into the shell once it starts (the `cmd` option). */
  initialInput?: string;
  /** Data link URL and agent token. */
  linkUrl: string;
  token: string;
  onExit(exit: ExitInfo): void;
  /** Extra consumers of raw output (title scanner, command tracker…), called per chunk. */
  onOutput?(chunk: Buffer): void;
  log(line: string): void;
}

export class PtySession {
  readonly meta: SessionMeta;
  private readonly screen: ScreenState;
  private readonly proc: pty.IPty;
  private readonly output: PtyOutputLog;
  /** Command records until the edge has stored them. */
  private readonly history = new HistoryOutbox();
  private readonly link: Link;
  private size: TerminalSize;
  title: string | undefined;
  /** Offset up to which output has been handed to the link. */
  private sent = 0;
  /** Where the output log's sealed output ended at the last flush, and how much that flush sealed. */
  private flushedEnd = 0;
  private lastFlushBytes = 0;
  /** False between a (re)connect and the edge's RESUME: output waits in the log. */
  private streaming = false;
  private flushTimer: NodeJS.Timeout | null = null;
  private lastFlushAt = 0;
  private paused = false;
  private exited: ExitInfo | null = null;
  private readonly linkOpened: Promise<void>;
  /** Input waiting for the shell to be ready; null once it is. */
  private heldInput: Buffer[] | null = [];
  private heldBytes = 0;
  private gateTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: PtySessionOptions) {
    this.size = options.size;
    this.screen = new ScreenState(options.size.cols, options.size.rows);
    this.output = new PtyOutputLog((frame) => this.screen.push(frame.payload));
    const { plan } = options;
    const [file, args] = asAccount(plan, options.file, options.args);
    this.proc = pty.spawn(file, args, {
      name: "xterm-256color",
      cols: options.size.cols,
      rows: options.size.rows,
      cwd: plan.cwd,
      env: options.env,
      encoding: null,
    });
    this.meta = { ...options.meta, pid: this.proc.pid };
    this.proc.onData((data) => this.onData(data as unknown as Buffer));
    this.proc.onExit(({ exitCode, signal }) => this.onProcessExit({ exit_code: exitCode, signal: signal ?? 0 }));
    if (options.initialInput) this.write(Buffer.from(options.initialInput));
    this.gateTimer = setTimeout(() => this.shellReady(), INPUT_GATE_MAX_MS);
    this.gateTimer.unref();

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
        ws.send(
          encodeAgentFrame({
            t: "hello",
            hello: { end: this.output.end, oldest: this.output.acked, size: this.size, meta: this.meta },
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
    if (this.exited) return;
    if (this.heldInput === null) {
      this.proc.write(data);
      return;
    }
    if (this.heldBytes + data.byteLength > INPUT_GATE_MAX_BYTES) {
      this.options.log(`terminal ${this.meta.terminal_id}: dropped ${data.byteLength} bytes of input typed before the shell started`);
      return;
    }
    this.heldInput.push(Buffer.from(data));
    this.heldBytes += data.byteLength;
  }

  /** The shell is ready for input: release what was typed ahead. */
  shellReady(): void {
    if (this.heldInput === null) return;
    const held = this.heldInput;
    this.heldInput = null;
    if (this.gateTimer) clearTimeout(this.gateTimer);
    this.gateTimer = null;
    for (const data of held) this.proc.write(data);
  }

  // --- output -----------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.heldInput !== null) {
      if (this.gateTimer) clearTimeout(this.gateTimer);
      this.gateTimer = setTimeout(() => this.shellReady(), INPUT_GATE_QUIET_MS);
      this.gateTimer.unref();
    }
    this.output.append(chunk);
    this.options.onOutput?.(chunk);
    if (!this.paused && this.output.unacked >= UNACKED_MAX_BYTES) {
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
    if (!this.streaming || this.sent >= this.output.sealedEnd) return;
    for (const frame of this.output.framesFrom(this.sent)) this.link.send(frame);
    this.sent = this.output.sealedEnd;
  }

  /** The newest raw output, for `/raw?format=download`, up to the last byte the PTY printed. */
  readRaw(lines?: number): Uint8Array {
    this.flush();
    return this.output.tail(lines);
  }

  /** The screen model, once it reflects every byte the PTY printed so far. */
  async currentScreen(): Promise<ScreenState["terminal"]> {
    this.flush();
    await this.screen.catchUp();
    return this.screen.terminal;
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
        this.write(Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength));
        return;
      case "resize": {
        const size = parseSize(f.size);
        if (size) this.resize(size);
        return;
      }
      case "ack":
        this.output.ack(f.offset);
        this.history.confirm(f.offset);
        if (this.paused && this.output.unacked < UNACKED_RESUME_BYTES) {
          this.paused = false;
          this.proc.resume();
        }
        return;
      case "resume":
        this.output.ack(f.offset);
        this.sent = Math.max(f.offset, this.output.acked);
        this.streaming = true;
        this.sendHistory();
        this.flush();
        if (this.exited) this.sendExit();
        opened();
        return;
      case "snapshot-request":
        void this.sendSnapshot(f.id);
        return;
    }
  }

  private async sendSnapshot(id: number): Promise<void> {
    this.flush();
    const offset = this.output.end;
    const screen = await this.screen.snapshot();
    // The snapshot covers exactly the output up to `offset`, which was all sent before it.
    this.link.send(encodeSnapshot(id, offset, Buffer.from(screen, "utf8")));
  }

  resize(size: TerminalSize): void {
    if (this.exited || (size.cols === this.size.cols && size.rows === this.size.rows)) return;
    this.size = size;
    this.proc.resize(size.cols, size.rows);
    this.screen.resize(size.cols, size.rows);
    this.link.send(encodeAgentFrame({ t: "size", size }));
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
    this.exited = exit;
    this.flush();
    this.sendExit();
    this.options.onExit(exit);
  }

  private sendExit(): void {
    if (this.exited && this.streaming && this.link.send(encodeAgentFrame({ t: "exit", exit: this.exited }))) {
      this.dispose();
    }
  }

  /** Hangs up the session's process group, then kills it if it lingers. */
  kill(): void {
    if (this.exited) return;
    const pgid = this.proc.pid;
    const signal = (sig: NodeJS.Signals) => {
      try {
        process.kill(-pgid, sig);
      } catch {
        /* the group is gone */
      }
    };
    signal("SIGHUP");
    const timer = setTimeout(() => {
      if (!this.exited) signal("SIGKILL");
    }, KILL_GRACE_MS);
    timer.unref();
  }

  /** Drops the data link as a network failure would (tests, diagnostics). */
  dropLink(): void {
    this.link.drop();
  }

  dispose(): void {
    if (this.gateTimer) clearTimeout(this.gateTimer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    // Let the EXIT frame drain before the link closes.
    setTimeout(() => this.link.stop(1000, "session ended"), 50).unref();
    this.screen.dispose();
  }
}
