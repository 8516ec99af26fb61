/**
 * Command records: one per command line run at a shell's prompt, built by the agent from the
 * shell's integration marks (worker/agent/shell/command-tracker.ts), carried to the TerminalDO in
 * HISTORY frames (links/data.ts) and served by `GET /api/v1/terminal/history/{terminal_id}`.
 * The edge checks every record it is sent before storing it (it trusts no agent's bytes).
 */

/** One command run at the prompt. A record is sent when it starts and again when it ends. */
export interface CommandRecord {
  /** 1, 2, 3… per session, in the order the commands started. */
  id: number;
  command: string;
  /** The shell's working directory when the command started. */
  cwd: string;
  /** Null while running, or when the shell never reported the end. */
  exit_code: number | null;
  /** ISO 8601. */
  started_at: string;
  /** ISO 8601, or null while running. */
  finished_at: string | null;
  duration_ms: number | null;
  status: "running" | "done";
}

/** Longest command line or cwd kept, in characters (OSC bodies past 4 KiB never arrive anyway). */
export const HISTORY_TEXT_MAX_CHARS = 4096;
/** Longest ISO 8601 time accepted, in characters. */
const TIME_MAX_CHARS = 40;

function isTime(v: unknown): v is string {
  return typeof v === "string" && v.length <= TIME_MAX_CHARS && !Number.isNaN(Date.parse(v));
}

function isText(v: unknown): v is string {
  return typeof v === "string" && v.length <= HISTORY_TEXT_MAX_CHARS;
}

function isIntOrNull(v: unknown): v is number | null {
  return v === null || (typeof v === "number" && Number.isSafeInteger(v));
}

/** The record in `value`, checked field by field; null when anything is off. */
export function parseCommandRecord(value: unknown): CommandRecord | null {
  if (typeof value !== "object" || value === null) return null;
  const r = value as Record<string, unknown>;
  if (typeof r["id"] !== "number" || !Number.isSafeInteger(r["id"]) || r["id"] < 1) return null;
  if (!isText(r["command"]) || !isText(r["cwd"])) return null;
  if (!isIntOrNull(r["exit_code"]) || !isIntOrNull(r["duration_ms"])) return null;
  if (!isTime(r["started_at"])) return null;
  if (r["finished_at"] !== null && !isTime(r["finished_at"])) return null;
  if (r["status"] !== "running" && r["status"] !== "done") return null;
  return {
    id: r["id"],
    command: r["command"],
    cwd: r["cwd"],
    exit_code: r["exit_code"],
    started_at: r["started_at"],
    finished_at: r["finished_at"] as string | null,
    duration_ms: r["duration_ms"],
    status: r["status"],
  };
}
