/**
 * Seed 004's stream and texts, byte for byte: the NDJSON lines of `POST /execute?stream=true`
 * and the Python formatting they depend on.
 */

/** One line of the `?stream=true` NDJSON body. */
export type StreamEvent = { type: "stdout" | "stderr"; data: string } | { type: "exit"; data: number };

/** The media type of the `?stream=true` body. */
export const NDJSON_CONTENT_TYPE = "application/x-ndjson";

/**
 * One NDJSON line exactly as the reference writes it: Python's `json.dumps` with its default
 * `", "`/`": "` separators and `ensure_ascii` (non-ASCII as lowercase `\uXXXX`), then `\n`.
 * The result is pure ASCII, so its length is its byte count.
 */
export function ndjsonLine(event: StreamEvent): string {
  const data = typeof event.data === "number" ? String(event.data) : pyJsonString(event.data);
  return `{"type": "${event.type}", "data": ${data}}\n`;
}

/** A JSON string literal with every non-ASCII UTF-16 unit escaped, as Python's `ensure_ascii`. */
export function pyJsonString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => {
    const code = c.charCodeAt(0);
    return code === 0x7f ? c : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/**
 * A number as Python's `str(float)` prints it (`30` → `30.0`), for v0.1.4's timeout message
 * `Command timed out after 30.0s`.
 */
export function pyFloat(n: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? "nan" : n > 0 ? "inf" : "-inf";
  const [mantissa, exp] = n.toExponential().split("e") as [string, string];
  const e = Number(exp);
  if (e < -4 || e >= 16) return `${mantissa}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  const fixed = String(n);
  return fixed.includes(".") ? fixed : `${fixed}.0`;
}

/** v0.1.4's stderr when a command exceeded its timeout. */
export function timeoutMessage(seconds: number): string {
  return `Command timed out after ${pyFloat(seconds)}s`;
}
