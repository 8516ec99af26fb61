/**
 * The agent's screen thread: every terminal's screen model (ScreenState, a headless xterm) runs
 * here, off the agent's main thread, so the main thread only relays bytes (screen-thread.ts is
 * the other end and documents the messages).
 *
 * The offset invariant: messages arrive in the order the main thread posted them, so when a
 * SNAPSHOT (or SCREEN) request arrives, this model has been pushed exactly the bytes the main
 * thread had pushed when it asked (the request names that count, and it is checked). Output that
 * arrives while the repaint is being made is held here, not pushed, until the repaint is taken:
 * the repaint covers exactly the output before the request, so the rest of the stream follows it
 * without gap or overlap. Held output counts as unparsed on the main thread, whose PTY pauses
 * past PARSE_BACKLOG_MAX_BYTES, so holding is bounded too.
 */
import { parentPort } from "node:worker_threads";
import { serializeScreen } from "./snapshot.ts";
import { ScreenState, SCROLLBACK_LINES } from "./screen-state.ts";
import type { FromScreenThread, ToScreenThread } from "./screen-thread.ts";

interface Model {
  screen: ScreenState;
  /** Bytes pushed into `screen` (or queued for it), since the terminal started. */
  received: number;
  /**
   * True while a repaint is being taken: the model's messages then wait in `queue`, in order
   * (bounded: its output counts against the main thread's PARSE_BACKLOG_MAX_BYTES, which pauses
   * the PTY, and the edge asks for one snapshot at a time).
   */
  taking: boolean;
  queue: Ordered[];
  /** The batches received, oldest first, with the stream offset each ends at: returned once parsed. */
  batches: { end: number; buffer: ArrayBuffer }[];
  /** Batches parsed and waiting to go back to the main thread (see `giveBack`). */
  spares: ArrayBuffer[];
}

/** The messages that must reach a model in stream order. */
type Ordered = Extract<ToScreenThread, { t: "output" | "resize" | "snapshot" | "screen" | "close" }>;

const port = parentPort;
if (!port) throw new Error("screen-worker.ts runs as a worker thread (see screen-thread.ts)");
const models = new Map<number, Model>();

function post(message: FromScreenThread, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

/** The bytes of a Buffer as a transferable ArrayBuffer of their own. */
function own(bytes: Buffer): ArrayBuffer {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy.buffer;
}

function log(id: number, error: unknown): void {
  post({ t: "log", id, line: `screen thread: ${(error as Error).message}` });
}

/**
 * Hands the batches parsed up to `parsed` back to the main thread for reuse (it copies output
 * into them again instead of into fresh memory). Later, not from inside the parser's callback:
 * xterm.js still reads the length of the chunk it just parsed after calling back, and a
 * transferred buffer has none.
 */
function giveBack(id: number, model: Model, parsed: number): void {
  let n = 0;
  while (n < model.batches.length && model.batches[n]!.end <= parsed) n++;
  if (n === 0) return;
  const wasEmpty = model.spares.length === 0;
  for (const batch of model.batches.splice(0, n)) model.spares.push(batch.buffer);
  if (!wasEmpty) return;
  setImmediate(() => {
    const spares = model.spares;
    model.spares = [];
    if (models.get(id) === model && spares.length > 0) post({ t: "spares", buffers: spares }, spares);
  });
}

/** Applies `m` to the model now, or queues it behind the repaint being taken. */
function apply(id: number, model: Model, m: Ordered): void {
  if (model.taking) {
    model.queue.push(m);
    return;
  }
  switch (m.t) {
    case "output":
      model.screen.push(m.bytes);
      return;
    case "resize":
      model.screen.resize(m.cols, m.rows);
      return;
    case "close":
      models.delete(id);
      model.queue = [];
      model.batches = [];
      model.screen.dispose();
      return;
    case "snapshot":
    case "screen":
      model.taking = true;
      take(model, m)
        .catch((error: unknown) => {
          log(id, error);
          post(m.t === "snapshot" ? { t: "snapshot", req: m.req, offset: m.offset, bytes: null, error: (error as Error).message } : { t: "screen", req: m.req, bytes: null });
        })
        .finally(() => {
          model.taking = false;
          // What came meanwhile, in order, up to the next repaint request (which holds the rest).
          const queued = model.queue;
          model.queue = [];
          for (let i = 0; i < queued.length; i++) {
            apply(id, model, queued[i]!);
            if (model.taking) {
              model.queue = queued.slice(i + 1);
              break;
            }
          }
        });
      return;
  }
}

/** Takes a repaint (or the full screen) of exactly the bytes pushed so far, and answers it. */
async function take(model: Model, m: Extract<Ordered, { t: "snapshot" | "screen" }>): Promise<void> {
  if (m.t === "screen") {
    await model.screen.catchUp();
    const bytes = own(Buffer.from(serializeScreen(model.screen.terminal, Math.min(m.scrollback, SCROLLBACK_LINES)), "utf8"));
    post({ t: "screen", req: m.req, bytes }, [bytes]);
    return;
  }
  // The main thread named the bytes it had pushed; every one of them is pushed here, no other.
  const repaint = await model.screen.snapshot();
  if (repaint.offset !== m.offset) {
    post({ t: "snapshot", req: m.req, offset: m.offset, bytes: null, error: `repaint at ${repaint.offset}, asked at ${m.offset}` });
    return;
  }
  const bytes = own(repaint.bytes);
  post({ t: "snapshot", req: m.req, offset: m.offset, bytes }, [bytes]);
}

port.on("message", (m: ToScreenThread) => {
  try {
    if (m.t === "open") {
      const id = m.id;
      const model: Model = { screen: null as unknown as ScreenState, received: 0, taking: false, queue: [], batches: [], spares: [] };
      model.screen = new ScreenState(
        m.cols,
        m.rows,
        (parsed) => {
          post({ t: "parsed", id, parsed });
          giveBack(id, model, parsed);
        },
        (line) => post({ t: "log", id, line }),
      );
      models.set(id, model);
      return;
    }
    const model = models.get(m.id);
    if (!model) {
      if (m.t === "snapshot") post({ t: "snapshot", req: m.req, offset: m.offset, bytes: null, error: "no screen model" });
      if (m.t === "screen") post({ t: "screen", req: m.req, bytes: null });
      return;
    }
    if (m.t === "output") {
      model.received += m.bytes.byteLength;
      model.batches.push({ end: model.received, buffer: m.bytes.buffer as ArrayBuffer });
    }
    if (m.t === "snapshot" && m.offset !== model.received) {
      // Cannot happen while messages keep their order; answered as an error rather than a wrong repaint.
      post({ t: "snapshot", req: m.req, offset: m.offset, bytes: null, error: `screen model received ${model.received}, asked at ${m.offset}` });
      return;
    }
    apply(m.id, model, m);
  } catch (error) {
    // A fault in one model must not end the thread (every terminal's model lives here).
    log("id" in m ? m.id : 0, error);
  }
});
