/**
 * The control link: agent ⇄ HostDO, one JSON-text WebSocket per agent (see docs/protocol.md,
 * "Control link").
 *
 *   HostDO → agent  req     {id, op, params}            a request; params checked per op
 *   agent → HostDO  reply   {id, ok: true, result}      its answer; result checked per op
 *                   reply   {id, ok: false, error}      or its refusal, as an API error
 *                   hello   {agent, sessions}           first frame: who it is, what it runs
 *                   exited  {terminal_id, exit,         a session's process ended (`started_at`:
 *                            started_at?}               its meta's, telling it from a later one)
 *
 * The exec relay's messages (`exec.*`, exec.ts) ride the same socket and share its request ids,
 * so each side keeps one correlator (correlator.ts). The HTTP tunnel's `tun.*` messages and its
 * binary body frames (tunnel.ts) ride it too, under a `rid` field of their own that the HostDO
 * numbers from the same correlator. Every frame is checked against its schema;
 * a refused frame throws LinkDecodeError, carrying the request id when one could be read so the
 * request can still be answered.
 *
 * Adding an op: one entry in CONTROL_OPS with a params and a result schema; the types, the
 * agent's decoder and the HostDO's reply check follow from it.
 */
import * as v from "valibot";
import { FONT_SIZE_MAX_PX, FONT_SIZE_MIN_PX, SCREENSHOT_FORMATS, SCREEN_REPLY_MAX_BYTES, TAIL_LINES_MAX } from "../screen.ts";
import { CMD_MAX_CHARS, ENV_MAX_ENTRIES, ENV_VALUE_MAX_CHARS } from "../validation.ts";
import { DESKTOP_ENVS, PID_MAX, SOCKS5_CREDENTIAL_MAX_BYTES, SSH_KEY_MAX_CHARS, SSH_PASSWORD_MAX_CHARS, WAIT_TIMEOUT_MAX_S } from "../kind-validation.ts";
import { ExitInfoSchema, int, MESSAGE_MAX_CHARS, PATH_MAX_CHARS, SHORT_TEXT_MAX_CHARS, text, type ExitInfo } from "./client.ts";
import { decodeWith, idOf, LinkDecodeError, parseJson, RequestId } from "./codec.ts";
import { EXEC_SCOPE_MAX_CHARS, EXEC_SESSION_MAX_CHARS, EXEC_USER_MAX_CHARS, ExecAgentMsgSchema, ExecEdgeMsgSchema, isExecMessage, type ExecAgentMsg, type ExecEdgeMsg } from "./exec.ts";
import { decodeTunnelAgent, decodeTunnelEdge, isTunnelMessage, type TunnelAgentMsg, type TunnelEdgeMsg } from "./tunnel.ts";
import { LiveSessionSchema, SessionMetaSchema, type LiveSession } from "./session.ts";

export { LiveSessionSchema, SessionMetaSchema, type LiveSession, type SessionMeta } from "./session.ts";

/** Requests and exec calls one control link may have in flight at once (both sides hold to it). */
export const LINK_INFLIGHT_MAX = 512;
/** Most sessions a hello or a `list` reply may carry before the whole frame is refused. */
export const SESSION_LIST_MAX_ENTRIES = 4096;

const TerminalId = int(1, 65_535);
const Channel = int(0, 255);
const Rgba = v.object({ r: Channel, g: Channel, b: Channel, a: Channel });

/** An error as the agent reports it; the edge renders it in the caller's API family shape. */
export const ApiErrorBodySchema = v.object({
  status: int(400, 599),
  code: text(SHORT_TEXT_MAX_CHARS),
  message: text(MESSAGE_MAX_CHARS),
});
export type ApiErrorBody = v.InferOutput<typeof ApiErrorBodySchema>;

const EnvKey = v.pipe(v.string(), v.regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/));
const NoNul = (max: number) => v.pipe(v.string(), v.maxLength(max), v.check((s) => !s.includes("\0"), "contains NUL"));

/** Desktop environments `desktop_env` may name. */
export type DesktopEnv = "xfce" | "mate";

/** A SOCKS5 proxy the SSH connection goes through (RFC 1928; user/pass per RFC 1929). */
export const Socks5ParamsSchema = v.object({
  host: text(255),
  port: int(1, 65_535),
  user: v.optional(text(SOCKS5_CREDENTIAL_MAX_BYTES)),
  pass: v.optional(text(SOCKS5_CREDENTIAL_MAX_BYTES)),
});
export type Socks5Params = v.InferOutput<typeof Socks5ParamsSchema>;

/** An SSH session's target and credentials (seed 002's ssh_* and socks5_* fields, checked by kind-validation.ts). */
export const SshParamsSchema = v.object({
  host: text(255),
  user: text(64),
  port: int(1, 65_535),
  /** Never logged, never on a command line or in an environment (see worker/agent/kinds/ssh.ts). */
  password: v.optional(NoNul(SSH_PASSWORD_MAX_CHARS)),
  /** Base64 of a PEM private key. */
  key: v.optional(text(SSH_KEY_MAX_CHARS)),
  socks5: v.optional(Socks5ParamsSchema),
});
export type SshParams = v.InferOutput<typeof SshParamsSchema>;

/** Options for a new PTY session, validated by the edge (validation.ts), checked again here. */
export const CreateSessionParamsSchema = v.object({
  terminal_id: TerminalId,
  ephemeral: v.boolean(),
  shell: v.optional(NoNul(PATH_MAX_CHARS)),
  user: v.optional(v.pipe(v.string(), v.regex(/^[a-z_][a-z0-9_.-]{0,31}\$?$/i))),
  cwd: v.optional(NoNul(PATH_MAX_CHARS)),
  cwd_auto_create: v.boolean(),
  startup_script: v.optional(NoNul(PATH_MAX_CHARS)),
  welcome: v.boolean(),
  debug: v.boolean(),
  display: v.optional(v.pipe(v.string(), v.regex(/^:\d{1,4}(\.\d{1,2})?$/))),
  cols: int(1, 1000),
  rows: int(1, 1000),
  /** Base64 command typed into the shell once it starts. */
  cmd: v.optional(v.pipe(v.string(), v.maxLength(CMD_MAX_CHARS), v.regex(/^[A-Za-z0-9+/_-]*={0,2}$/))),
  env: v.pipe(
    v.record(EnvKey, NoNul(ENV_VALUE_MAX_CHARS)),
    v.check((env) => Object.keys(env).length <= ENV_MAX_ENTRIES, `at most ${ENV_MAX_ENTRIES} env entries`),
  ),
  /** Block create until `display` answers (default true when a display is set). */
  wait_until_display: v.optional(v.boolean()),
  /** How long to wait for the display, in seconds. */
  wait_timeout: v.optional(int(0, WAIT_TIMEOUT_MAX_S)),
  /** Desktop environment to start on `display`. */
  desktop_env: v.optional(v.picklist(DESKTOP_ENVS)),
  /** Follow this existing process's terminal output instead of starting a shell. */
  pid: v.optional(int(1, PID_MAX)),
  /** Run the system's OpenSSH client to this host instead of a local shell. */
  ssh: v.optional(SshParamsSchema),
  /**
   * The Open Terminal caller an `/api/terminals` session belongs to (set by the edge only, never
   * from a request body): its scope and its `X-User-Id` (cut to EXEC_USER_MAX_CHARS). In multi-user
   * mode the agent runs the session as that user's OS account.
   */
  ot_user: v.optional(v.object({ scope: v.pipe(v.string(), v.maxLength(EXEC_SCOPE_MAX_CHARS)), user: NoNul(EXEC_USER_MAX_CHARS) })),
  /**
   * The Open Terminal session (`X-Session-Id`) an `/api/terminals` session was made for, with the
   * caller's scope (set by the edge only): without a `cwd`, it starts in that session's working
   * directory (`POST /files/cwd`), as the reference starts it.
   */
  ot_cwd_of: v.optional(v.object({ scope: v.pipe(v.string(), v.maxLength(EXEC_SCOPE_MAX_CHARS)), session: v.pipe(v.string(), v.maxLength(EXEC_SESSION_MAX_CHARS)) })),
});
export type CreateSessionParams = v.InferOutput<typeof CreateSessionParamsSchema>;

const ScreenRequestSchema = v.variant("kind", [
  v.object({ terminal_id: TerminalId, kind: v.picklist(["raw", "text", "html"]), tail: v.optional(int(0, TAIL_LINES_MAX)) }),
  v.object({
    terminal_id: TerminalId,
    kind: v.literal("screenshot"),
    format: v.picklist(SCREENSHOT_FORMATS),
    foreground: Rgba,
    background: Rgba,
    fontsize: int(FONT_SIZE_MIN_PX, FONT_SIZE_MAX_PX),
    save: v.boolean(),
  }),
]);

const ScreenResultSchema = v.object({
  content_type: text(SHORT_TEXT_MAX_CHARS),
  // base64 of at most SCREEN_REPLY_MAX_BYTES, or that much UTF-8 text
  body: text(Math.ceil(SCREEN_REPLY_MAX_BYTES / 3) * 4),
  encoding: v.picklist(["base64", "utf8"]),
  truncated: v.optional(v.boolean()),
  path: v.optional(text(PATH_MAX_CHARS)),
  width: v.optional(int(0, 1 << 20)),
  height: v.optional(int(0, 1 << 20)),
});

/** Sessions as a hello or `list` reply carries them: checked one by one (checkSessions). */
const SessionEntries = v.pipe(v.array(v.unknown()), v.maxLength(SESSION_LIST_MAX_ENTRIES));

/** Every request the HostDO may send the agent: its params and its result, by op. */
export const CONTROL_OPS = {
  create: {
    params: CreateSessionParamsSchema,
    result: v.object({ status: v.picklist(["created", "exists"]), meta: SessionMetaSchema }),
  },
  kill: { params: v.object({ terminal_id: TerminalId }), result: v.object({ killed: v.boolean() }) },
  /** Sessions come back unchecked here: checkSessions refuses bad entries one by one. */
  list: { params: v.object({}), result: v.object({ sessions: SessionEntries }) },
  /** The raw output tail, the screen as text/HTML, or a screenshot (shared/screen.ts). */
  screen: { params: ScreenRequestSchema, result: ScreenResultSchema },
} satisfies Record<string, { params: v.GenericSchema; result: v.GenericSchema }>;

export type ControlOp = keyof typeof CONTROL_OPS;
/** Params and result types of each op, from CONTROL_OPS. */
export type ControlOps = {
  [K in ControlOp]: { params: v.InferOutput<(typeof CONTROL_OPS)[K]["params"]>; result: v.InferOutput<(typeof CONTROL_OPS)[K]["result"]> };
};

/** What the agent says about itself on connect. */
export interface AgentFacts {
  version: string;
  hostname: string;
  platform: string;
  is_root: boolean;
  /** Facts about the host (optional: agents before 0.1.0's packaging omit them). */
  facts?: HostFacts;
  /** The agent answers the Open Terminal `/info` (an info text is set): `get_info` is offered. */
  ot_info?: boolean;
  /** The agent runs the Open Terminal API in multi-user mode (OS accounts per `X-User-Id`). */
  ot_multi_user?: boolean;
}

/** The host an agent runs on, as it reports itself in its hello (shown by the edge's stats). */
export interface HostFacts {
  /** CPU architecture, e.g. "x64". */
  arch: string;
  /** Kernel release, e.g. "6.1.0-18-amd64". */
  os_release: string;
  /** Node.js version running the agent, e.g. "v20.19.0". */
  node: string;
  cpus: number;
  memory_bytes: number;
  /** When the agent process started (ISO 8601): its uptime is now minus this. */
  started_at: string;
}

/** One request as the agent receives it, its params already checked for its op. */
export type ControlRequest = { [K in ControlOp]: { t: "req"; id: number; op: K; params: ControlOps[K]["params"] } }[ControlOp];

/** HostDO → agent. */
export type HostToAgent = ControlRequest | ExecEdgeMsg | TunnelEdgeMsg;

const AgentToHostSchema = v.variant("t", [
  // `agent` is cut down to known, bounded fields by the HostDO (edge/agent-facts.ts), which keeps
  // an agent with odd facts connected rather than refusing its whole hello.
  v.object({ t: v.literal("hello"), agent: v.unknown(), sessions: SessionEntries }),
  v.variant("ok", [
    v.object({ t: v.literal("reply"), id: RequestId, ok: v.literal(true), result: v.unknown() }),
    v.object({ t: v.literal("reply"), id: RequestId, ok: v.literal(false), error: ApiErrorBodySchema }),
  ]),
  v.object({ t: v.literal("exited"), terminal_id: TerminalId, exit: ExitInfoSchema, started_at: v.optional(text(SHORT_TEXT_MAX_CHARS)) }),
]);

/** Agent → HostDO. A reply's `result` is checked against its op when it is matched (checkResult). */
export type AgentToHost =
  | { t: "hello"; agent: unknown; sessions: unknown[] }
  | { t: "reply"; id: number; ok: true; result: unknown }
  | { t: "reply"; id: number; ok: false; error: ApiErrorBody }
  | { t: "exited"; terminal_id: number; exit: ExitInfo; started_at?: string }
  | ExecAgentMsg
  | TunnelAgentMsg;

/** What the agent sends; encoders exist so both ends build frames the same way. */
export type AgentToHostOut =
  | { t: "hello"; agent: AgentFacts; sessions: LiveSession[] }
  | { t: "reply"; id: number; ok: true; result: unknown }
  | { t: "reply"; id: number; ok: false; error: ApiErrorBody }
  | { t: "exited"; terminal_id: number; exit: ExitInfo; started_at?: string }
  | ExecAgentMsg
  | TunnelAgentMsg;

/** Serializes one control frame (either direction). */
export function encodeControl(msg: HostToAgent | AgentToHostOut): string {
  return JSON.stringify(msg);
}

/** A JSON object with a string `t`, or LinkDecodeError. */
function envelope(text: string): Record<string, unknown> & { t: string } {
  const value = parseJson(text, "control frame");
  if (typeof value !== "object" || value === null || Array.isArray(value) || typeof (value as { t?: unknown }).t !== "string") {
    throw new LinkDecodeError("control frame has no type");
  }
  return value as Record<string, unknown> & { t: string };
}

/** A frame the agent sent, checked (the HostDO's decoder); LinkDecodeError when malformed. */
export function decodeAgentToHost(text: string): AgentToHost {
  const value = envelope(text);
  const refused = { id: idOf(value), t: value.t };
  if (isExecMessage(value)) return decodeWith(ExecAgentMsgSchema, value, value.t, refused);
  if (isTunnelMessage(value)) return decodeTunnelAgent(value);
  return decodeWith(AgentToHostSchema, value, value.t, refused) as AgentToHost;
}

/**
 * A frame the HostDO sent, checked (the agent's decoder). LinkDecodeError when malformed; its `id`
 * says which request to refuse, and its `status` is 501 for an op this agent does not know.
 */
export function decodeHostToAgent(text: string): HostToAgent {
  const value = envelope(text);
  const id = idOf(value);
  const refused = { id, t: value.t };
  if (isExecMessage(value)) return decodeWith(ExecEdgeMsgSchema, value, value.t, refused);
  if (isTunnelMessage(value)) return decodeTunnelEdge(value);
  if (value.t !== "req") throw new LinkDecodeError(`unknown control frame type ${JSON.stringify(value.t).slice(0, 40)}`, refused);
  if (id === null) throw new LinkDecodeError("req has no valid id");
  const op = value.op;
  if (typeof op !== "string" || !Object.hasOwn(CONTROL_OPS, op)) {
    throw new LinkDecodeError(`This agent does not support "${String(op).slice(0, 40)}"`, { ...refused, status: 501 });
  }
  const params = decodeWith(CONTROL_OPS[op as ControlOp].params, value.params, `${op} params`, refused);
  return { t: "req", id, op, params } as ControlRequest;
}

/** A reply's result checked against the op it answers; LinkDecodeError when it does not fit. */
export function checkResult<K extends ControlOp>(op: K, id: number, result: unknown): ControlOps[K]["result"] {
  return decodeWith(CONTROL_OPS[op].result as v.GenericSchema, result, `${op} result`, { id, t: "reply" }) as ControlOps[K]["result"];
}

/** Sessions from a hello or `list` reply, sorted into those taken and why others were refused. */
export interface CheckedSessions {
  accepted: LiveSession[];
  /** One line per refused entry: its index and why. */
  refused: string[];
}

/**
 * Checks session entries one by one: a malformed entry, a repeated terminal id or one past `cap`
 * is refused alone; the rest are accepted, in order.
 */
export function checkSessions(entries: readonly unknown[], cap: number): CheckedSessions {
  const accepted: LiveSession[] = [];
  const refused: string[] = [];
  const seen = new Set<number>();
  entries.forEach((entry, i) => {
    const result = v.safeParse(LiveSessionSchema, entry);
    if (!result.success) {
      const issue = result.issues[0];
      const path = issue.path?.map((p) => String(p.key)).join(".") ?? "";
      refused.push(`#${i}${path ? ` ${path}` : ""}: ${issue.message}`);
    } else if (seen.has(result.output.terminal_id)) {
      refused.push(`#${i}: terminal ${result.output.terminal_id} listed twice`);
    } else if (accepted.length >= cap) {
      refused.push(`#${i}: terminal ${result.output.terminal_id} is past the cap of ${cap} sessions`);
    } else {
      seen.add(result.output.terminal_id);
      accepted.push(result.output);
    }
  });
  return { accepted, refused };
}
