/**
 * The agent's log lines: plain text for a person at a terminal, or one JSON object per line
 * (`{"ts","level","msg","server",…}`) for journald and log shippers. Secrets never reach a line:
 * the agent token and anything shaped like a bearer credential are masked before writing.
 */

/** Longest message kept in one line, in characters (longer ones are cut and marked). */
export const LOG_LINE_MAX_CHARS = 4_000;

export type LogFormat = "text" | "json";
export type LogLevel = "info" | "warn" | "error";

export interface AgentLoggerOptions {
  format: LogFormat;
  /** The server id, a field of every JSON line. */
  server: string;
  /** Values that must never be written (the agent token). */
  secrets: string[];
  /** Where lines go; stdout by default. */
  write?(line: string): void;
  now?(): Date;
}

/** Masks every secret and every `Bearer …` credential in `text`. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length >= 4) out = out.split(secret).join("[redacted]");
  return out.replace(/(Bearer\s+)[^\s"']+/gi, "$1[redacted]");
}

/** Guesses a level from an agent log line (the agent's call sites log plain sentences). */
function levelOf(message: string): LogLevel {
  if (/\b(failed|error|crash(ed)?|refus(ed|ing))\b/i.test(message)) return "error";
  if (/\b(closed|malformed|ignoring|timed out|retry|reconnecting)\b/i.test(message)) return "warn";
  return "info";
}

/**
 * A `log(line)` function for the Agent (worker/agent/agent.ts takes one): formats, redacts and
 * bounds each line.
 */
export function createAgentLogger(options: AgentLoggerOptions): (line: string, level?: LogLevel) => void {
  const write = options.write ?? ((line: string) => process.stdout.write(line + "\n"));
  const now = options.now ?? (() => new Date());
  return (line, level) => {
    let msg = redact(line, options.secrets);
    if (msg.length > LOG_LINE_MAX_CHARS) msg = `${msg.slice(0, LOG_LINE_MAX_CHARS)}… [${msg.length - LOG_LINE_MAX_CHARS} more chars]`;
    if (options.format === "text") return write(`[agent] ${msg}`);
    write(JSON.stringify({ ts: now().toISOString(), level: level ?? levelOf(msg), component: "agent", server: options.server, msg }));
  };
}
