/**
 * A background process's output on disk, as the reference keeps it: one JSONL file per process
 * (`{"type": "output", "data": "…"}` per entry) whose path the API reports as `log_path`. A file
 * that grows past its cap is rotated to its newest half (whole lines), so a chatty process never
 * fills the disk; files older than the retention are deleted by `pruneLogDir`.
 */
import { closeSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { OutputEntry } from "../../../shared/open-terminal.ts";
import { makeDirectoriesSync } from "../make-directories.ts";

/** Largest log file before it is rotated to its newest half (the reference's OPEN_TERMINAL_MAX_LOG_SIZE). */
export const PROCESS_LOG_MAX_BYTES = 50 * 1024 * 1024; // 50 MiB
/** How long log files are kept after they were last written (the reference's OPEN_TERMINAL_LOG_RETENTION). */
export const PROCESS_LOG_RETENTION_MS = 7 * 24 * 3600_000; // 7 days
/** Log files looked at per prune, at most. */
const PRUNE_MAX_FILES = 10_000;

export class ProcessLogFile {
  private fd: number | null;
  private bytes = 0;

  /** Opens (creates) `<dir>/<id>.jsonl`; a directory that cannot be written leaves the log disabled. */
  constructor(
    readonly path: string,
    private readonly maxBytes = PROCESS_LOG_MAX_BYTES,
  ) {
    try {
      this.fd = openSync(path, "a", 0o600);
    } catch {
      this.fd = null;
    }
  }

  /** Appends one entry (a synchronous append: entries are chunks of PTY output, a few KiB at most). */
  append(entry: OutputEntry): void {
    if (this.fd === null) return;
    const line = Buffer.from(JSON.stringify(entry) + "\n");
    try {
      writeSync(this.fd, line);
    } catch {
      this.close();
      return;
    }
    this.bytes += line.length;
    if (this.bytes > this.maxBytes) this.rotate();
  }

  /** Closes the file; it stays on disk until the retention prunes it. */
  close(): void {
    if (this.fd === null) return;
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
    this.fd = null;
  }

  /** Keeps the newest half of the file, cut at a line boundary. */
  private rotate(): void {
    this.close();
    try {
      const data = readFileSync(this.path);
      let from = data.length - Math.floor(this.maxBytes / 2);
      from = from <= 0 ? 0 : data.indexOf(0x0a, from) + 1;
      const kept = from <= 0 ? data : data.subarray(from);
      writeFileSync(this.path, kept, { mode: 0o600 });
      this.bytes = kept.length;
      this.fd = openSync(this.path, "a", 0o600);
    } catch {
      this.fd = null;
    }
  }
}

/** Creates the log folder (private to the agent's user) and deletes logs older than `retentionMs`. */
export function pruneLogDir(dir: string, retentionMs = PROCESS_LOG_RETENTION_MS, now = Date.now()): void {
  try {
    makeDirectoriesSync(dir, 0o700);
    for (const name of readdirSync(dir).slice(0, PRUNE_MAX_FILES)) {
      if (!name.endsWith(".jsonl")) continue;
      const file = join(dir, name);
      if (now - statSync(file).mtimeMs > retentionMs) unlinkSync(file);
    }
  } catch {
    /* a log folder we cannot manage only means no log_path files */
  }
}
