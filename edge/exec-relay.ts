/**
 * The edge end of the /execute relay (shared/links/exec.ts), run inside the HostDO, which owns
 * the agent's control link and its one request table (Correlator): exec calls take their ids
 * there, beside the control requests. It turns one Open Terminal execute call into an exec.req, waits for
 * the agent's exec.res (a JSON answer) or exec.head (a stream), and for streams writes each
 * exec.data into the HTTP response as it arrives, acknowledging it once the response has taken
 * it. workerd's identity TransformStream resolves a write only when the reader has pulled the
 * chunk, so an ack means "the client is keeping up"; the agent keeps at most
 * EXEC_STREAM_WINDOW_BYTES unacknowledged, which bounds what sits here per stream.
 *
 * Nothing is left hanging: a client that goes away cancels the call (exec.cancel: a wait ends, a
 * stream's command is killed), before its answer too (the request's signal), a reply that
 * does not come in time is a 504, and when the agent goes away every waiting call is answered 503
 * and every stream is ended.
 *
 * workerd notices that an HTTP client went away only when it next writes to the response (the
 * cancellation does not reach a Durable Object's stream otherwise, and zero-byte writes do not
 * count). So a stream that has been silent for STREAM_PROBE_INTERVAL_MS gets one space: JSON
 * allows whitespace before a value, so the next line still parses, and a gone client is found.
 */
import * as v from "valibot";
import { EXEC_SCOPE_MAX_CHARS, EXEC_SESSION_MAX_CHARS, EXEC_USER_MAX_CHARS, ExecOpSchema, isStreamOp, replyDeadlineMs } from "../shared/links/exec.ts";
import type { ExecAgentMsg, ExecEdgeMsg, ExecOp } from "../shared/links/exec.ts";
import { NDJSON_CONTENT_TYPE } from "../shared/open-terminal.ts";
import { agentWentAway, AgentRelay, answerOnce, offline, type HttpWaiter } from "./agent-send.ts";
import { ApiError, errorResponse } from "./errors.ts";
import { jsonAnswer } from "./http.ts";

/** Execute calls in flight at once per server (waiting or streaming); more are answered 429. */
export const EXEC_MAX_INFLIGHT = 256;
/** The HostDO path execute calls are fetched at (see `execRequest`). */
export const EXEC_PATH = "/exec";
/** Largest execute call the Worker hands the HostDO, in bytes. */
const EXEC_CALL_MAX_BYTES = 4 << 20; // 4 MiB

/** A silent stream is probed (one space) this often, to find clients that went away, in ms. */
export const STREAM_PROBE_INTERVAL_MS = 2_000;

const PROBE = new Uint8Array([0x20]); // " "
/** The last line of a stream: after it nothing (not even a probe) may be written. */
const EXIT_LINE = /\{"type": "exit", "data": -?\d+\}\n$/;

/** One execute call in the HostDO's request table. */
export interface ExecJob extends HttpWaiter {
  kind: "exec";
  id: number;
  timer: ReturnType<typeof setTimeout> | null;
  probe: ReturnType<typeof setInterval> | null;
  /** When bytes were last written into the response (epoch ms). */
  wroteAt: number;
  /** The exit line has been written: the stream is complete. */
  exited: boolean;
}

const encoder = new TextEncoder();

/** The body of an `execRequest`: the caller's scope, its `X-Session-Id`, its `X-User-Id` and its validated call. */
const ExecCallSchema = v.object({
  scope: v.pipe(v.string(), v.maxLength(EXEC_SCOPE_MAX_CHARS)),
  session: v.optional(v.pipe(v.string(), v.maxLength(EXEC_SESSION_MAX_CHARS)), ""),
  user: v.optional(v.pipe(v.string(), v.maxLength(EXEC_USER_MAX_CHARS))),
  op: ExecOpSchema,
});

/** The request the Worker sends the HostDO for one validated execute call (`user`: the `X-User-Id`, if sent). */
export function execRequest(scope: string, op: ExecOp, session = "", user?: string, signal?: AbortSignal): Request {
  return new Request(`https://host${EXEC_PATH}`, { method: "POST", body: JSON.stringify({ scope, session, user, op }), ...(signal ? { signal } : {}) });
}

export class EdgeExecRelay extends AgentRelay<ExecJob> {
  protected readonly kind = "exec";

  /** Answers an `execRequest` from the Worker. */
  async fetch(request: Request): Promise<Response> {
    const text = await request.text();
    let call: unknown = null;
    try {
      if (text.length <= EXEC_CALL_MAX_BYTES) call = JSON.parse(text);
    } catch {
      call = null;
    }
    const checked = v.safeParse(ExecCallSchema, call);
    if (!checked.success) return errorResponse("open-terminal", new ApiError(400, "BAD_EXEC_CALL", "Malformed execute call"));
    return this.start(checked.output.scope, checked.output.op, checked.output.session, checked.output.user, request.signal);
  }

  /**
   * Relays one validated call; resolves with the HTTP answer (never rejects). `left`: aborts when
   * the client goes away; before the answer, that ends the call here and at the agent (a wait
   * ends early, a command started for a stream is killed).
   */
  start(scope: string, op: ExecOp, session = "", user?: string, left?: AbortSignal): Promise<Response> {
    if (!this.online()) return Promise.resolve(offline());
    const busy = () => errorResponse("open-terminal", new ApiError(429, "TOO_MANY_REQUESTS", `At most ${EXEC_MAX_INFLIGHT} execute calls in flight per server`));
    if (this.size >= EXEC_MAX_INFLIGHT) return Promise.resolve(busy());
    return new Promise((resolve) => {
      const job: ExecJob = { kind: "exec", id: 0, resolve, timer: null, writer: null, probe: null, wroteAt: 0, exited: false };
      const id = this.table.open(job);
      if (id === null) return resolve(busy());
      job.id = id;
      const deadline = replyDeadlineMs(op);
      if (deadline !== null) job.timer = setTimeout(() => this.timedOut(job, isStreamOp(op)), deadline);
      if (!this.send({ t: "exec.req", id, scope, session, ...(user !== undefined ? { user } : {}), op })) {
        this.forget(job);
        resolve(offline());
        return;
      }
      left?.addEventListener("abort", () => this.abandoned(job), { once: true });
    });
  }

  /** One exec message from the agent, already checked by the control link's decoder. */
  onAgentMessage(msg: ExecAgentMsg): void {
    const job = this.entry(msg.id);
    if (!job) {
      // Nobody listens any more (timed out, client gone): make sure the agent stops too.
      if (msg.t === "exec.head" || msg.t === "exec.data") this.send({ t: "exec.cancel", id: msg.id });
      return;
    }
    switch (msg.t) {
      case "exec.res":
        if (!job.resolve) return;
        answerOnce(job, jsonAnswer(msg.body, msg.status));
        this.forget(job);
        return;
      case "exec.head":
        if (job.resolve) this.openStream(job);
        return;
      case "exec.data":
        if (job.writer) this.write(job, job.writer, msg.ndjson);
        return;
      case "exec.end":
        this.forget(job);
        job.writer?.close().catch(() => {});
        return;
    }
  }

  /** The agent sent a malformed frame for call `id`: answer 502, or cut its stream short. */
  badReply(id: number): void {
    const job = this.entry(id);
    if (!job) return;
    this.forget(job);
    this.send({ t: "exec.cancel", id });
    if (job.resolve) answerOnce(job, errorResponse("open-terminal", new ApiError(502, "AGENT_BAD_REPLY", "The host's agent sent a malformed answer")));
    job.writer?.abort(new Error("the host's agent sent a malformed frame")).catch(() => {});
  }

  /**
   * The control link is gone (closed, or replaced by a newer one): the agent has dropped every
   * call of the old link, so waiting calls are answered 503 and streams are cut short. `jobs` are
   * the exec calls the HostDO drained from its request table.
   */
  agentGone(jobs: readonly ExecJob[]): void {
    for (const job of jobs) {
      this.forget(job);
      agentWentAway(job);
    }
  }

  private openStream(job: ExecJob): void {
    if (job.timer) clearTimeout(job.timer);
    job.timer = null;
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const writer = writable.getWriter();
    job.writer = writer;
    // The HTTP client went away (the response body was cancelled): kill the command.
    writer.closed.catch(() => this.clientGone(job));
    job.wroteAt = Date.now();
    job.probe = setInterval(() => {
      if (job.exited || Date.now() - job.wroteAt < STREAM_PROBE_INTERVAL_MS) return;
      job.wroteAt = Date.now();
      writer.write(PROBE).catch(() => this.clientGone(job));
    }, STREAM_PROBE_INTERVAL_MS);
    answerOnce(
      job,
      new Response(readable, {
        status: 200,
        headers: { "Content-Type": NDJSON_CONTENT_TYPE, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff" },
      }),
    );
  }

  private write(job: ExecJob, writer: WritableStreamDefaultWriter<Uint8Array>, ndjson: string): void {
    job.wroteAt = Date.now();
    job.exited ||= EXIT_LINE.test(ndjson);
    writer.write(encoder.encode(ndjson)).then(
      () => {
        if (this.table.get(job.id) === job) this.send({ t: "exec.ack", id: job.id, bytes: ndjson.length });
      },
      () => this.clientGone(job),
    );
  }

  /** The client left before its answer: the call ends here and at the agent. */
  private abandoned(job: ExecJob): void {
    if (!job.resolve || this.table.get(job.id) !== job) return;
    this.clientGone(job);
    answerOnce(job, errorResponse("open-terminal", new ApiError(499, "CLIENT_GONE", "The client went away before the answer")));
  }

  private clientGone(job: ExecJob): void {
    if (this.table.get(job.id) !== job) return;
    this.forget(job);
    this.send({ t: "exec.cancel", id: job.id });
  }

  private timedOut(job: ExecJob, stream: boolean): void {
    if (this.table.get(job.id) !== job || !job.resolve) return;
    this.forget(job);
    this.send({ t: "exec.cancel", id: job.id });
    const what = stream ? "start the command" : "answer";
    answerOnce(job, errorResponse("open-terminal", new ApiError(504, "AGENT_TIMEOUT", `The host's agent did not ${what} in time`)));
  }

  private forget(job: ExecJob): void {
    if (job.timer) clearTimeout(job.timer);
    job.timer = null;
    if (job.probe) clearInterval(job.probe);
    job.probe = null;
    this.table.take(job.id, job);
  }

  private send(msg: ExecEdgeMsg): boolean {
    return this.toAgent(msg);
  }
}
