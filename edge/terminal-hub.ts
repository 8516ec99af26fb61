/**
 * The core of one terminal at the edge, independent of transport: the agent's data link on one
 * side, any number of clients on the other. It forwards input, fans output out, keeps each
 * client's position in the output stream, repaints joiners and laggards from agent snapshots,
 * and acknowledges output to the agent. TerminalDO adapts hibernatable WebSockets to `Sink`s.
 */
import type { CommandRecord } from "../shared/history.ts";
import {
  ClientOp,
  decodeClientFrame,
  encodeServerFrame,
  frame,
  LinkDecodeError,
  type ExitInfo,
  type ExitReason,
  type ServerFrame,
  type TerminalSize,
} from "../shared/links/client.ts";
import { decodeAgentFrame, encodeEdgeFrame, type DataHello } from "../shared/links/data.ts";
import { OutputRing, payloadLength, type RingFrame } from "./output-ring.ts";
import { log } from "./log.ts";
import { RepaintReuse } from "./repaint-reuse.ts";
import { InputWindow } from "./input-window.ts";
import { CLIENT_TOO_SLOW_CLOSE, CLIENT_UNREAD_CLOSE_BYTES, CLIENT_UNREAD_RESUME_BYTES, CLIENT_READ_FLOOR_BYTES_PER_SEC, ReadLedger, TERMINAL_UNREAD_MAX_BYTES, type ClientFlow, type SavedReading } from "./client-reading.ts";

/**
 * A resumed client that missed more than this is repainted from a snapshot instead of being sent
 * what it missed, in bytes: replaying megabytes would only delay what it wants to see now.
 */
export const CATCH_UP_MAX_BYTES = 256 << 10; // 256 KiB

/**
 * In a flood, output is acknowledged to the agent once per this much, in bytes: every ACK is a
 * message both ends pay for. A frame under ACK_AT_ONCE_BELOW_BYTES (an echo, the tail of a burst)
 * is acknowledged at once, so a quiet stream is always acknowledged up to its end.
 */
export const ACK_EVERY_BYTES = 512 << 10; // 512 KiB
export const ACK_AT_ONCE_BELOW_BYTES = 64 << 10; // 64 KiB

/** Largest frame accepted from a client, in bytes. */
export const CLIENT_FRAME_MAX_BYTES = 1 << 20; // 1 MiB
/**
 * Shortest time between two RESIZE frames forwarded to the agent, in milliseconds; a writer's
 * resizes within it are merged into the newest (a flood of them must not occupy the DO, the link
 * and the agent with sizes nobody will see). The agent merges again (pty-session.ts).
 */
export const RESIZE_FORWARD_INTERVAL_MS = 20;

/** The ERROR a client gets for input refused because the program is not reading it (docs/protocol.md). */
export function inputBacklogError(bytes: number): ServerFrame {
  return {
    t: "error",
    error: {
      code: "INPUT_BACKLOG",
      message: `The program is not reading its input: ${bytes} bytes of input were refused. Input is accepted again once it reads what it was sent.`,
    },
  };
}

/** Whether a client is told the PTY's size wherever it changes: read-only ones, and writers that asked. */
function followsSize(state: ClientState): boolean {
  return state.readonly || state.sizeUpdates === true;
}

/** One end of a connection the hub can write to. */
export interface Sink {
  /**
   * Sends one frame. `bytes` is valid only during the call: an output frame's memory is given
   * back when the ring evicts it (output-ring.ts), so a sink that keeps a frame keeps a copy
   * (`WebSocket.send` does).
   */
  send(bytes: Uint8Array): void;
  close(code: number, reason: string): void;
}

/** Where a client stands. `offset` is the next output byte it expects. */
export interface ClientState {
  id: string;
  readonly: boolean;
  paused: boolean;
  /** Null until the client has been repainted (or, after hibernation, until output resumes). */
  offset: number | null;
  /** After a DO wake-up positions are unknown: take the next frame as the client's position. */
  trustNext: boolean;
  /**
   * A writer that asked to be told the PTY's size when another client resizes it (the web app's
   * `size_updates`), as a read-only client always is; unset: a writer that sizes the PTY and is
   * not told (the seed's clients).
   */
  sizeUpdates?: boolean;
  /** The size the client was last told in an INFO, as `cols×rows` (unset: none known here). */
  toldSize?: string;
  /** The window title the client was last told, by INFO or TITLE (unset: none). */
  toldTitle?: string;
  /** What was sent and may be unread (client-reading.ts; a woken DO restores only its SavedReading). */
  flow?: ClientFlow;
}

/** What the hub asks of its host (the Durable Object). */
export interface HubHost {
  /** The INFO frame for a client. */
  info(client: ClientState): ServerFrame;
  /** The agent (re)introduced the session; false refuses the link (a session that is not this one). */
  onHello(hello: DataHello): boolean;
  /** A data-link frame was refused (malformed): log it, naming the instance. */
  refused(reason: string): void;
  onTitle(title: string): void;
  /** The PTY was resized (by any client). */
  onSize?(size: TerminalSize): void;
  /** A command started or finished in the shell (store it: upsert by id). */
  onHistory?(record: CommandRecord): void;
  /** The PTY's process ended; every client has been sent EXIT and closed. */
  onExit(exit: ExitInfo): void;
  /**
   * A client's pause state changed, or its reading (client-reading.ts `savedReading` of
   * `client.flow`: it answers MARKs, it is held): worth persisting across hibernation.
   */
  onClientChanged(sink: Sink, client: ClientState): void;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

export class TerminalHub {
  readonly clients = new Map<Sink, ClientState>();
  /**
   * Clients closed for not reading whose sockets are not gone yet (at most the terminal's client
   * limit: they keep their places). workerd has no way to drop a socket's queue: closing one only
   * queues its close frame behind what it has not read, so that stays in memory until the peer
   * reads it or its connection dies, and stays counted until then.
   */
  private readonly closing = new Map<Sink, ClientFlow>();
  private agent: Sink | null = null;
  /** A client's newest RESIZE frame, waiting for `resizeTimer`; the timer runs while a RESIZE was forwarded less than RESIZE_FORWARD_INTERVAL_MS ago. */
  private wantedResize: Uint8Array | null = null;
  private resizeTimer: ReturnType<typeof setTimeout> | undefined;
  /** End of the output received from the agent; null when unknown (fresh or woken DO). */
  private received: number | null = null;
  /** The offset last acknowledged to the current agent link. */
  private acked = -Infinity;
  private readonly ring = new OutputRing();
  private snapshotSeq = 0;
  private snapshotInFlight: number | null = null;
  /** The last repaint, for joiners that follow it closely (repaint-reuse.ts). */
  private readonly lastRepaint = new RepaintReuse();

  /** What each client may have left unread (client-reading.ts). */
  private readonly reading: ReadLedger;
  /** Input sent to the agent and not yet acknowledged (input-window.ts). */
  private readonly inputWindow = new InputWindow<Sink>();
  /** Why the edge is ending the session (a DELETE, the idle timeout), stamped on whichever EXIT comes. */
  private endReason: ExitReason | null = null;

  /** `now` is the clock for clients' unread estimates, in ms (tests pass their own). */
  constructor(
    private readonly host: HubHost,
    now: () => number = () => Date.now(),
  ) {
    this.reading = new ReadLedger(now);
  }

  get agentOnline(): boolean {
    return this.agent !== null;
  }

  /** The places taken: the clients, and those closed for not reading whose sockets are not gone yet. */
  get clientCount(): number {
    return this.clients.size + this.closing.size;
  }

  // --- agent side -----------------------------------------------------------------------------

  attachAgent(sink: Sink, known: boolean): void {
    if (this.agent && this.agent !== sink) this.agent.close(4000, "replaced by a newer link");
    this.agent = sink;
    this.acked = -Infinity;
    // Whether it acknowledges input is known from its HELLO, or (a woken DO) from its first INPUT_ACK.
    this.inputWindow.reset(false);
    this.snapshotInFlight = null;
    this.lastRepaint.drop();
    this.ring.unpin();
    // A link found after a wake-up has said HELLO long ago: it may stream right away.
    if (known) this.requestSnapshotIfNeeded();
  }

  detachAgent(sink: Sink): void {
    if (this.agent !== sink) return;
    this.agent = null;
    this.snapshotInFlight = null;
    this.inputWindow.reset(false);
    this.lastRepaint.drop();
    this.ring.unpin();
    this.broadcast({ t: "error", error: { code: "AGENT_OFFLINE", message: "The host's agent is offline; output resumes when it reconnects" } });
  }

  /**
   * One frame from the agent's data link. A frame the link's decoder refuses is dropped alone and
   * reported through `host.refused`; the link and every client carry on.
   */
  onAgentMessage(sink: Sink, message: ArrayBuffer | string): void {
    if (typeof message === "string") return this.host.refused("a text frame on the binary data link");
    let f;
    try {
      f = decodeAgentFrame(new Uint8Array(message));
    } catch (error) {
      if (error instanceof LinkDecodeError) return this.host.refused(error.message);
      throw error;
    }
    // Frames still arriving on a link that was replaced or ended belong to nobody.
    if (f.t !== "hello" && sink !== this.agent) return;
    switch (f.t) {
      case "output":
        this.onOutput(f.offset, f.frame);
        break;
      case "snapshot":
        this.onSnapshot(f.id, f.offset, f.frame);
        break;
      case "hello":
        this.onHello(sink, f.hello);
        break;
      case "title": {
        const title = decoder.decode(f.frame.subarray(1));
        this.host.onTitle(title);
        // A client waiting for its repaint is told with it (repaintWaiting): this frame would
        // otherwise pass it by, and nothing would tell it until the title changed again.
        for (const [client, state] of this.clients) {
          if ((state.offset === null && !state.trustNext) || this.flowOf(state).held) continue;
          this.send(client, state, f.frame);
          state.toldTitle = title;
        }
        break;
      }
      case "history":
        this.host.onHistory?.(f.record);
        break;
      case "input-ack":
        for (const [client, bytes] of this.inputWindow.ack(f.refused, f.bytes)) this.refuseInput(client, bytes);
        break;
      case "size":
        this.lastRepaint.sizeChanged();
        this.host.onSize?.(f.size);
        this.tellViewersSize();
        break;
      case "exit":
        this.exit(f.exit);
        break;
    }
  }

  private onHello(sink: Sink, hello: DataHello): void {
    if (!this.host.onHello(hello)) {
      sink.close(4400, "hello refused");
      return;
    }
    this.attachAgent(sink, false);
    this.inputWindow.reset(hello.input_acks === true);
    if (this.received === null) {
      // Nothing held here (a fresh DO): nobody needs the past, carry on from the agent's end.
      this.received = hello.end;
      for (const state of this.clients.values()) if (state.offset !== null || state.trustNext) this.markStale(state);
    }
    const resumeFrom = Math.max(this.received, hello.oldest);
    if (resumeFrom !== this.received) {
      // The agent can no longer resend what we miss: everyone gets a fresh screen.
      this.received = resumeFrom;
      for (const state of this.clients.values()) this.markStale(state);
    }
    sink.send(encodeEdgeFrame({ t: "resume", offset: resumeFrom }));
    for (const [client, state] of this.clients) this.sendInfo(client, state);
    this.requestSnapshotIfNeeded();
  }

  private onOutput(offset: number, clientFrame: Uint8Array): void {
    let start = offset;
    let data = clientFrame;
    const end = offset + payloadLength({ offset, frame: clientFrame });
    if (this.received !== null) {
      if (end <= this.received) return this.ack(); // a resend we already hold
      if (start < this.received) {
        data = frame(clientFrame[0]!, clientFrame.subarray(1 + this.received - start));
        start = this.received;
      } else if (start > this.received) {
        log("warn", "terminal.output_gap", `output gap ${this.received}..${start}; repainting clients`, { from: this.received, to: start });
        this.ring.clear();
        this.lastRepaint.drop();
      }
    }
    const f: RingFrame = { offset: start, frame: data };
    this.ring.push(f);
    this.received = end;
    for (const [client, state] of this.clients) if (!state.paused) this.deliver(client, state, f);
    if (end - start < ACK_AT_ONCE_BELOW_BYTES || end - this.acked >= ACK_EVERY_BYTES) this.ack();
    this.requestSnapshotIfNeeded();
  }

  private ack(): void {
    if (!this.agent || this.received === null) return;
    this.agent.send(encodeEdgeFrame({ t: "ack", offset: this.received }));
    this.acked = this.received;
  }

  /**
   * Sends `f` to a live client, keeping its position exact (no gap, no duplicate). A client whose
   * unread estimate this frame would take past its limit (client-reading.ts) is held instead.
   */
  private deliver(client: Sink, state: ClientState, f: RingFrame): void {
    if (state.offset === null) {
      if (!state.trustNext) return; // waiting for its repaint
      state.offset = f.offset;
      state.trustNext = false;
    }
    const end = f.offset + payloadLength(f);
    if (end <= state.offset) return;
    // A held client keeps its position: released, it is caught up from it (or repainted).
    const flow = this.flowOf(state);
    if (flow.held) return;
    if (f.offset > state.offset) return this.markStale(state);
    const bytes = f.offset === state.offset ? f.frame : frame(f.frame[0]!, f.frame.subarray(1 + state.offset - f.offset));
    if (this.reading.unread(flow) + bytes.byteLength > this.reading.limit(flow)) return this.hold(client, state);
    this.send(client, state, bytes);
    state.offset = end;
  }

  // --- what each client may have unread (client-reading.ts) -----------------------------------

  private flowOf(state: ClientState): ClientFlow {
    return (state.flow ??= this.reading.open());
  }

  /**
   * Every frame to a client goes through here, so what it may have unread is counted. A client
   * over CLIENT_UNREAD_CLOSE_BYTES is closed (4008); when the clients together pass
   * TERMINAL_UNREAD_MAX_BYTES, the one with the most unread is held. A frame the client provoked
   * itself (`provoked`: a PONG, an ERROR) while held also closes it when it would take the
   * clients together past TERMINAL_UNREAD_MAX_BYTES: held clients would otherwise each add up to
   * their own close limit. A client no longer here (closed meanwhile) is sent and counted nothing.
   */
  private send(client: Sink, state: ClientState, bytes: Uint8Array, provoked = false): void {
    if (this.clients.get(client) !== state) return;
    const flow = this.flowOf(state);
    const overClient = this.reading.unread(flow) + bytes.byteLength > CLIENT_UNREAD_CLOSE_BYTES;
    if (overClient || (provoked && flow.held && this.reading.over(TERMINAL_UNREAD_MAX_BYTES - bytes.byteLength))) {
      return this.closeNotReading(client, state, overClient ? `over ${CLIENT_UNREAD_CLOSE_BYTES} bytes unread` : `held, with the terminal's clients over ${TERMINAL_UNREAD_MAX_BYTES} bytes unread`);
    }
    const markDue = this.reading.sent(flow, bytes.byteLength);
    client.send(bytes);
    if (markDue) this.mark(client, flow);
    if (this.reading.total > TERMINAL_UNREAD_MAX_BYTES) this.holdMostUnread();
  }

  /** Closes a client 4008 for not reading (`why`); it keeps its place and its count until its socket is gone (`closing`). */
  private closeNotReading(client: Sink, state: ClientState, why: string): void {
    log("warn", "terminal.client_not_reading", `closing client ${state.id}: ${why}`, { client: state.id });
    const flow = this.flowOf(state);
    this.clients.delete(client);
    this.reading.closing(flow);
    this.closing.set(client, flow);
    this.host.onClientChanged(client, state);
    client.close(CLIENT_TOO_SLOW_CLOSE.code, CLIENT_TOO_SLOW_CLOSE.reason);
  }

  /** Sends a MARK covering everything sent so far. */
  private mark(client: Sink, flow: ClientFlow): void {
    client.send(encodeServerFrame({ t: "mark", mark: this.reading.mark(flow) }));
  }

  /**
   * The clients together have too much unread: holds the one, not yet held, with the most (and
   * more than CLIENT_UNREAD_RESUME_BYTES, or holding it would free nothing).
   */
  private holdMostUnread(): void {
    let most: [Sink, ClientState] | null = null;
    let mostUnread = CLIENT_UNREAD_RESUME_BYTES;
    for (const entry of this.clients) {
      const flow = this.flowOf(entry[1]);
      if (flow.held) continue;
      const unread = this.reading.unread(flow);
      if (unread > mostUnread) [most, mostUnread] = [entry, unread];
    }
    if (most && this.reading.total > TERMINAL_UNREAD_MAX_BYTES) this.hold(most[0], most[1]);
  }

  /** An ACK: empty, the client answers MARKs from now on; else the MARK it read (unknown ids are ignored). */
  private onAck(client: Sink, state: ClientState, id: Uint8Array): void {
    const flow = this.flowOf(state);
    if (id.byteLength === 0) {
      if (flow.acks) return;
      this.reading.optIn(flow);
      this.host.onClientChanged(client, state);
      if (flow.held) {
        // It is released by proving what it was sent, no longer by time.
        if (flow.timer !== undefined) clearTimeout(flow.timer);
        flow.timer = undefined;
        this.mark(client, flow);
      }
      return;
    }
    if (this.reading.proved(flow, id) && flow.held) this.release(client, state);
  }

  /**
   * Withholds output from a client that has too much unread; its position is kept, and a timer
   * releases it when the estimate is back under its resume point (client-reading.ts).
   */
  private hold(client: Sink, state: ClientState): void {
    const flow = this.flowOf(state);
    if (!flow.held) {
      flow.held = true;
      this.host.onClientChanged(client, state);
    }
    // A client that answers MARKs is released by its ACK of one covering all it was sent.
    if (flow.acks) {
      if (flow.markedAt !== flow.sent) this.mark(client, flow);
      return;
    }
    const wait = Math.ceil(((this.reading.unread(flow) - this.reading.resumeAt(flow)) * 1000) / CLIENT_READ_FLOOR_BYTES_PER_SEC);
    if (flow.timer !== undefined) clearTimeout(flow.timer);
    flow.timer = setTimeout(() => this.release(client, state), Math.max(0, wait));
  }

  /** A held client's estimate is low again: what it missed from the ring, or a repaint. */
  private release(client: Sink, state: ClientState): void {
    const flow = this.flowOf(state);
    if (flow.timer !== undefined) clearTimeout(flow.timer);
    flow.timer = undefined;
    if (!flow.held || this.clients.get(client) !== state) return;
    if (this.reading.unread(flow) > this.reading.resumeAt(flow)) return this.hold(client, state);
    flow.held = false;
    this.host.onClientChanged(client, state);
    if (state.paused) return; // its RESUME catches it up
    if (state.offset === null && !state.trustNext) {
      this.requestSnapshotIfNeeded(); // it was waiting for a repaint: it may have it now
      return;
    }
    this.catchUp(client, state);
  }

  /** Forgets a client (or one closed for not reading), its estimate and its timer. */
  private dropClient(client: Sink): void {
    const flow = this.clients.get(client)?.flow ?? this.closing.get(client);
    if (flow) this.reading.close(flow);
    this.clients.delete(client);
    this.closing.delete(client);
  }

  private onSnapshot(id: number, offset: number, snapshot: Uint8Array): void {
    if (id !== this.snapshotInFlight) return;
    this.snapshotInFlight = null;
    this.ring.unpin();
    const backlog = this.ring.from(offset);
    if (backlog === null || (this.received !== null && offset > this.received)) {
      this.requestSnapshotIfNeeded(); // the stream moved past what we hold: ask again
      return;
    }
    this.lastRepaint.arrived(snapshot, offset);
    this.repaintWaiting(snapshot, offset, backlog);
  }

  /**
   * The PTY was resized, at this point of the output stream. A read-only client cannot size the
   * terminal, so it mirrors the PTY's size: a live one gets INFO with the new size here, between
   * the output before the resize and the output after it; one waiting for a repaint gets it right
   * before the repaint; a paused or held one will be repainted on RESUME or release (what it missed
   * spans the resize, and replaying it would cross the size change unannounced). Writers size the
   * PTY themselves and are not told, unless they asked (`sizeUpdates`): a client that answers a
   * size it did not choose with its own RESIZE would resize the PTY back and forth with another
   * writer of a different size; the web app instead shows the PTY's size until its user types.
   */
  private tellViewersSize(): void {
    for (const [client, state] of this.clients) {
      if (!followsSize(state)) continue;
      if (state.paused || this.flowOf(state).held) this.markStale(state);
      else if (state.offset !== null || state.trustNext) this.sendInfo(client, state, true);
    }
  }

  /** Sends the client its INFO, noting the size and title it was told; with `ifResized`, only when that size is not the one it was last told. */
  private sendInfo(client: Sink, state: ClientState, ifResized = false): void {
    const f = this.host.info(state);
    const size = f.t === "info" ? `${f.info.cols}×${f.info.rows}` : undefined;
    if (ifResized && size === state.toldSize) return;
    state.toldSize = size;
    if (f.t === "info") state.toldTitle = f.info.title;
    this.send(client, state, encodeServerFrame(f));
  }

  /** Sends the client the current window title if it was last told another one (or none). */
  private sendTitleIfChanged(client: Sink, state: ClientState): void {
    const f = this.host.info(state);
    const title = f.t === "info" ? f.info.title : undefined;
    if (title === undefined || title === state.toldTitle) return;
    state.toldTitle = title;
    this.send(client, state, encodeServerFrame({ t: "title", title }));
  }

  /** Sends every client waiting for a repaint `snapshot` (covering output up to `offset`), then `backlog` from the ring. */
  private repaintWaiting(snapshot: Uint8Array, offset: number, backlog: RingFrame[]): void {
    for (const [client, state] of this.clients) {
      if (!this.waitsForRepaint(state)) continue;
      // A read-only client told another size (the PTY was resized since) learns the size first.
      if (followsSize(state)) this.sendInfo(client, state, true);
      this.send(client, state, snapshot);
      if (this.clients.get(client) !== state) continue; // closed: it was not reading
      state.offset = offset;
      for (const f of backlog) this.deliver(client, state, f);
      // Now at the stream's end: the title as it stands (a TITLE frame may have passed it by).
      this.sendTitleIfChanged(client, state);
    }
  }

  private waitsForRepaint(state: ClientState): boolean {
    return state.offset === null && !state.trustNext && !state.paused && !state.flow?.held;
  }

  /**
   * Repaints the waiting clients from the last snapshot when little output has followed it
   * (repaint-reuse.ts) and the ring still holds that output; false otherwise.
   */
  private reuseSnapshot(): boolean {
    const last = this.lastRepaint.usable(this.received);
    const backlog = last && this.ring.from(last.offset);
    if (!last || !backlog) return false;
    this.repaintWaiting(last.frame, last.offset, backlog);
    return true;
  }

  private markStale(state: ClientState): void {
    state.offset = null;
    state.trustNext = false;
  }

  private requestSnapshotIfNeeded(): void {
    if (!this.agent) return;
    let needed = false;
    for (const state of this.clients.values()) needed ||= this.waitsForRepaint(state);
    if (!needed || this.reuseSnapshot() || this.snapshotInFlight !== null) return;
    this.snapshotInFlight = ++this.snapshotSeq;
    this.lastRepaint.requested();
    // The repaint will cover output up to some offset at or past this one: keep what follows.
    this.ring.pin(this.received ?? 0);
    this.agent.send(encodeEdgeFrame({ t: "snapshot-request", id: this.snapshotInFlight }));
  }

  // --- client side ----------------------------------------------------------------------------

  /** A new client: INFO now, the repaint as soon as the agent's snapshot arrives. */
  addClient(sink: Sink, state: ClientState): void {
    this.clients.set(sink, state);
    this.sendInfo(sink, state);
    this.requestSnapshotIfNeeded();
  }

  /**
   * A client found after a wake-up, with what its attachment remembered; `reading` is what was kept
   * of its flow (client-reading.ts). A client that was held is held again, from the stale position
   * a repaint follows; one that answers MARKs is sent one to prove it read.
   */
  restoreClient(sink: Sink, state: ClientState, reading: SavedReading = {}): void {
    this.clients.set(sink, state);
    if (!reading.acks && !reading.held) return;
    const flow = (state.flow = this.reading.restore(reading));
    if (!reading.held) return;
    this.markStale(state);
    this.hold(sink, state);
    if (flow.acks) this.mark(sink, flow);
  }

  /** A client's socket is gone (its close or error event): its place and what was queued for it are free. */
  removeClient(sink: Sink): void {
    this.dropClient(sink);
  }

  onClientMessage(sink: Sink, message: ArrayBuffer | string): void {
    const state = this.clients.get(sink);
    if (!state) return;
    if (typeof message === "string") {
      // The limit is in bytes: a character is 1–3 UTF-8 bytes (4 for a pair of UTF-16 units).
      if (message.length > CLIENT_FRAME_MAX_BYTES) return this.refuse(sink, "FRAME_TOO_LARGE", "frame too large");
      const text = encoder.encode(message);
      if (text.byteLength > CLIENT_FRAME_MAX_BYTES) return this.refuse(sink, "FRAME_TOO_LARGE", "frame too large");
      return this.input(sink, state, frame(ClientOp.INPUT, text));
    }
    const bytes = new Uint8Array(message);
    if (bytes.byteLength > CLIENT_FRAME_MAX_BYTES) return this.refuse(sink, "FRAME_TOO_LARGE", "frame too large");
    let f;
    try {
      f = decodeClientFrame(bytes);
    } catch (error) {
      if (error instanceof LinkDecodeError) return this.refuse(sink, "INVALID_FRAME", error.message);
      throw error;
    }
    switch (f.t) {
      case "input":
        return this.input(sink, state, bytes);
      case "resize":
        return this.resize(sink, state, bytes);
      case "pause":
        if (!state.paused) {
          state.paused = true;
          this.host.onClientChanged(sink, state);
        }
        return;
      case "resume":
        if (state.paused) {
          state.paused = false;
          this.host.onClientChanged(sink, state);
          // A held client is caught up when it is released.
          if (!this.flowOf(state).held) this.catchUp(sink, state);
        }
        return;
      case "ping":
        this.send(sink, state, encodeServerFrame({ t: "pong", data: f.data }), true);
        return;
      case "ack":
        return this.onAck(sink, state, f.mark);
    }
  }

  /**
   * A client frame already known to be INPUT or RESIZE (`op`), from a client that speaks no
   * framing of its own (raw-terminal.ts builds the frame once; nothing decodes it again).
   */
  onClientFrame(sink: Sink, op: "input" | "resize", bytes: Uint8Array): void {
    const state = this.clients.get(sink);
    if (!state) return;
    if (bytes.byteLength > CLIENT_FRAME_MAX_BYTES) return this.refuse(sink, "FRAME_TOO_LARGE", "frame too large");
    if (op === "input") return this.input(sink, state, bytes);
    this.resize(sink, state, bytes);
  }

  /** A writer's RESIZE frame (also the agent's): forwarded now, or merged into the next one forwarded. */
  private resize(sink: Sink, state: ClientState, resizeFrame: Uint8Array): void {
    if (state.readonly) return this.refuse(sink, "READ_ONLY", "This client is read-only");
    if (!this.agent) return this.refuse(sink, "AGENT_OFFLINE", "The host's agent is offline");
    this.wantedResize = resizeFrame;
    if (this.resizeTimer === undefined) this.forwardWantedResize();
  }

  private forwardWantedResize(): void {
    const frame = this.wantedResize;
    this.wantedResize = null;
    this.resizeTimer = undefined;
    if (frame === null || !this.agent) return;
    this.lastRepaint.sizeChanged();
    this.agent.send(frame);
    this.resizeTimer = setTimeout(() => this.forwardWantedResize(), RESIZE_FORWARD_INTERVAL_MS);
  }

  private input(sink: Sink, state: ClientState, inputFrame: Uint8Array): void {
    if (state.readonly) return this.refuse(sink, "READ_ONLY", "This client is read-only");
    if (!this.agent) return this.refuse(sink, "AGENT_OFFLINE", "The host's agent is offline; input was not delivered");
    // Past the window the agent has not acknowledged, input is refused, not buffered here.
    if (!this.inputWindow.take(sink, inputFrame.byteLength - 1)) return this.refuseInput(sink, inputFrame.byteLength - 1);
    this.agent.send(inputFrame);
  }

  /** Tells a client (if still here) that `bytes` of its input were refused: the program is not reading. */
  private refuseInput(sink: Sink, bytes: number): void {
    const state = this.clients.get(sink);
    if (state) this.send(sink, state, encodeServerFrame(inputBacklogError(bytes)), true);
  }

  /** A resumed client gets what it missed from the ring, or a fresh repaint if it missed a lot. */
  private catchUp(sink: Sink, state: ClientState): void {
    const behind = state.offset !== null && this.received !== null ? this.received - state.offset : Infinity;
    const missed = behind <= CATCH_UP_MAX_BYTES ? this.ring.from(state.offset!) : null;
    if (missed) {
      for (const f of missed) this.deliver(sink, state, f);
      // A TITLE passes a held client by (it would come ahead of the output before it): now it is at the end.
      if (this.clients.get(sink) === state && state.offset === this.received) this.sendTitleIfChanged(sink, state);
      return;
    }
    this.markStale(state);
    this.requestSnapshotIfNeeded();
  }


  private refuse(sink: Sink, code: string, message: string): void {
    const state = this.clients.get(sink);
    if (state) this.send(sink, state, encodeServerFrame({ t: "error", error: { code, message } }), true);
  }

  // --- both -----------------------------------------------------------------------------------

  private broadcast(f: ServerFrame): void {
    const bytes = encodeServerFrame(f);
    for (const [client, state] of this.clients) this.send(client, state, bytes);
  }

  /**
   * The edge is ending the session (`deleted`, `idle`): the EXIT that follows — the agent's, for
   * the kill, or the HostDO's — says so, rather than only the signal that ended the shell. Null
   * takes it back (the DELETE failed). Kept in memory only: words for the clients, not state.
   */
  endingBecause(reason: ExitReason | null): void {
    this.endReason = reason;
  }

  /** The session ended: (ERROR and) EXIT to every client, then close everything. */
  exit(exit: ExitInfo): void {
    if (this.endReason !== null && exit.reason === undefined) exit = { ...exit, reason: this.endReason };
    this.endReason = null;
    // A failure (an SSH login refused…) is said as an ERROR first, then the EXIT carries it too.
    if (exit.error) this.broadcast({ t: "error", error: exit.error });
    this.broadcast({ t: "exit", exit });
    for (const client of [...this.clients.keys()]) {
      this.dropClient(client);
      client.close(1000, "session ended");
    }
    this.agent?.close(1000, "session ended");
    this.agent = null;
    if (this.resizeTimer !== undefined) clearTimeout(this.resizeTimer);
    this.resizeTimer = undefined;
    this.wantedResize = null;
    this.ring.clear();
    this.lastRepaint.drop();
    this.received = null;
    this.host.onExit(exit);
  }
}

