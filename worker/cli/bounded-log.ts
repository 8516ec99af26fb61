/**
 * Log files of the local stack that cannot grow without bound: each is rotated once it passes its
 * cap (the current file becomes `NAME.1`, replacing the previous one), so a log never takes more
 * than twice its cap on disk.
 */
import { closeSync, openSync, renameSync, statSync, writeSync } from "node:fs";

/** Size at which a log of the local stack is rotated, in bytes. */
export const LOG_MAX_BYTES = 4 << 20; // 4 MiB

/** Rotates `path` to `path.1` when it is larger than `maxBytes`; returns whether it did. */
export function rotateIfLarger(path: string, maxBytes = LOG_MAX_BYTES): boolean {
  try {
    if (statSync(path).size <= maxBytes) return false;
    renameSync(path, `${path}.1`);
    return true;
  } catch {
    return false; // not written yet
  }
}

/** An append-only log file we write ourselves, rotated at `maxBytes`. */
export class BoundedLog {
  private fd: number;
  private size: number;

  constructor(
    readonly path: string,
    private readonly maxBytes = LOG_MAX_BYTES,
  ) {
    rotateIfLarger(path, maxBytes);
    this.fd = openSync(path, "a", 0o600);
    this.size = statSync(path).size;
  }

  write(chunk: Buffer | string): void {
    if (this.fd < 0) return;
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    if (this.size + bytes.byteLength > this.maxBytes && this.size > 0) {
      closeSync(this.fd);
      renameSync(this.path, `${this.path}.1`);
      this.fd = openSync(this.path, "a", 0o600);
      this.size = 0;
    }
    writeSync(this.fd, bytes);
    this.size += bytes.byteLength;
  }

  /** Copies everything `stream` emits into the log. */
  follow(stream: NodeJS.ReadableStream | null): void {
    stream?.on("data", (d: Buffer) => this.write(d));
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
