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
/** First buffer of a read whose size is unknown, in bytes; it doubles up to the limit. */
export const READ_CHUNK_BYTES = 64 << 10; // 64 KiB

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
 * `max` bytes and a page: the memory a read takes is bounded whatever the file claims). Does not close.
 */
export async function readUpTo(file: OpenedFile, max: number): Promise<Buffer | null> {
  // Buffers are whole pages: some procfs files (pagemap) refuse reads not a multiple of 8 bytes.
  const cap = pages(max + 1);
  let buf = Buffer.allocUnsafe(Math.min(cap, pages(Math.max(file.size + 1, READ_CHUNK_BYTES))));
  let length = 0;
  for (;;) {
    if (length > max) return null;
    if (length === buf.length) {
      const grown = Buffer.allocUnsafe(Math.min(cap, buf.length * 2));
      buf.copy(grown, 0, 0, length);
      buf = grown;
    }
    const { bytesRead } = await file.handle.read(buf, length, buf.length - length, null);
    if (bytesRead === 0) break;
    length += bytesRead;
  }
  return length > max ? null : buf.subarray(0, length);
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
