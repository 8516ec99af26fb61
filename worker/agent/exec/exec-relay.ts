/**
 * The agent end of the /execute relay (shared/links/exec.ts): takes exec.* messages the control
 * link decoded, runs them on an ExecManager and sends the answers back through `send`. Streams are
 * paced by the edge's acknowledgements (at most EXEC_STREAM_WINDOW_BYTES unacknowledged) and
 * coalesced into frames of about EXEC_STREAM_FRAME_BYTES. Calls in flight live in the agent's one
 * request table (a Correlator shared with the control requests). Nothing that arrives can make it
 * throw.
 */
import { LINK_INFLIGHT_MAX } from "../../../shared/links/control.ts";
import { Correlator } from "../../../shared/links/correlator.ts";
import type { LinkDecodeError } from "../../../shared/links/codec.ts";
import { EXEC_STREAM_FRAME_BYTES, EXEC_STREAM_WINDOW_BYTES, isStreamOp } from "../../../shared/links/exec.ts";
import type { ExecAgentMsg, ExecEdgeMsg } from "../../../shared/links/exec.ts";
import { OtCode, ndjsonLine, otError } from "../../../shared/open-terminal.ts";
import type { ExecuteCall, HttpReply } from "../../../shared/open-terminal.ts";
import { ExecError, type ExecCaller } from "./exec-caller.ts";
import type { ExecManager } from "./exec-manager.ts";
import type { ExecStream } from "./exec-stream.ts";

/** Requests in flight at once on one link; more are answered 429. */
export const RELAY_MAX_INFLIGHT = 256;

/** One execute call in flight, in the agent's request table. */
export interface ExecRelayJob {
  kind: "exec";
  abort: AbortController;
  stream?: ExecStream;
  unacked: number;
  wake?: () => void;
}

/** Any other kind of entry in the same table (the agent's control requests). */
export interface OtherJob {
  kind: "control";
  abort: AbortController;
}

export class ExecRelay {
  /**
   * `jobs` is the agent's request table for the control link (one per link, shared with the
   * control requests); a relay on its own gets a table of its own.
   */
  constructor(
    private readonly manager: ExecManager,
    private readonly send: (msg: ExecAgentMsg) => void,
    private readonly jobs: Correlator<ExecRelayJob | OtherJob> = new Correlator(LINK_INFLIGHT_MAX),
  ) {}

  /** One exec message the control link decoded. */
  handle(msg: ExecEdgeMsg): void {
    switch (msg.t) {
      case "exec.req":
        this.request(msg);
        return;
      case "exec.ack": {
        const job = this.job(msg.id);
        if (job) {
          job.unacked = Math.max(0, job.unacked - msg.bytes);
          this.wake(job);
        }
        return;
      }
      case "exec.cancel":
        this.cancel(msg.id);
        return;
    }
  }

  /** An exec message the control link refused: a request whose id could be read is answered 400. */
  refused(error: LinkDecodeError): void {
    if (error.id !== null && error.t === "exec.req" && !this.jobs.get(error.id)) {
      this.reply(error.id, otError(400, OtCode.BAD_RELAY, error.message));
    }
  }

  /** The control link is gone: streams are killed, waits end, nothing more is sent for them. */
  closeAll(): void {
    for (const [, job] of this.jobs.drain()) {
      if (job.kind === "exec") this.stop(job);
      else job.abort.abort();
    }
  }

  private job(id: number): ExecRelayJob | undefined {
    const job = this.jobs.get(id);
    return job?.kind === "exec" ? job : undefined;
  }

  private request(msg: Extract<ExecEdgeMsg, { t: "exec.req" }>): void {
    const { id } = msg;
    if (this.jobs.get(id)) {
      this.reply(id, otError(400, OtCode.BAD_RELAY, `request ${id} is already in flight`));
      return;
    }
    const job: ExecRelayJob = { kind: "exec", abort: new AbortController(), unacked: 0 };
    if (this.jobs.count("exec") >= RELAY_MAX_INFLIGHT || !this.jobs.accept(id, job)) {
      this.reply(id, otError(429, OtCode.TOO_MANY_REQUESTS, "Too many execute requests in flight"));
      return;
    }
    const { op } = msg;
    const caller: ExecCaller = { scope: msg.scope, session: msg.session, ...(msg.user !== undefined ? { user: msg.user } : {}) };
    if (op.op === "execute" && isStreamOp(op)) {
      void this.pump(id, job, op.call, caller);
      return;
    }
    void this.manager.handle(op, caller, job.abort.signal).then((reply) => {
      // Gone: cancelled, the edge no longer listens.
      if (this.jobs.take(id, job)) this.reply(id, reply);
    });
  }

  private async pump(rid: number, job: ExecRelayJob, call: ExecuteCall, caller: ExecCaller): Promise<void> {
    let stream: ExecStream;
    try {
      stream = await this.manager.stream(call.spec, call.mode === "stream" ? call.timeout : null, caller);
    } catch (e) {
      if (!this.jobs.take(rid, job)) return;
      this.reply(rid, e instanceof ExecError ? e.reply : otError(500, OtCode.INTERNAL, `Internal error: ${String(e)}`));
      return;
    }
    if (job.abort.signal.aborted) {
      stream.cancel();
      return;
    }
    job.stream = stream;
    if (!this.emit({ t: "exec.head", id: rid })) return;
    for (;;) {
      while (job.unacked >= EXEC_STREAM_WINDOW_BYTES && !job.abort.signal.aborted) {
        await new Promise<void>((resolve) => (job.wake = resolve));
      }
      if (job.abort.signal.aborted) return;
      const batch = await stream.take(EXEC_STREAM_FRAME_BYTES);
      if (job.abort.signal.aborted) return;
      if (batch.length === 0) break;
      const ndjson = batch.map(ndjsonLine).join("");
      job.unacked += ndjson.length;
      if (!this.emit({ t: "exec.data", id: rid, ndjson })) return;
    }
    if (this.jobs.take(rid, job)) this.emit({ t: "exec.end", id: rid });
  }

  private cancel(id: number): void {
    const job = this.job(id);
    if (!job) return;
    this.jobs.take(id, job);
    this.stop(job);
  }

  private stop(job: ExecRelayJob): void {
    job.abort.abort();
    job.stream?.cancel();
    this.wake(job);
  }

  private wake(job: ExecRelayJob): void {
    const wake = job.wake;
    job.wake = undefined;
    wake?.();
  }

  private reply(id: number, reply: HttpReply): void {
    this.emit({ t: "exec.res", id, status: reply.status, body: reply.body });
  }

  /** Sends; a failed send (link closing) cancels the request. */
  private emit(msg: ExecAgentMsg): boolean {
    try {
      this.send(msg);
      return true;
    } catch {
      this.cancel(msg.id);
      return false;
    }
  }
}
