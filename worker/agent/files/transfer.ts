/**
 * `POST /files/upload` (multipart, parsed as it streams by busboy, written straight to disk) and
 * `POST /files/archive` (a zip streamed as it is built by yazl). Neither holds a file in memory:
 * the tunnel paces the upload to the disk and the zip to the client.
 */
import { constants, createWriteStream } from "node:fs";
import { access, lstat, readdir, rename, rm } from "node:fs/promises";
import { basename, join, normalize, relative } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { randomBytes } from "node:crypto";
import busboy from "busboy";
import yazl from "yazl";
import { validationError } from "../../../shared/open-terminal.ts";
import { FileApiError, fail, osFail } from "./paths.ts";
import { makeDirectories } from "../make-directories.ts";

/** Largest uploaded file, in bytes. */
export const UPLOAD_MAX_BYTES = 16 * 1024 ** 3; // 16 GiB
/** Multipart parts looked at per upload (fields and files), at most. */
const UPLOAD_MAX_PARTS = 32;
/** Entries one archive may hold. */
export const ARCHIVE_MAX_ENTRIES = 100_000;

function missing(): never {
  throw new FileApiError(validationError([{ type: "missing", loc: ["body", "file"], msg: "Field required", input: null }]));
}

/** `POST /files/upload?directory=`: the multipart field `file` saved as `<directory>/<basename>`; `{path, size}`. */
export async function upload(request: Request, directory: string): Promise<Response> {
  const type = request.headers.get("content-type") ?? "";
  if (!request.body || !/^multipart\/form-data/i.test(type)) missing();
  let parser: busboy.Busboy;
  try {
    parser = busboy({ headers: { "content-type": type }, limits: { fileSize: UPLOAD_MAX_BYTES, files: 1, parts: UPLOAD_MAX_PARTS } });
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
      const temp = join(directory, `.${name}.${randomBytes(4).toString("hex")}.part`);
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

async function addTree(zip: yazl.ZipFile, root: string, prefix: string, budget: { left: number }): Promise<void> {
  const stack = [root];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const full = join(dir, e.name);
      if (e.isDirectory()) stack.push(full);
      else if (e.isFile()) {
        if (--budget.left < 0) fail(400, `Archive would hold more than ${ARCHIVE_MAX_ENTRIES} files`);
        zip.addFile(full, join(prefix, relative(root, full)));
      }
    }
  }
}

/** `POST /files/archive`: the paths as one zip download (directories recursively). */
export async function archive(targets: { given: string; path: string }[]): Promise<Response> {
  if (targets.length === 0) fail(400, "No paths provided");
  const kinds: boolean[] = [];
  for (const t of targets) {
    const s = await lstat(t.path).catch(() => null);
    if (!s) fail(404, `Path not found: ${t.given}`);
    kinds.push(s.isDirectory());
  }
  const zip = new yazl.ZipFile();
  const budget = { left: ARCHIVE_MAX_ENTRIES };
  for (const [i, t] of targets.entries()) {
    if (kinds[i]) await addTree(zip, t.path, basename(t.path) || "dir", budget);
    else {
      if (--budget.left < 0) fail(400, `Archive would hold more than ${ARCHIVE_MAX_ENTRIES} files`);
      // A file that cannot be read (or a symlink to one) answers 403 before anything is sent.
      await access(t.path, constants.R_OK).catch((e: unknown) => osFail(e, t.path));
      zip.addFile(t.path, basename(t.path));
    }
  }
  // yazl reports a file it cannot read (inside a folder) on the ZipFile: it fails the stream
  // instead of going unhandled (which would end the process).
  zip.on("error", (error: Error) => (zip.outputStream as Readable).destroy(error));
  zip.end();
  const name = targets.length === 1 ? basename(targets[0]!.path) || "archive" : "download";
  // An unreadable file fails the stream (the client sees a cut download), as yazl reports it.
  const body = Readable.toWeb(zip.outputStream as Readable) as ReadableStream<Uint8Array>;
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return new Response(body, {
    headers: {
      "Content-Type": "application/zip",
      "Content-Disposition": `attachment; filename="${ascii}.zip"; filename*=UTF-8''${encodeURIComponent(name)}.zip`,
    },
  });
}
