/**
 * `POST /files/upload` (multipart, parsed as it streams by busboy, written straight to disk) and
 * `POST /files/archive` (a zip streamed as it is built by yazl). Neither holds a file in memory:
 * the tunnel paces the upload to the disk and the zip to the client.
 *
 * The archive never trusts a size of 0 (procfs and sysfs report it for files that have bytes):
 * such files are read up front, at most ARCHIVE_UNSIZED_MAX_BYTES each and
 * ARCHIVE_UNSIZED_TOTAL_MAX_BYTES in all, so the zip's sizes are the real ones. Only regular files
 * are read, opened non-blocking and checked on the descriptor (a FIFO never blocks the agent).
 */
import { createWriteStream, type Stats } from "node:fs";
import { readdir, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { basename, join, normalize, relative } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { randomBytes } from "node:crypto";
import busboy from "busboy";
import yazl from "yazl";
import { validationError } from "../../../shared/open-terminal.ts";
import { FileApiError, fail, osFail } from "./paths.ts";
import { makeDirectories } from "../make-directories.ts";
import { TUNNEL_FRAME_BYTES } from "../../../shared/links/tunnel.ts";
import { openRegular, readUpTo } from "./bounded-read.ts";

/** Largest uploaded file, in bytes. */
export const UPLOAD_MAX_BYTES = 16 * 1024 ** 3; // 16 GiB
/** Multipart parts looked at per upload (fields and files), at most. */
const UPLOAD_MAX_PARTS = 32;
/** Entries one archive may hold. */
export const ARCHIVE_MAX_ENTRIES = 100_000;
/** Largest file of size 0 per `stat` (procfs, sysfs) an archive reads, in bytes; a larger one is skipped in a folder, 413 when named. */
export const ARCHIVE_UNSIZED_MAX_BYTES = 1 << 20; // 1 MiB
/** Bytes of such files one archive holds in memory in all; past it 413. */
export const ARCHIVE_UNSIZED_TOTAL_MAX_BYTES = 16 << 20; // 16 MiB

function missing(): never {
  throw new FileApiError(validationError([{ type: "missing", loc: ["body", "file"], msg: "Field required", input: null }]));
}

/** `POST /files/upload?directory=`: the multipart field `file` saved as `<directory>/<basename>`; `{path, size}`. */
export async function upload(request: Request, directory: string): Promise<Response> {
  const type = request.headers.get("content-type") ?? "";
  if (!request.body || !/^multipart\/form-data/i.test(type)) missing();
  let parser: busboy.Busboy;
  try {
    // File names are UTF-8, as browsers send them raw and Starlette reads them (busboy's default
    // for parameters is latin1, which made `é.txt` of `Ã©.txt`).
    parser = busboy({ headers: { "content-type": type }, defParamCharset: "utf8", limits: { fileSize: UPLOAD_MAX_BYTES, files: 1, parts: UPLOAD_MAX_PARTS } });
  } catch {
    missing();
  }
  let saved: Promise<{ path: string; size: number }> | null = null;
  /** The first error of the body or of a part: the body ended mid-part, or was not multipart. */
  let malformed: Error | null = null;
  parser.on("file", (field, stream, info) => {
    // busboy errors a part's stream when the body ends inside it. Listened to at once: the pipeline
    // that would listen starts only once the directory exists, and an 'error' nobody listens to
    // ends the process (the agent, with every terminal in it).
    stream.on("error", (e: Error) => (malformed ??= e));
    if (field !== "file" || saved) {
      stream.resume();
      return;
    }
    saved = (async () => {
      const name = basename(info.filename || "upload") || "upload";
      const path = normalize(join(directory, name));
      // The part file's name adds 15 bytes to the upload's: a name near the 255-byte limit of a
      // file name (which the file itself may have) is left out of it.
      const temp = join(directory, `.${Buffer.byteLength(name) <= 200 ? name : "upload"}.${randomBytes(4).toString("hex")}.part`);
      try {
        await makeDirectories(directory);
        let size = 0;
        stream.on("data", (chunk: Buffer) => (size += chunk.length));
        await pipeline(stream, createWriteStream(temp, { mode: 0o644 }));
        if ((stream as unknown as { truncated?: boolean }).truncated) fail(413, `File exceeds ${UPLOAD_MAX_BYTES} bytes`);
        await rename(temp, path);
        return { path, size };
      } catch (e) {
        stream.resume();
        await rm(temp, { force: true }).catch(() => {});
        osFail(e, path);
      }
    })();
    saved.catch(() => {});
  });
  try {
    await pipeline(Readable.fromWeb(request.body as import("node:stream/web").ReadableStream<Uint8Array>), parser);
  } catch (e) {
    malformed ??= e as Error;
  }
  if (malformed) {
    await (saved as Promise<unknown> | null)?.catch(() => {}); // its part file removed first
    fail(400, `Malformed multipart body: ${malformed.message}`);
  }
  if (!saved) missing();
  return Response.json(await saved!);
}

/**
 * A regular file's `size` bytes, opened only when yazl comes to it (an archive of many files
 * holds no descriptors meanwhile) and read a frame at a time. Fails when the path is no longer a
 * regular file or cannot be opened; a file that shrank ends early and yazl reports the size mismatch.
 */
class SizedFileStream extends Readable {
  private handle: FileHandle | null = null;
  private left: number;

  constructor(
    private readonly path: string,
    size: number,
  ) {
    super({ highWaterMark: TUNNEL_FRAME_BYTES });
    this.left = size;
  }

  override _read(): void {
    this.next().catch((e: Error) => this.destroy(e));
  }

  private async next(): Promise<void> {
    if (!this.handle) {
      const file = await openRegular(this.path);
      if (!file) throw new Error(`${this.path} is no longer a regular file`);
      if (this.destroyed) {
        await file.handle.close().catch(() => {});
        return;
      }
      this.handle = file.handle;
    }
    if (this.left === 0) {
      this.push(null);
      return;
    }
    const buf = Buffer.allocUnsafe(Math.min(this.left, TUNNEL_FRAME_BYTES));
    const { bytesRead } = await this.handle.read(buf, 0, buf.length, null);
    this.left -= bytesRead;
    this.push(bytesRead === 0 ? null : buf.subarray(0, bytesRead));
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const handle = this.handle;
    this.handle = null;
    if (!handle) callback(error);
    else handle.close().then(() => callback(error), () => callback(error));
  }
}

/**
 * Adds `stream` as `name`. yazl does not listen for errors on a stream it is given: its error is
 * passed to the ZipFile here (which cuts the download), never left unhandled (that would end the
 * process: the agent, with every terminal in it).
 */
function addStream(zip: yazl.ZipFile, stream: Readable, name: string, size?: number): void {
  stream.on("error", (error: Error) => zip.emit("error", error));
  const open = openStreams.get(zip);
  open?.add(stream);
  stream.once("close", () => open?.delete(stream));
  zip.addReadStream(stream, name, size === undefined ? {} : { size });
}

/**
 * The file streams of each archive not closed yet. yazl reads them one at a time into its output;
 * when that output is gone before the end (the client left, the walk was refused) nothing reads
 * them any more, and the one yazl had started would keep its file open until V8 collects it.
 */
const openStreams = new WeakMap<yazl.ZipFile, Set<Readable>>();

/** Budgets of one archive: entries left, and bytes of unsized files it may still read. */
interface ArchiveBudget {
  entries: number;
  unsized: number;
}

/**
 * Adds the file at `path` as `name`: "added", or why nothing was: "not-regular" (FIFO, socket,
 * device, directory) or "too-large" (size unknown and over ARCHIVE_UNSIZED_MAX_BYTES). fs errors
 * are thrown; so is the 400/413 of an exhausted budget.
 */
async function addRegular(zip: yazl.ZipFile, path: string, name: string, budget: ArchiveBudget): Promise<"added" | "not-regular" | "too-large"> {
  const file = await openRegular(path);
  if (!file) return "not-regular";
  try {
    if (--budget.entries < 0) fail(400, `Archive would hold more than ${ARCHIVE_MAX_ENTRIES} files`);
    if (file.size > 0) {
      addStream(zip, new SizedFileStream(path, file.size), name, file.size);
      return "added";
    }
    // Size 0: empty, or a procfs/sysfs file whose size is only known by reading it.
    const content = await readUpTo(file, Math.min(ARCHIVE_UNSIZED_MAX_BYTES, budget.unsized));
    if (!content) {
      if (budget.unsized < ARCHIVE_UNSIZED_MAX_BYTES) fail(413, `Archive would hold more than ${ARCHIVE_UNSIZED_TOTAL_MAX_BYTES} bytes of files of unknown size`);
      budget.entries++;
      return "too-large";
    }
    budget.unsized -= content.length;
    zip.addBuffer(content, name);
    return "added";
  } finally {
    await file.handle.close().catch(() => {});
  }
}

async function addTree(zip: yazl.ZipFile, root: string, prefix: string, budget: ArchiveBudget, signal?: AbortSignal): Promise<void> {
  const stack = [root];
  while (stack.length > 0) {
    // A walk of a large tree takes seconds (each file is opened): it stops once the caller left.
    if (signal?.aborted) fail(499, "The client went away before the archive was ready");
    const dir = stack.pop()!;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const full = join(dir, e.name);
      if (e.isDirectory()) stack.push(full);
      // Symlinks, FIFOs, sockets and devices are left out.
      else if (e.isFile()) {
        const name = join(prefix, relative(root, full));
        await addRegular(zip, full, name, budget).catch((error: unknown) => {
          if (error instanceof FileApiError) throw error;
          // A file that cannot be opened: its entry fails to open again when yazl reaches it,
          // which cuts the download (the client sees an incomplete zip, not a silently partial one).
          addStream(zip, new SizedFileStream(full, 0), name);
        });
      }
    }
  }
}

/**
 * `POST /files/archive`: the paths as one zip download (directories recursively). A named path
 * that is not a regular file or a directory (FIFO, socket, device) answers 400; one that cannot
 * be read 403; a named file of unknown size (procfs) over ARCHIVE_UNSIZED_MAX_BYTES 413. Every
 * entry is listed (and each file opened) before the answer starts, so that a tree past
 * ARCHIVE_MAX_ENTRIES answers 400 rather than a cut download; the files' bytes then stream as
 * yazl reads them. The listing stops when `signal` aborts (the caller left).
 */
export async function archive(targets: { given: string; path: string }[], signal?: AbortSignal): Promise<Response> {
  if (targets.length === 0) fail(400, "No paths provided");
  const kinds: boolean[] = [];
  for (const t of targets) {
    // Followed, as the listing and os.path.isdir do: a symlink to a folder is zipped as the folder.
    let s: Stats;
    try {
      s = await stat(t.path);
    } catch (e) {
      // Nothing there (or a dangling symlink): not found; what cannot be reached (a symlink into a
      // folder the caller may not enter): the OS's answer, 403 for permissions.
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") fail(404, `Path not found: ${t.given}`);
      osFail(e, t.path);
    }
    // Not opened unless it is a regular file or a folder: a device's open alone can act.
    if (!s.isDirectory() && !s.isFile()) fail(400, `Not a regular file or directory: ${t.given}`);
    kinds.push(s.isDirectory());
  }
  const zip = new yazl.ZipFile();
  const output = zip.outputStream as Readable;
  // yazl reports a file it cannot read on the ZipFile: it fails the stream instead of going
  // unhandled (which would end the process). That can happen as soon as the entry is added,
  // while the tree is still being listed (a file in it that cannot be opened, such as a name
  // that is not UTF-8, which Node reads back as another name), or after the listing was refused:
  // the output is listened to from the start, not only once the response's stream takes it.
  let failed: Error | null = null;
  output.on("error", (error: Error) => (failed ??= error));
  zip.on("error", (error: Error) => output.destroy(error));
  // Once the output is closed (read to its end, cancelled by the client, or destroyed below), the
  // files it did not read are closed.
  const streams = new Set<Readable>();
  openStreams.set(zip, streams);
  output.once("close", () => {
    for (const stream of streams) stream.destroy();
  });
  try {
    return await zipped(zip, output, targets, kinds, () => failed, signal);
  } catch (e) {
    output.destroy();
    throw e;
  }
}

/** The rest of {@link archive}: the entries added and the answer made, or the refusal thrown. */
async function zipped(zip: yazl.ZipFile, output: Readable, targets: { given: string; path: string }[], kinds: boolean[], failed: () => Error | null, signal?: AbortSignal): Promise<Response> {
  const budget: ArchiveBudget = { entries: ARCHIVE_MAX_ENTRIES, unsized: ARCHIVE_UNSIZED_TOTAL_MAX_BYTES };
  for (const [i, t] of targets.entries()) {
    if (kinds[i]) await addTree(zip, t.path, basename(t.path) || "dir", budget, signal);
    else {
      // A file that cannot be read (or a symlink to one) answers 403 before anything is sent.
      let added: Awaited<ReturnType<typeof addRegular>>;
      try {
        added = await addRegular(zip, t.path, basename(t.path), budget);
      } catch (e) {
        osFail(e, t.path);
      }
      if (added === "too-large") fail(413, `File too large to archive: ${t.given} (its size is unknown and it holds more than ${ARCHIVE_UNSIZED_MAX_BYTES} bytes)`);
      if (added === "not-regular") fail(400, `Not a regular file or directory: ${t.given}`);
    }
  }
  zip.end();
  // Failed before the answer: said as the file's error (a response cannot be made of a stream
  // that has already failed).
  const error = failed();
  if (error) osFail(error, targets[0]!.path);
  const name = targets.length === 1 ? basename(targets[0]!.path) || "archive" : "download";
  // An unreadable file fails the stream (the client sees a cut download), as yazl reports it.
  const body = Readable.toWeb(output) as ReadableStream<Uint8Array>;
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return new Response(body, {
    headers: {
      "Content-Type": "application/zip",
      "Content-Disposition": `attachment; filename="${ascii}.zip"; filename*=UTF-8''${encodeURIComponent(name)}.zip`,
    },
  });
}
