/**
 * The screen models off the agent's main thread. One worker thread per agent process
 * (screen-worker.ts) holds every terminal's ScreenState; each PtySession talks to its model
 * through a `ScreenModel` here, which the main thread feeds copies of the output in batches.
 *
 * Why: parsing output (the scroll-skip scan of every byte, xterm.js on the rest) and serializing
 * repaints took a third to a half of the main thread's time per MB of a flood, and while the
 * main thread parsed it did not read the PTY or send to the edge. Now it copies each byte once
 * more (into a batch it hands over) and relays; the parser runs beside it.
 *
 * Messages, in order on one channel per direction (types below):
 *   main → thread   OPEN, OUTPUT (a batch of stream bytes, transferred), RESIZE, SNAPSHOT (a
 *                   repaint at `offset`), SCREEN (the full screen for rendering), CLOSE
 *   thread → main   PARSED (bytes parsed so far), SPARES (parsed batches given back), SNAPSHOT
 *                   and SCREEN answers, LOG
 * A SNAPSHOT names the count of bytes pushed before it; the thread answers with a repaint of
 * exactly those bytes (screen-worker.ts keeps that invariant and checks it) or an error. While
 * the thread takes one, what follows for that model (output, resizes, further requests) waits
 * there in order. Requests at the same offset share one answer.
 */
import { Worker } from "node:worker_threads";
import type { Terminal } from "@xterm/headless";
import { createScreenTerminal, RepaintShare, SCROLLBACK_LINES, type Repaint } from "./screen-state.ts";

/** Output copied into one batch before it is handed to the screen thread, in bytes. */
export const SCREEN_BATCH_BYTES = 256 << 10; // 256 KiB
/** Longest output waits in a batch that is not full, in milliseconds (the thread parses after 25 ms of quiet anyway). */
export const SCREEN_BATCH_DELAY_MS = 10;
/** Batch buffers the screen thread gave back, kept for reuse (each SCREEN_BATCH_BYTES). */
export const SCREEN_SPARE_BATCHES = 8;
/** The screen thread's young generation, in MB: small, so its memory stays flat under a flood (as the agent's, see bin/edgetty.js). */
const SCREEN_THREAD_YOUNG_MB = 4;

/** Main thread → screen thread. */
export type ToScreenThread =
  | { t: "open"; id: number; cols: number; rows: number }
  | { t: "output"; id: number; bytes: Uint8Array }
  | { t: "resize"; id: number; cols: number; rows: number }
  | { t: "snapshot"; id: number; req: number; offset: number }
  | { t: "screen"; id: number; req: number; scrollback: number }
  | { t: "close"; id: number };

/** Screen thread → main thread. */
export type FromScreenThread =
  | { t: "parsed"; id: number; parsed: number }
  /** Batches parsed, given back for reuse (transferred). */
  | { t: "spares"; buffers: ArrayBuffer[] }
  /** `bytes` null: no repaint could be made (`error` says why). */
  | { t: "snapshot"; req: number; offset: number; bytes: ArrayBuffer | null; error?: string }
  | { t: "screen"; req: number; bytes: ArrayBuffer | null }
  | { t: "log"; id: number; line: string };

type Answer = Extract<FromScreenThread, { req: number }>;

/**
 * The screen thread's program: from the sources, the entry that registers tsx and imports
 * screen-worker.ts; in the agent bundle, `edgetty-screen-worker.mjs` beside it (built by
 * scripts/build-agent.mjs).
 */
function screenWorkerEntry(): URL {
  const here = import.meta.url;
  return new URL(here.endsWith(".ts") ? "./screen-worker-entry.mjs" : "./edgetty-screen-worker.mjs", here);
}

/** The worker thread and the models in it. */
class ScreenThread {
  private readonly worker: Worker;
  /** One per terminal: bounded by the agent's sessions (EDGETTY_AGENT_MAX_SESSIONS). */
  private readonly models = new Map<number, ScreenModel>();
  /**
   * Requests awaiting their answer: bounded by the requests the edge may have in flight (one
   * snapshot at a time per terminal, screen requests within the control link's in-flight limit).
   */
  private readonly pending = new Map<number, { model: ScreenModel; resolve(answer: Answer | null): void }>();
  private nextReq = 1;
  /** Batch buffers to copy output into (fresh memory costs page faults on every batch). */
  private readonly spares: ArrayBuffer[] = [];
  dead = false;

  constructor(private readonly onDead: (thread: ScreenThread, why: string) => void) {
    this.worker = new Worker(screenWorkerEntry(), {
      resourceLimits: { maxYoungGenerationSizeMb: SCREEN_THREAD_YOUNG_MB },
    });
    // The agent's life decides when it ends, not this thread's.
    this.worker.unref();
    this.worker.on("message", (m: FromScreenThread) => this.onMessage(m));
    this.worker.on("error", (error) => this.die(`failed: ${error.message}`));
    this.worker.on("exit", (code) => this.die(`exited (code ${code})`));
  }

  add(model: ScreenModel): void {
    this.models.set(model.id, model);
  }

  remove(model: ScreenModel): void {
    this.models.delete(model.id);
  }

  post(message: ToScreenThread, transfer: ArrayBuffer[] = []): void {
    if (!this.dead) this.worker.postMessage(message, transfer);
  }

  /** Posts a request and resolves with its answer (null if the thread ended first). */
  ask(model: ScreenModel, make: (req: number) => ToScreenThread): Promise<Answer | null> {
    if (this.dead) return Promise.resolve(null);
    const req = this.nextReq++;
    return new Promise((resolve) => {
      this.pending.set(req, { model, resolve });
      this.post(make(req));
    });
  }

  /** Resolves the requests of `model` still waiting, with null. */
  abandon(model: ScreenModel): void {
    for (const [req, p] of this.pending) {
      if (p.model !== model) continue;
      this.pending.delete(req);
      p.resolve(null);
    }
  }

  /** A buffer for the next batch: a spare one if the thread gave one back. */
  batchBuffer(): Buffer {
    const spare = this.spares.pop();
    return spare ? Buffer.from(spare) : Buffer.allocUnsafeSlow(SCREEN_BATCH_BYTES);
  }

  private onMessage(m: FromScreenThread): void {
    if (m.t === "spares") {
      for (const buffer of m.buffers) {
        if (this.spares.length < SCREEN_SPARE_BATCHES && buffer.byteLength === SCREEN_BATCH_BYTES) this.spares.push(buffer);
      }
      return;
    }
    if (m.t === "parsed") return this.models.get(m.id)?.onParsed(m.parsed);
    if (m.t === "log") return this.models.get(m.id)?.log(m.line);
    const p = this.pending.get(m.req);
    this.pending.delete(m.req);
    p?.resolve(m);
  }

  private die(why: string): void {
    if (this.dead) return;
    this.dead = true;
    this.onDead(this, why);
    for (const model of this.models.values()) model.lost(`screen thread ${why}`);
    for (const p of this.pending.values()) p.resolve(null);
    this.pending.clear();
  }
}

/** The agent's screen thread: started by the agent at start (startScreenThread), again by the next model if it ever ended. */
let current: ScreenThread | null = null;
/** Where the thread's end is reported (the agent's log once it started the thread). */
let reportEnd: (line: string) => void = (line) => console.error(`[agent] ${line}`);

function screenThread(): ScreenThread {
  current ??= new ScreenThread((dead, why) => {
    if (current === dead) current = null;
    reportEnd(`screen thread ${why}; repaints are empty until the next terminal starts a new one`);
  });
  return current;
}

/**
 * Starts the agent's screen thread now if it is not running (the agent does at start; else the
 * first terminal does); `log` gets a line if the thread ever ends (it fails to load, or dies).
 */
export function startScreenThread(log?: (line: string) => void): void {
  if (log) reportEnd = log;
  screenThread();
}

let nextModelId = 1;

/**
 * One terminal's screen model, in the screen thread. Same contract as ScreenState for its user
 * (pty-session.ts): `push` every stream byte in order; `backlog` says how much is not parsed yet;
 * `snapshot` answers a repaint of exactly the bytes pushed so far.
 */
export class ScreenModel {
  readonly id = nextModelId++;
  private readonly thread = screenThread();
  /** Bytes pushed since the terminal started (the stream offset of the next one). */
  private pushed = 0;
  /** Bytes the thread has parsed (or provably need not). */
  private parsed = 0;
  private batch: Buffer | null = null;
  private batchUsed = 0;
  private batchTimer: NodeJS.Timeout | null = null;
  /** The newest SNAPSHOT asked for, while unanswered: a call at the same offset shares it. */
  private snapshotAt: { offset: number; repaint: Promise<Repaint> } | null = null;
  /** The repaints' share of time, counted here: from asking the thread to its answer. */
  private readonly share = new RepaintShare();
  private closed = false;
  private alive = true;

  /** `onParsed` runs when the thread reports progress (the backlog shrank). */
  constructor(
    cols: number,
    rows: number,
    private readonly onProgress: () => void,
    readonly log: (line: string) => void,
  ) {
    this.thread.add(this);
    this.thread.post({ t: "open", id: this.id, cols, rows });
  }

  /** Output pushed but not parsed yet (batched, in flight, queued or in the parser), in bytes. */
  get backlog(): number {
    return this.alive ? this.pushed - this.parsed : 0;
  }

  /** Copies `chunk` (the next stream bytes) into the batch for the thread; the caller may reuse it at once. */
  push(chunk: Uint8Array): void {
    if (this.closed || chunk.byteLength === 0) return;
    this.pushed += chunk.byteLength;
    if (!this.alive) return;
    let from = 0;
    while (from < chunk.byteLength) {
      this.batch ??= this.thread.batchBuffer();
      const take = Math.min(chunk.byteLength - from, SCREEN_BATCH_BYTES - this.batchUsed);
      this.batch.set(from === 0 && take === chunk.byteLength ? chunk : chunk.subarray(from, from + take), this.batchUsed);
      this.batchUsed += take;
      from += take;
      if (this.batchUsed === SCREEN_BATCH_BYTES) this.post();
    }
    if (this.batch && !this.batchTimer) this.batchTimer = setTimeout(() => this.post(), SCREEN_BATCH_DELAY_MS);
  }

  /** Hands the batch to the thread (transferred: this side keeps nothing of it). */
  private post(): void {
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = null;
    const batch = this.batch;
    if (!batch || this.batchUsed === 0) return;
    const bytes = new Uint8Array(batch.buffer, batch.byteOffset, this.batchUsed);
    this.batch = null;
    this.batchUsed = 0;
    this.thread.post({ t: "output", id: this.id, bytes }, [batch.buffer as ArrayBuffer]);
  }

  onParsed(parsed: number): void {
    if (parsed <= this.parsed) return;
    this.parsed = parsed;
    this.onProgress();
  }

  /** The thread ended: no model any more (repaints are empty, the PTY never waits for it). */
  lost(why: string): void {
    if (!this.alive) return;
    this.alive = false;
    this.log(`${why}; this terminal's joiners get no repaint until it restarts`);
    this.onProgress();
  }

  /**
   * Resolves when a repaint may start (the repaints' share of time, RepaintShare: the cost of a
   * repaint is the time from asking the thread to its answer); output keeps flowing meanwhile.
   */
  repaintSlot(): Promise<void> {
    if (this.closed || !this.alive) return Promise.resolve();
    return this.share.slot();
  }

  /**
   * The repaint of exactly the output pushed so far: `offset` is the count of bytes pushed (the
   * stream offset), and the repaint is of those bytes and no others. Calls at the same offset
   * share one answer. An empty repaint if the model is gone (closed, or the thread failed).
   */
  snapshot(): Promise<Repaint> {
    const offset = this.pushed;
    if (this.closed || !this.alive) return Promise.resolve({ bytes: Buffer.alloc(0), offset });
    if (this.snapshotAt?.offset === offset) return this.snapshotAt.repaint;
    // Posted at once, right after the bytes it covers: the thread takes it when it has pushed
    // exactly those (screen-worker.ts queues what follows until then).
    this.post();
    const startedAt = performance.now();
    const repaint = this.thread.ask(this, (req) => ({ t: "snapshot", id: this.id, req, offset })).then((answer) => {
      this.share.made(startedAt);
      if (answer?.t !== "snapshot" || answer.bytes === null) {
        if (answer?.t === "snapshot" && answer.error) this.log(`no repaint: ${answer.error}`);
        return { bytes: Buffer.alloc(0), offset };
      }
      return { bytes: Buffer.from(answer.bytes), offset };
    });
    const entry = { offset, repaint };
    this.snapshotAt = entry;
    void repaint.then(() => {
      if (this.snapshotAt === entry) this.snapshotAt = null;
    });
    return repaint;
  }

  /**
   * A copy of the screen on this thread, reflecting every byte pushed so far: the state with
   * `scrollback` lines of scrollback (at most SCROLLBACK_LINES) serialized by the thread and
   * replayed into a new terminal here, exact by the repaint property. For rendering text, HTML
   * and screenshots; the caller disposes it.
   */
  async screen(cols: number, rows: number, scrollback: number = SCROLLBACK_LINES): Promise<Terminal> {
    scrollback = Math.max(0, Math.min(SCROLLBACK_LINES, Math.floor(scrollback)));
    this.post();
    const answer = this.closed || !this.alive ? null : await this.thread.ask(this, (req) => ({ t: "screen", id: this.id, req, scrollback }));
    const term = createScreenTerminal(cols, rows, scrollback, this.log);
    if (answer?.t === "screen" && answer.bytes) {
      const bytes = new Uint8Array(answer.bytes);
      await new Promise<void>((resolve) => term.write(bytes, resolve));
    }
    return term;
  }

  /** Resizes after the output pushed at the old size. */
  resize(cols: number, rows: number): void {
    if (this.closed) return;
    this.post();
    this.thread.post({ t: "resize", id: this.id, cols, rows });
  }

  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batch = null;
    this.thread.post({ t: "close", id: this.id });
    this.thread.remove(this);
    this.thread.abandon(this);
    this.share.dispose();
  }
}
