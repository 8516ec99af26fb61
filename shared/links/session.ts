/**
 * What the edge remembers about a session, as both agent links carry it: the data link's HELLO
 * (TerminalDO) and the control link's hello, `create` and `list` (HostDO). One schema, so the two
 * DOs refuse the same things.
 */
import * as v from "valibot";
import { int, IsoTime, PATH_MAX_CHARS, TerminalSizeSchema, text, TITLE_MAX_CHARS } from "./client.ts";

/** Largest process id accepted (Linux's PID_MAX_LIMIT, 2^22). */
export const PID_MAX = 4_194_304;

export const SessionMetaSchema = v.object({
  terminal_id: int(1, 65_535),
  shell: text(PATH_MAX_CHARS),
  cwd: text(PATH_MAX_CHARS),
  started_at: IsoTime,
  ephemeral: v.boolean(),
  /** X display as ":N" or ":N.M". */
  display: v.optional(v.pipe(v.string(), v.regex(/^:\d{1,4}(\.\d{1,2})?$/))),
  pid: v.optional(int(1, PID_MAX)),
});
/** What the edge remembers about a session (HostDO index, TerminalDO storage). */
export type SessionMeta = v.InferOutput<typeof SessionMetaSchema>;

export const LiveSessionSchema = v.object({
  ...SessionMetaSchema.entries,
  ...TerminalSizeSchema.entries,
  title: v.optional(text(TITLE_MAX_CHARS)),
});
/** Live facts the agent knows about a session, for listings. */
export type LiveSession = v.InferOutput<typeof LiveSessionSchema>;
