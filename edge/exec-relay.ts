/**
 * The edge end of the /execute relay (shared/exec-protocol.ts), run inside the HostDO, which owns
 * the agent's control link. It turns one Open Terminal execute call into an exec.req, waits for
 * the agent's exec.res (a JSON answer) or exec.head (a stream), and for streams writes each
 * exec.data into the HTTP response as it arrives, acknowledging it once the response has taken
 * it. workerd's identity TransformStream resolves a write only when the reader has pulled the
 * chunk, so an ack means "the client is keeping up"; the agent keeps at most
 * EXEC_STREAM_WINDOW_BYTES unacknowledged, which bounds what sits here per stream.
 *
 * Nothing is left hanging: a client that goes away cancels the command (exec.cancel), a reply that
 * does not come in time is a 504, and when the agent goes away every waiting call is answered 503
 * and every stream is ended.
 *
 * workerd notices that an HTTP client went away only when it next writes to the response (the
 * cancellation does not reach a Durable Object's stream otherwise, and zero-byte writes do not
 * count). So a stream that has been silent for STREAM_PROBE_INTERVAL_MS gets one space: JSON
 * allows whitespace before a value, so the next line still parses, and a gone client is found.
 */
import { sendToAgent } from "./agent-send.ts";
import { isStreamOp, replyDeadlineMs } from "../shared/exec-protocol.ts";
import type { ExecAgentMsg, ExecEdgeMsg, ExecOp } from "../shared/exec-protocol.ts";
import { NDJSON_CONTENT_TYPE } from "../shared/open-terminal.ts";
import { ApiError, errorResponse } from "./errors.ts";
import { log } from "./log.ts";

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

interface Job {
  rid: number;
  /** Set until the HTTP answer (JSON or stream head) has been given. */
  resolve: ((response: Response) => void) | null;
  timer: ReturnType<typeof setTimeout> | null;
  /** Set once streaming. */
  writer: WritableStreamDefaultWriter<Uint8Array> | null;
  probe: ReturnType<typeof setInterval> | null;
  /** When bytes were last written into the response (epoch ms). */
  wroteAt: number;
  /** The exit line has been written: the stream is complete. */
  exited: boolean;
}

const encoder = new TextEncoder();

function offline(message = "Terminal service unavailable: the host's agent is offline"): Response {
  return errorResponse("open-terminal", new ApiError(503, "AGENT_OFFLINE", message));
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/** Checks a control frame the agent sent with a `t` of `exec.*`; null when it is malformed. */
export function checkExecAgentMsg(x: unknown): ExecAgentMsg | null {
  if (!isObj(x) || !Number.isSafeInteger(x.rid) || (x.rid as number) < 0) return null;
  const rid = x.rid as number;
  switch (x.t) {
    case "exec.res":
      if (!Number.isInteger(x.status) || (x.status as number) < 200 || (x.status as number) > 599) return null;
      return { t: "exec.res", rid, status: x.status as number, body: x.body ?? null };
    case "exec.head":
      return { t: "exec.head", rid };
    case "exec.data":
      return typeof x.ndjson === "string" ? { t: "exec.data", rid, ndjson: x.ndjson } : null;
    case "exec.end":
      return { t: "exec.end", rid };
    default:
      return null;
  }
}

/** The request the Worker sends the HostDO for one validated execute call. */
export function execRequest(scope: string, op: ExecOp, session = ""): Request {
  return new Request(`https://host${EXEC_PATH}`, { method: "POST", body: JSON.stringify({ scope, session, op }) });
}

export class EdgeExecRelay {
  private readonly jobs = new Map<number, Job>();
  /** Request ids start at a random point so a restarted DO never reuses a live one. */
  private nextRid = Math.floor(Math.random() * 2 ** 31);

  /** `agent()` is the open control link, or null while the agent is away. */
  constructor(private readonly agent: () => WebSocket | null) {}

  /** Calls in flight. */
  get size(): number {
    return this.jobs.size;
  }

  /** Answers an `execRequest` from the Worker. */
  async fetch(request: Request): Promise<Response> {
    const text = await request.text();
    let call: { scope?: unknown; session?: unknown; op?: unknown } | null = null;
    try {
      if (text.length <= EXEC_CALL_MAX_BYTES) call = JSON.parse(text) as { scope?: unknown; session?: unknown; op?: unknown };
    } catch {
      call = null;
    }
    if (!isObj(call) || typeof call.scope !== "string" || !isObj(call.op)) {
      return errorResponse("open-terminal", new ApiError(400, "BAD_EXEC_CALL", "Malformed execute call"));
    }
    // The Worker validated the op (parseExecHttp); the agent checks it again.
    return this.start(call.scope, call.op as ExecOp, typeof call.session === "string" ? call.session : "");
  }

  /** Relays one validated call; resolves with the HTTP answer (never rejects). */
  start(scope: string, op: ExecOp, session = ""): Promise<Response> {
    if (!this.agent()) return Promise.resolve(offline());
    if (this.jobs.size >= EXEC_MAX_INFLIGHT) {
      return Promise.resolve(errorResponse("open-terminal", new ApiError(429, "TOO_MANY_REQUESTS", `At most ${EXEC_MAX_INFLIGHT} execute calls in flight per server`)));
    }
    const rid = this.nextRid++;
    return new Promise((resolve) => {
      const job: Job = { rid, resolve, timer: null, writer: null, probe: null, wroteAt: 0, exited: false };
      const deadline = replyDeadlineMs(op);
      if (deadline !== null) job.timer = setTimeout(() => this.timedOut(job, isStreamOp(op)), deadline);
      this.jobs.set(rid, job);
      if (!this.send({ t: "exec.req", rid, scope, session, op })) {
        this.forget(job);
        resolve(offline());
      }
    });
  }

  /** One control frame from the agent whose `t` starts with `exec.`. */
  onAgentMessage(raw: unknown): void {
    const msg = checkExecAgentMsg(raw);
    if (!msg) {
      log("warn", "exec.malformed_message", "ignoring a malformed exec message from the agent");
      return;
    }
    const job = this.jobs.get(msg.rid);
    if (!job) {
      // Nobody listens any more (timed out, client gone): make sure the agent stops too.
      if (msg.t === "exec.head" || msg.t === "exec.data") this.send({ t: "exec.cancel", rid: msg.rid });
      return;
    }
    switch (msg.t) {
      case "exec.res":
        if (!job.resolve) return;
        this.answer(job, Response.json(msg.body, { status: msg.status }));
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

  /**
   * The control link is gone (closed, or replaced by a newer one): the agent has dropped every
   * call of the old link, so waiting calls are answered 503 and streams are cut short.
   */
  agentGone(): void {
    const jobs = [...this.jobs.values()];
    this.jobs.clear();
    for (const job of jobs) {
      this.forget(job);
      if (job.resolve) this.answer(job, offline("The host's agent went offline before answering"));
      // Aborting (not closing) tells the HTTP client the output is incomplete.
      job.writer?.abort(new Error("the host's agent went offline")).catch(() => {});
    }
  }

  private openStream(job: Job): void {
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
    this.answer(
      job,
      new Response(readable, {
        status: 200,
        headers: { "Content-Type": NDJSON_CONTENT_TYPE, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff" },
      }),
    );
  }

  private write(job: Job, writer: WritableStreamDefaultWriter<Uint8Array>, ndjson: string): void {
    job.wroteAt = Date.now();
    job.exited ||= EXIT_LINE.test(ndjson);
    writer.write(encoder.encode(ndjson)).then(
      () => {
        if (this.jobs.get(job.rid) === job) this.send({ t: "exec.ack", rid: job.rid, bytes: ndjson.length });
      },
      () => this.clientGone(job),
    );
  }

  private clientGone(job: Job): void {
    if (this.jobs.get(job.rid) !== job) return;
    this.forget(job);
    this.send({ t: "exec.cancel", rid: job.rid });
  }

  private timedOut(job: Job, stream: boolean): void {
    if (this.jobs.get(job.rid) !== job || !job.resolve) return;
    this.forget(job);
    this.send({ t: "exec.cancel", rid: job.rid });
    const what = stream ? "start the command" : "answer";
    this.answer(job, errorResponse("open-terminal", new ApiError(504, "AGENT_TIMEOUT", `The host's agent did not ${what} in time`)));
  }

  private answer(job: Job, response: Response): void {
    const resolve = job.resolve;
    job.resolve = null;
    resolve?.(response);
  }

  private forget(job: Job): void {
    if (job.timer) clearTimeout(job.timer);
    job.timer = null;
    if (job.probe) clearInterval(job.probe);
    job.probe = null;
    if (this.jobs.get(job.rid) === job) this.jobs.delete(job.rid);
  }

  private send(msg: ExecEdgeMsg): boolean {
    return sendToAgent(this.agent(), msg);
  }
}
