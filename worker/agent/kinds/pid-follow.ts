/**
 * The program a PID-attach session's PTY runs: `node --import tsx pid-follow.ts <pid>`. It traces
 * the target's writes to its standard output and error with strace (ptrace) and prints those
 * bytes as they were written, so the session's screen follows the process's terminal. Typed input
 * is read and dropped (the terminal is in raw mode, so it neither echoes nor sends signals): an
 * attach is read-only. It ends when the target exits or the trace fails, saying which.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

/** Longest write shown in full, in bytes (strace's -s); longer writes are cut there. */
export const TRACE_STRING_MAX_BYTES = 65_536;
/** Longest strace line read, in characters (a full write hex-escaped, plus the call around it). */
const TRACE_LINE_MAX_CHARS = TRACE_STRING_MAX_BYTES * 4 + 4096;

/** The file descriptors followed: the process's terminal output. */
const FOLLOWED_FDS = new Set([1, 2]);
const CALL = /^(?:\[pid\s+\d+\]\s+)?(write|writev|pwrite64|pwritev|pwritev2)\((\d+),\s*(.*)$/;
const HEX_STRING = /"((?:\\x[0-9a-f]{2})*)"/g;

/**
 * The bytes a traced line (strace -xx) wrote to a followed fd, or null for any other line.
 * `write(1, "\x68\x69", 2) = 2` → "hi"; writev's iov_base strings are concatenated.
 */
export function decodeStraceLine(line: string): Buffer | null {
  const m = CALL.exec(line);
  if (!m || !FOLLOWED_FDS.has(Number(m[2]))) return null;
  const rest = m[1] === "write" || m[1] === "pwrite64" ? (/^"(?:\\x[0-9a-f]{2})*"/.exec(m[3]!)?.[0] ?? "") : m[3]!;
  const parts: Buffer[] = [];
  for (const s of rest.matchAll(HEX_STRING)) parts.push(Buffer.from(s[1]!.replace(/\\x/g, ""), "hex"));
  return parts.length ? Buffer.concat(parts) : null;
}

/** What the target's end looks like in strace's output: `+++ exited with 3 +++`. */
export function exitLine(line: string): string | null {
  const m = /^(?:\[pid\s+\d+\]\s+)?\+\+\+ (exited with \d+|killed by \w+.*?) \+\+\+$/.exec(line.trim());
  return m ? m[1]! : null;
}

function main(pid: string, strace: string): void {
  if (process.stdin.isTTY) process.stdin.setRawMode(true);
  process.stdin.on("data", () => undefined); // read-only: input is dropped
  const args = ["-p", pid, "-f", "-qq", "-xx", "-s", String(TRACE_STRING_MAX_BYTES), "-e", "trace=write,writev,pwrite64,pwritev,pwritev2", "-e", "signal=none"];
  const child = spawn(strace, args, { stdio: ["ignore", "ignore", "pipe"] });
  let ended: string | null = null;
  let lastError = "";
  const lines = createInterface({ input: child.stderr!, crlfDelay: Infinity });
  lines.on("line", (raw) => {
    const line = raw.length > TRACE_LINE_MAX_CHARS ? raw.slice(0, TRACE_LINE_MAX_CHARS) : raw;
    const bytes = decodeStraceLine(line);
    if (bytes) {
      process.stdout.write(bytes);
      return;
    }
    const exit = exitLine(line);
    const who = /^\[pid\s+(\d+)\]/.exec(line)?.[1];
    if (exit && (who === undefined || who === pid)) ended = exit;
    else if (line.startsWith("strace:")) lastError = line;
  });
  child.on("error", (error) => {
    process.stdout.write(`\r\n[edgetty] cannot run strace: ${error.message}\r\n`);
    process.exit(1);
  });
  child.on("close", (code) => {
    if (ended) process.stdout.write(`\r\n[edgetty] process ${pid} ${ended}\r\n`, () => process.exit(0));
    else process.stdout.write(`\r\n[edgetty] stopped following process ${pid}${lastError ? `: ${lastError}` : ""}\r\n`, () => process.exit(code ? 1 : 0));
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv[2] ?? "", process.argv[3] ?? "strace");
}
