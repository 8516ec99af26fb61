/**
 * The agent end of the /execute relay (shared/exec-protocol.ts): takes exec.* messages from the
 * control link, runs them on an ExecManager and sends the answers back through `send`. Streams are
 * paced by the edge's acknowledgements (at most EXEC_STREAM_WINDOW_BYTES unacknowledged) and
 * coalesced into frames of about EXEC_STREAM_FRAME_BYTES. Nothing that arrives can make it throw.
 */
import { EXEC_STREAM_FRAME_BYTES, EXEC_STREAM_WINDOW_BYTES, checkExecEdgeMsg, isStreamOp } from "../../../shared/exec-protocol.ts";
import type { ExecAgentMsg, ExecEdgeMsg } from "../../../shared/exec-protocol.ts";
import { OtCode, ndjsonLine, otError } from "../../../shared/open-terminal.ts";
import type { ExecuteCall, HttpReply } from "../../../shared/open-terminal.ts";
import { ExecError } from "./exec-manager.ts";
import type { ExecCaller, ExecManager } from "./exec-manager.ts";
import type { ExecStream } from "./exec-stream.ts";

/** Requests in flight at once on one link; more are answered 429. */
export const RELAY_MAX_INFLIGHT = 256;

interface Job {
  abort: AbortController;
  stream?: ExecStream;
  unacked: number;
  wake?: () => void;
}

export class ExecRelay {
  private readonly jobs = new Map<number, Job>();

  constructor(
    private readonly manager: ExecManager,
    private readonly send: (msg: ExecAgentMsg) => void,
  ) {}

  /** One decoded control frame whose `t` starts with `exec.`. */
  handle(raw: unknown): void {
    const msg = checkExecEdgeMsg(raw);
    if ("error" in msg) {
      if (msg.rid !== null) this.reply(msg.rid, otError(400, OtCode.BAD_RELAY, msg.error));
      return;
    }
    switch (msg.t) {
      case "exec.req":
        this.request(msg);
        return;
      case "exec.ack": {
        const job = this.jobs.get(msg.rid);
        if (job) {
          job.unacked = Math.max(0, job.unacked - msg.bytes);
          this.wake(job);
        }
        return;
      }
      case "exec.cancel":
        this.cancel(msg.rid);
        return;
    }
  }

  /** The control link is gone: streams are killed, waits end, nothing more is sent for them. */
  closeAll(): void {
    for (const rid of [...this.jobs.keys()]) this.cancel(rid);
  }

  private request(msg: Extract<ExecEdgeMsg, { t: "exec.req" }>): void {
    if (this.jobs.has(msg.rid)) {
      this.reply(msg.rid, otError(400, OtCode.BAD_RELAY, `request ${msg.rid} is already in flight`));
      return;
    }
    if (this.jobs.size >= RELAY_MAX_INFLIGHT) {
      this.reply(msg.rid, otError(429, OtCode.TOO_MANY_REQUESTS, "Too many execute requests in flight"));
      return;
    }
    const job: Job = { abort: new AbortController(), unacked: 0 };
    this.jobs.set(msg.rid, job);
    const { op } = msg;
    const caller = { scope: msg.scope, session: msg.session ?? "" };
    if (op.op === "execute" && isStreamOp(op)) {
      void this.pump(msg.rid, job, op.call, caller);
      return;
    }
    void this.manager.handle(op, caller, job.abort.signal).then((reply) => {
      if (this.jobs.get(msg.rid) !== job) return; // cancelled: the edge no longer listens
      this.jobs.delete(msg.rid);
      this.reply(msg.rid, reply);
    });
  }

  private async pump(rid: number, job: Job, call: ExecuteCall, caller: ExecCaller): Promise<void> {
    let stream: ExecStream;
    try {
      stream = await this.manager.stream(call.spec, call.mode === "stream" ? call.timeout : null, caller);
    } catch (e) {
      if (this.jobs.get(rid) !== job) return;
      this.jobs.delete(rid);
      this.reply(rid, e instanceof ExecError ? e.reply : otError(500, OtCode.INTERNAL, `Internal error: ${String(e)}`));
      return;
    }
    if (job.abort.signal.aborted) {
      stream.cancel();
      return;
    }
    job.stream = stream;
    if (!this.emit({ t: "exec.head", rid })) return;
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
      if (!this.emit({ t: "exec.data", rid, ndjson })) return;
    }
    this.jobs.delete(rid);
    this.emit({ t: "exec.end", rid });
  }

  private cancel(rid: number): void {
    const job = this.jobs.get(rid);
    if (!job) return;
    this.jobs.delete(rid);
    job.abort.abort();
    job.stream?.cancel();
    this.wake(job);
  }

  private wake(job: Job): void {
    const wake = job.wake;
    job.wake = undefined;
    wake?.();
  }

  private reply(rid: number, reply: HttpReply): void {
    this.emit({ t: "exec.res", rid, status: reply.status, body: reply.body });
  }

  /** Sends; a failed send (link closing) cancels the request. */
  private emit(msg: ExecAgentMsg): boolean {
    try {
      this.send(msg);
      return true;
    } catch {
      this.cancel(msg.rid);
      return false;
    }
  }
}
