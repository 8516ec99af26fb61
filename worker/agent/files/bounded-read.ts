/**
 * Reading files the file API was asked for without trusting `stat().size` (0 on procfs and
 * sysfs, stale for a file being written) and without blocking on a FIFO or a device: every open
 * is non-blocking and checked on its descriptor, every read stops at a limit.
 */
import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";

/**
 * Flags every file route reads with: O_NONBLOCK so opening a FIFO never waits for a writer (the
 * open would hold a libuv thread forever), O_NOCTTY so a terminal never becomes the agent's.
 */
export const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;
/** Pieces a read takes past the size fstat gave (all of a procfs file), in bytes. */
export const READ_CHUNK_BYTES = 1 << 20; // 1 MiB

/** Reads are in whole units of this many bytes (a page). */
const READ_UNIT_BYTES = 4096;

function pages(bytes: number): number {
  return Math.ceil(bytes / READ_UNIT_BYTES) * READ_UNIT_BYTES;
}

/** An open regular file and the size `fstat` gave for it (0 on procfs even when it has bytes). */
export interface OpenedFile {
  handle: FileHandle;
  size: number;
}

/**
 * Opens `path` for reading if it is a regular file (checked with fstat on the open descriptor,
 * so a FIFO swapped in after a `stat` is caught); null for a FIFO, socket, device or directory.
 * fs errors (ENOENT, EACCES…) are thrown.
 */
export async function openRegular(path: string): Promise<OpenedFile | null> {
  const handle = await open(path, READ_FLAGS);
  try {
    const s = await handle.stat();
    if (s.isFile()) return { handle, size: s.size };
  } catch (e) {
    await handle.close().catch(() => {});
    throw e;
  }
  await handle.close().catch(() => {});
  return null;
}

/**
 * The whole content of `file` if it holds at most `max` bytes, else null (having read at most
 * `max` bytes and a page: the memory a read takes is bounded whatever the file claims). The
 * first buffer is the size fstat gave; what lies past it (procfs says 0, a file may grow) is read
 * in READ_CHUNK_BYTES pieces joined at the end, so an oversized file costs no copies. Does not close.
 */
export async function readUpTo(file: OpenedFile, max: number): Promise<Buffer | null> {
  // Buffers are whole pages: some procfs files (pagemap) refuse reads not a multiple of 8 bytes.
  const cap = pages(max + 1);
  const chunks: Buffer[] = [];
  let total = 0;
  let buf = Buffer.allocUnsafe(Math.min(cap, pages(file.size + 1)));
  let filled = 0;
  for (;;) {
    const { bytesRead } = await file.handle.read(buf, filled, buf.length - filled, null);
    if (bytesRead === 0) break;
    filled += bytesRead;
    if (total + filled > max) return null;
    if (filled === buf.length) {
      chunks.push(buf);
      total += filled;
      buf = Buffer.allocUnsafe(Math.min(cap - total, READ_CHUNK_BYTES));
      filled = 0;
    }
  }
  if (filled > 0) chunks.push(buf.subarray(0, filled));
  total += filled;
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}

/** `readUpTo` on `path` opened with `openRegular`: null content when the file is larger; null when not regular. */
export async function readRegularUpTo(path: string, max: number): Promise<{ content: Buffer | null } | null> {
  const file = await openRegular(path);
  if (!file) return null;
  try {
    return { content: await readUpTo(file, max) };
  } finally {
    await file.handle.close().catch(() => {});
  }
}
