/**
 * What each terminal client may have left unread, estimated at the edge.
 *
 * workerd's WebSocket has no `bufferedAmount` (workerd#988): what `send()` is given for a peer
 * that does not read waits in the Durable Object's memory, without limit. So the hub counts every
 * byte it sends a client, and takes as read what the client proves or what time vouches for:
 *
 * - a client that answers MARKs (it sent an empty ACK once, as the web app and the SDK do) is sent
 *   a MARK with a random id after every CLIENT_MARK_EVERY_BYTES; its ACK of that id proves it read
 *   everything before it (it cannot know the id without reading up to it). Its estimate is exact:
 *   sent less proven.
 * - a client that proves nothing (seed 002's clients, Open Terminal raw sockets) is assumed to
 *   read CLIENT_READ_FLOOR_BYTES_PER_SEC; its estimate falls by that much per second.
 *
 * The hub holds a client (sends it no output) whose estimate would pass its limit
 * (`ReadLedger.limit`), and the client with the most unread whenever the terminal's clients
 * together pass TERMINAL_UNREAD_MAX_BYTES; a held client is caught up or repainted once its
 * estimate is low again. Nothing here slows the PTY or another client.
 *
 * A client closed for not reading stays counted (`closing`) until its socket is gone: workerd
 * cannot drop a socket's queue, so what was sent to it stays in memory until the peer reads it or
 * its connection dies. What a woken Durable Object must know of a client's reading is kept with
 * its socket (`SavedReading`).
 */
import { MARK_BYTES } from "../shared/links/client.ts";

/**
 * Most unread output for a client that answers MARKs, in bytes. It is the bandwidth-delay product
 * a reader may need: 40 MB/s of output to a browser 400 ms of round trip away. A reader never
 * comes near it; a stalled one costs at most this.
 */
export const CLIENT_UNREAD_MAX_BYTES = 16 << 20; // 16 MiB
/** Most unread output, as estimated, for a client that proves nothing, in bytes. */
export const CLIENT_UNPROVEN_MAX_BYTES = 4 << 20; // 4 MiB
/**
 * Most unread output for all of a terminal's clients together, in bytes: past it the client with
 * the most unread is held, so a crowd of stalled clients (one share link, many sockets) costs the
 * Durable Object no more than this.
 */
export const TERMINAL_UNREAD_MAX_BYTES = 256 << 20; // 256 MiB
/** A held client that answers MARKs is sent output again once its estimate is under this, in bytes. */
export const CLIENT_UNREAD_RESUME_BYTES = 1 << 20; // 1 MiB
/**
 * A held client that proves nothing is sent output again once its estimate is under this, in
 * bytes: 1 MiB under its limit, so at CLIENT_READ_FLOOR_BYTES_PER_SEC it waits about a second, and
 * a screen that showed a flood shows its end about a second after the flood stopped. (From 4 MiB
 * to 1 MiB it waited 3 s.) What it costs while stalled is the same: the assumed rate.
 */
export const CLIENT_UNPROVEN_RESUME_BYTES = CLIENT_UNPROVEN_MAX_BYTES - (1 << 20); // 3 MiB
/**
 * The reading rate assumed of a client that proves nothing, in bytes per second. It is what such a
 * client can cost while it is stalled and output floods (the edge cannot tell it from a slow
 * reader); one that reads faster is held and skipped forward in a flood, which no person reading a
 * terminal notices (a flood scrolls faster than anyone reads). After a 4 MiB burst it waits about
 * a second for its catch-up (CLIENT_UNPROVEN_RESUME_BYTES).
 */
export const CLIENT_READ_FLOOR_BYTES_PER_SEC = 1 << 20; // 1 MiB/s
/**
 * A client whose estimate passes this is closed with CLIENT_TOO_SLOW_CLOSE (4008), in bytes. Output
 * stops at the client's limit, so only frames a client provokes itself (PONGs to its PINGs,
 * ERRORs to refused input) can take it here: a client that sends and never reads.
 */
export const CLIENT_UNREAD_CLOSE_BYTES = CLIENT_UNREAD_MAX_BYTES + (4 << 20); // 20 MiB
/** A client that answers MARKs is sent one after every this many bytes, in bytes. */
export const CLIENT_MARK_EVERY_BYTES = 256 << 10; // 256 KiB
/** Most MARKs awaiting their ACK per client (the oldest are forgotten first). */
export const CLIENT_MARKS_MAX = 64;
/** Close code and reason for a client over CLIENT_UNREAD_CLOSE_BYTES. */
export const CLIENT_TOO_SLOW_CLOSE = { code: 4008, reason: "client not reading" } as const;

/** One client's reading, as far as the edge knows it (in memory; a woken DO restores only its SavedReading). */
export interface ClientFlow {
  /** Bytes sent to the client and not known to be read, as of `at`. */
  unread: number;
  /** When `unread` was last brought up to date, in ms (the ledger's clock). */
  at: number;
  /** Output is withheld until `unread` is under its resume point (`ReadLedger.resumeAt`). */
  held: boolean;
  /** The timer that releases a held client that proves nothing. */
  timer?: ReturnType<typeof setTimeout>;
  /** The client answers MARKs: `unread` falls only by its ACKs, not with time. */
  acks: boolean;
  /** Bytes sent to the client in all. */
  sent: number;
  /** `sent` when the last MARK went out. */
  markedAt: number;
  /** MARKs awaiting their ACK: id (hex) → `sent` when it went out; at most CLIENT_MARKS_MAX. */
  marks: Map<string, number>;
}

/**
 * What a host keeps of a client's reading across a wake-up (a woken Durable Object has lost its
 * memory, not its sockets): that it answers MARKs, and that it is held. Without it a client that
 * answers MARKs would be taken for one that proves nothing (4 MiB, 1 MiB/s), and a held one that
 * does not read would be sent its limit again after every wake-up.
 */
export interface SavedReading {
  acks?: true;
  held?: true;
}

/** The SavedReading of a client's flow (none yet: nothing to keep). */
export function savedReading(flow: ClientFlow | undefined): SavedReading {
  return { ...(flow?.acks ? { acks: true as const } : {}), ...(flow?.held ? { held: true as const } : {}) };
}

function hexOf(bytes: Uint8Array): string {
  let hex = "";
  for (const b of bytes) hex += b.toString(16).padStart(2, "0");
  return hex;
}

/** The estimates of one terminal's clients, and their sum. */
export class ReadLedger {
  /** The sum of every client's `unread` as last brought up to date, in bytes (an upper bound of the true sum). */
  private sum = 0;
  /** Every open client's flow (one per client of the terminal, so bounded by its client limit). */
  private readonly flows = new Set<ClientFlow>();

  /** `now` is the clock, in ms (tests pass their own). */
  constructor(private readonly now: () => number = () => Date.now()) {}

  /** A new client's flow: nothing unread, proving nothing yet. */
  open(): ClientFlow {
    const flow: ClientFlow = { unread: 0, at: this.now(), held: false, acks: false, sent: 0, markedAt: 0, marks: new Map() };
    this.flows.add(flow);
    return flow;
  }

  /**
   * A client's flow after a wake-up, from what was kept of it. A held client's estimate is taken
   * to be its limit (what it may still have queued); the caller holds it again.
   */
  restore(saved: SavedReading): ClientFlow {
    const flow = this.open();
    flow.acks = saved.acks === true;
    if (saved.held) this.set(flow, this.limit(flow));
    return flow;
  }

  /**
   * A client closed for not reading, whose socket is not gone yet: its estimate stays counted and
   * no longer falls with time (nothing it does proves reading now), and it stays held.
   */
  closing(flow: ClientFlow): void {
    if (flow.timer !== undefined) clearTimeout(flow.timer);
    flow.timer = undefined;
    this.unread(flow);
    flow.acks = true;
    flow.held = true;
    flow.marks.clear();
  }

  /** Forgets a client that left (stops its timer). */
  close(flow: ClientFlow): void {
    if (flow.timer !== undefined) clearTimeout(flow.timer);
    flow.timer = undefined;
    this.set(flow, 0);
    this.flows.delete(flow);
  }

  /** Unread output of all clients together, in bytes (at most what it truly is now plus what time has vouched for since). */
  get total(): number {
    return this.sum;
  }

  /**
   * Whether the clients together have more than `bytes` unread now. The running sum is an upper
   * bound (estimates of clients that prove nothing fall with time but are brought up to date only
   * when used): only when it says so are they all brought up to date, so the answer is exact.
   */
  over(bytes: number): boolean {
    if (this.sum <= bytes) return false;
    for (const flow of this.flows) this.unread(flow);
    return this.sum > bytes;
  }

  /** The client's estimate now, in bytes: sent less what it proved or, proving nothing, what time vouches for. */
  unread(flow: ClientFlow): number {
    const now = this.now();
    // Whole bytes (what time vouches for, rounded down), so the sum stays exact as clients come and go.
    if (!flow.acks) this.set(flow, Math.max(0, flow.unread - Math.floor(((now - flow.at) * CLIENT_READ_FLOOR_BYTES_PER_SEC) / 1000)));
    flow.at = now;
    return flow.unread;
  }

  /** The most the client may have unread before it is held, in bytes. */
  limit(flow: ClientFlow): number {
    return flow.acks ? CLIENT_UNREAD_MAX_BYTES : CLIENT_UNPROVEN_MAX_BYTES;
  }

  /** Where a held client is released, in bytes of estimated unread. */
  resumeAt(flow: ClientFlow): number {
    return flow.acks ? CLIENT_UNREAD_RESUME_BYTES : CLIENT_UNPROVEN_RESUME_BYTES;
  }

  /** `bytes` went to the client (one that is open). True when it is due a MARK. */
  sent(flow: ClientFlow, bytes: number): boolean {
    this.set(flow, flow.unread + bytes);
    flow.sent += bytes;
    return flow.acks && flow.sent - flow.markedAt >= CLIENT_MARK_EVERY_BYTES;
  }

  /** A MARK's id covering everything sent so far, remembered until its ACK (or until CLIENT_MARKS_MAX newer ones). */
  mark(flow: ClientFlow): Uint8Array {
    const id = crypto.getRandomValues(new Uint8Array(MARK_BYTES));
    flow.markedAt = flow.sent;
    flow.marks.set(hexOf(id), flow.sent);
    if (flow.marks.size > CLIENT_MARKS_MAX) flow.marks.delete(flow.marks.keys().next().value!);
    return id;
  }

  /** The client says it answers MARKs (an empty ACK): what time vouched for so far stays vouched for. */
  optIn(flow: ClientFlow): void {
    if (flow.acks) return;
    this.unread(flow);
    flow.acks = true;
  }

  /** An ACK of the MARK `id`; false for an id not awaiting one (unknown, forgotten, or from a client that did not opt in). */
  proved(flow: ClientFlow, id: Uint8Array): boolean {
    const at = flow.marks.get(hexOf(id));
    if (at === undefined || !flow.acks) return false;
    for (const [key, sentAt] of flow.marks) {
      if (sentAt > at) break;
      flow.marks.delete(key);
    }
    this.set(flow, Math.min(flow.unread, flow.sent - at));
    return true;
  }

  private set(flow: ClientFlow, unread: number): void {
    this.sum += unread - flow.unread;
    flow.unread = unread;
  }
}
