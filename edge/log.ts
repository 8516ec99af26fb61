/**
 * The Worker's and its Durable Objects' log lines: one JSON object per line
 * (`{"level","event","msg",…fields}`), which Workers Logs indexes by field (observability is on in
 * wrangler.toml) and `wrangler tail` shows as is. Callers pass ids and counts, never tokens;
 * anything shaped like a bearer credential is masked anyway, and every string is bounded.
 */

/** Longest string value kept in a log field, in characters. */
export const LOG_FIELD_MAX_CHARS = 2_000;

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, string | number | boolean | null | undefined | unknown>;

function clean(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: clean(value.message), ...(value.stack ? { stack: clean(value.stack) } : {}) };
  if (typeof value !== "string") return value;
  const masked = value.replace(/(Bearer\s+)[^\s"']+/gi, "$1[redacted]");
  return masked.length > LOG_FIELD_MAX_CHARS ? `${masked.slice(0, LOG_FIELD_MAX_CHARS)}…` : masked;
}

/** Writes one structured line: `event` names what happened (e.g. "host.ws_message_failed"). */
export function log(level: LogLevel, event: string, msg: string, fields: LogFields = {}): void {
  const line: Record<string, unknown> = { level, event, msg: clean(msg) };
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) line[k] = clean(v);
  const text = JSON.stringify(line);
  if (level === "error") console.error(text);
  else if (level === "warn") console.warn(text);
  else console.log(text);
}
