/**
 * The file API's single-file routes on the agent: cwd, list, read, display, view/serve, write,
 * replace, mkdir, delete, move. Each takes a validated request (shared/open-terminal-files.ts)
 * and answers the reference's JSON or a streamed file; failures throw FileApiError.
 */
import { constants } from "node:fs";
import { lstat, open, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { lookup } from "mime-types";
import { TUNNEL_FRAME_BYTES } from "../../../shared/links/tunnel.ts";
import { OtCode, otError, type ReadQuery, type Replacement } from "../../../shared/open-terminal.ts";
import { DOCUMENT_MAX_BYTES, ExtractorMissing, isDocument } from "./documents.ts";
import { documentText } from "./search.ts";
import { FileApiError, fail, osFail } from "./paths.ts";
import { openRegular, readRegularUpTo, type OpenedFile } from "./bounded-read.ts";
import { makeDirectories } from "../make-directories.ts";

/**
 * Largest text file `read_file` decodes whole, in bytes (line ranges still read it all). Enforced
 * on the bytes read, not on `stat().size` (0 on procfs): a read stops a page past it.
 */
export const READ_TEXT_MAX_BYTES = 64 << 20; // 64 MiB
/**
 * Bytes of files `/files/read` holds in memory at once, at most (two reads at READ_TEXT_MAX_BYTES);
 * a read that would pass it answers 429. Each is decoded, cut into lines and made JSON on the
 * agent's main thread, with every terminal: eight 60 MB reads at once had grown the agent by 700 MB
 * and stalled it until its control link timed out.
 */
export const READ_TEXT_IN_FLIGHT_MAX_BYTES = 2 * READ_TEXT_MAX_BYTES;
/** What a read of a file whose `stat` size is 0 (procfs, sysfs) counts against that, in bytes. */
export const READ_SIZELESS_BYTES = 1 << 20; // 1 MiB

let readingBytes = 0;

/** Bytes `/files/read` holds now (reserved by reads under way). */
export function readTextInFlight(): number {
  return readingBytes;
}
/** Largest file `replace_file_content` edits, in bytes. */
export const REPLACE_MAX_BYTES = 64 << 20; // 64 MiB
/** Entries `list_files` returns at most. */
export const LIST_MAX_ENTRIES = 10_000;
/** MIME prefixes `read_file` returns as raw bytes (the reference's OPEN_TERMINAL_BINARY_MIME_PREFIXES). */
export const BINARY_MIME_PREFIXES = ["image"];

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The MIME type the reference would guess from the name. */
export function guessMime(path: string): string {
  return lookup(path) || "application/octet-stream";
}

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isDirectory() ?? false;
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isFile() ?? false;
}

/** Python's `str.splitlines(keepends=True)`. */
export function splitLines(text: string): string[] {
  return text.match(/[^\n\r\v\f\x1c-\x1e\x85\u2028\u2029]*(\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]|$)/g)?.filter((l) => l !== "") ?? [];
}

function slice(path: string, text: string, q: ReadQuery): { path: string; total_lines: number; content: string } {
  const lines = splitLines(text);
  const start = (q.start_line ?? 1) - 1;
  const end = q.end_line ?? lines.length;
  return { path, total_lines: lines.length, content: lines.slice(start, end).join("") };
}

/** `GET /files/list`: `{dir, entries:[{name, type, size, modified}]}` sorted by name. */
export async function listFiles(target: string): Promise<Response> {
  if (!(await isDir(target))) fail(404, "Directory not found");
  let names: string[];
  try {
    names = (await readdir(target)).sort();
  } catch (e) {
    osFail(e, target, 403);
  }
  const entries = [];
  for (const name of names.slice(0, LIST_MAX_ENTRIES)) {
    const full = join(target, name);
    const s = await stat(full).catch(() => null);
    if (!s) continue;
    entries.push({ name, type: s.isDirectory() ? "directory" : "file", size: s.size, modified: s.mtimeMs / 1000 });
  }
  return Response.json({ dir: target, entries });
}

/** `GET /files/read`: text (line range), extracted document text, raw image bytes, 413 past READ_TEXT_MAX_BYTES, or 415. */
export async function readFileRoute(target: string, q: ReadQuery): Promise<Response> {
  const s = await stat(target).catch(() => null);
  if (!s?.isFile()) fail(404, "File not found");
  const mime = guessMime(target);
  const image = BINARY_MIME_PREFIXES.some((p) => mime.startsWith(p));
  const tooLarge = (size: string): never => fail(413, `File too large to read (${size}, limit ${READ_TEXT_MAX_BYTES}); use the terminal to inspect it`);
  if (s.size > READ_TEXT_MAX_BYTES) {
    if (image) return streamFile(target, mime);
    return tooLarge(`${s.size} bytes`);
  }
  const reserved = s.size > 0 ? s.size : READ_SIZELESS_BYTES;
  if (readingBytes + reserved > READ_TEXT_IN_FLIGHT_MAX_BYTES) {
    throw new FileApiError(otError(429, OtCode.TOO_MANY_REQUESTS, `Too many large reads at once (${READ_TEXT_IN_FLIGHT_MAX_BYTES} bytes); try again when one has finished`));
  }
  readingBytes += reserved;
  try {
    return await readWithin(target, q, mime, image, tooLarge);
  } finally {
    readingBytes -= reserved;
  }
}

/** The rest of `/files/read`, once its bytes are reserved. */
async function readWithin(target: string, q: ReadQuery, mime: string, image: boolean, tooLarge: (size: string) => never): Promise<Response> {
  let read: { content: Buffer | null } | null;
  try {
    read = await readRegularUpTo(target, READ_TEXT_MAX_BYTES);
  } catch (e) {
    osFail(e, target, 403);
  }
  // Replaced by a FIFO, socket or device since the stat: not a file, as os.path.isfile says.
  if (!read) fail(404, "File not found");
  const raw = read.content;
  if (!raw) {
    // Its size lied (procfs, or it grew): more than the limit is there.
    if (image) return streamFile(target, mime);
    return tooLarge(`more than ${READ_TEXT_MAX_BYTES} bytes`);
  }
  let text: string | null = null;
  try {
    text = utf8.decode(raw);
  } catch {
    text = null;
  }
  if (text !== null) return Response.json(slice(target, text, q));
  if (isDocument(target) && raw.length <= DOCUMENT_MAX_BYTES) {
    let extracted: string | null = null;
    try {
      // In a thread of its own (search.ts): parsing a document can take seconds.
      extracted = await documentText(raw);
    } catch (e) {
      if (e instanceof FileApiError) throw e;
      if (!(e instanceof ExtractorMissing)) fail(400, `Could not extract text: ${(e as Error).message}`);
    }
    if (extracted !== null) return Response.json(slice(target, extracted, q));
  }
  if (image) return new Response(new Uint8Array(raw) as unknown as BodyInit, { headers: { "Content-Type": mime } });
  fail(415, `Unsupported binary file type: ${mime} (${raw.length} bytes)`);
}

/** `GET /files/display`: `{path, exists}`, never 404. */
export async function displayFile(target: string): Promise<Response> {
  return Response.json({ path: target, exists: await isFile(target) });
}

/**
 * An opened regular file's bytes, streamed (the tunnel paces the disk reads to the client). With
 * a size from fstat the stream ends there and says so in Content-Length; a size of 0 (procfs, or
 * empty) streams to the end with no length. Takes over the handle.
 */
function streamOpened(file: OpenedFile, mime: string): Response {
  const headers: Record<string, string> = { "Content-Type": mime };
  if (file.size > 0) headers["Content-Length"] = String(file.size);
  return new Response(fileBytes(file), { headers });
}

/**
 * `file`'s bytes as a byte stream: a reader that brings its own buffers (BYOB) gets the file read
 * straight into them, so a large download reuses a few buffers instead of leaving one behind per
 * read (garbage V8 collects only after ~64 MB of it); other readers get pieces of up to
 * TUNNEL_FRAME_BYTES, each no larger than what is left of the file. Stops at `file.size` when it
 * is known (a file that grows is sent as it was), at the end otherwise; closes the handle at the
 * end, on cancel and on a read error. Written here because `fs` offers no such stream with an end
 * (`FileHandle.readableWebStream` reads to EOF and is experimental).
 */
function fileBytes(file: OpenedFile): ReadableStream<Uint8Array> {
  const end = file.size > 0 ? file.size : Number.POSITIVE_INFINITY;
  let position = 0;
  const close = () => file.handle.close().catch(() => {});
  return new ReadableStream({
    type: "bytes",
    async pull(controller) {
      const request = controller.byobRequest;
      const into = (request?.view as Uint8Array<ArrayBuffer> | null | undefined) ?? new Uint8Array(Math.min(TUNNEL_FRAME_BYTES, end - position));
      const want = Math.min(into.byteLength, end - position);
      let bytesRead = 0;
      try {
        if (want > 0) ({ bytesRead } = await file.handle.read(into, 0, want, position));
      } catch (e) {
        await close();
        throw e;
      }
      if (bytesRead === 0) {
        await close();
        controller.close();
        request?.respond(0);
        return;
      }
      position += bytesRead;
      if (request) request.respond(bytesRead);
      else controller.enqueue(into.subarray(0, bytesRead));
    },
    cancel: close,
  });
}

/** `target` opened for streaming: 404 when it is not a regular file (anymore), 403 when it cannot be opened. */
async function openForStream(target: string): Promise<OpenedFile> {
  let file: OpenedFile | null;
  try {
    file = await openRegular(target);
  } catch (e) {
    osFail(e, target, 403);
  }
  if (!file) fail(404, "File not found");
  return file;
}

/** `target`'s bytes streamed with `mime` (see streamOpened). */
async function streamFile(target: string, mime: string): Promise<Response> {
  return streamOpened(await openForStream(target), mime);
}

/** `GET /files/view` and `/files/serve/{path}`: raw bytes with the guessed type; FIFOs, sockets and devices are 404 (not files). */
export async function viewFile(target: string): Promise<Response> {
  // What `stat` cannot reach (a folder it may not enter) is not found, as os.path.isfile says.
  if (!(await isFile(target))) fail(404, "File not found");
  // Opened now so a permission error is an answer, not a broken stream.
  return streamFile(target, guessMime(target));
}

/**
 * `content` written to `target` (created 0666 & ~umask, truncated), refusing anything but a
 * regular file: opened non-blocking, so a FIFO without a reader fails at once (ENXIO) instead of
 * holding a libuv thread, and a FIFO with one, a socket or a device answers 400.
 */
async function writeRegular(target: string, content: string | Buffer): Promise<void> {
  const handle = await open(target, constants.O_WRONLY | constants.O_CREAT | constants.O_NONBLOCK | constants.O_NOCTTY, 0o666);
  try {
    if (!(await handle.stat()).isFile()) fail(400, `Not a regular file: '${target}'`);
    await handle.truncate(0);
    await handle.writeFile(content);
  } finally {
    await handle.close().catch(() => {});
  }
}

/** `POST /files/write`: parents created; `{path, size}` with size in UTF-8 bytes. */
export async function writeFileRoute(target: string, content: string): Promise<Response> {
  try {
    await makeDirectories(dirname(target));
    await writeRegular(target, content);
  } catch (e) {
    osFail(e, target);
  }
  return Response.json({ path: target, size: Buffer.byteLength(content) });
}

/** Start/end offsets (in characters) of lines [start, end] (1-based, inclusive) of `text`. */
function lineWindow(text: string, start: number | null, end: number | null): [number, number] {
  if (start === null && end === null) return [0, text.length];
  const lines = splitLines(text);
  let from = 0;
  for (let i = 0; i < (start ?? 1) - 1 && i < lines.length; i++) from += lines[i]!.length;
  let to = from;
  const last = Math.min(end ?? lines.length, lines.length);
  for (let i = (start ?? 1) - 1; i < last; i++) to += lines[i]!.length;
  return [from, to];
}

function count(haystack: string, needle: string): number {
  if (needle === "") return haystack.length + 1;
  let n = 0;
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + needle.length)) n++;
  return n;
}

/** Python's `repr()` of a string, as the reference quotes a missing target. */
function pyRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  const body = s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t");
  return quote + (quote === "'" ? body.replace(/'/g, "\\'") : body) + quote;
}

/** `POST /files/replace`: replacements applied in order; `{path, size}`. */
export async function replaceInFile(target: string, replacements: Replacement[]): Promise<Response> {
  const s = await stat(target).catch(() => null);
  if (!s?.isFile()) fail(404, "File not found");
  if (s.size > REPLACE_MAX_BYTES) fail(400, `File too large to edit (${s.size} bytes)`);
  let content: string;
  try {
    const read = await readRegularUpTo(target, REPLACE_MAX_BYTES);
    if (!read) fail(404, "File not found");
    // The size lied (procfs) or the file grew: the oversize answer.
    if (!read.content) fail(400, `File too large to edit (more than ${REPLACE_MAX_BYTES} bytes)`);
    content = utf8.decode(read.content);
  } catch (e) {
    if (e instanceof TypeError) fail(400, "'utf-8' codec can't decode the file: it is not text");
    osFail(e, target);
  }
  for (const r of replacements) {
    const [from, to] = lineWindow(content, r.start_line, r.end_line);
    const region = content.slice(from, to);
    const n = count(region, r.target);
    if (n === 0) fail(400, `Target string not found: ${pyRepr(r.target.slice(0, 100))}`);
    if (n > 1 && !r.allow_multiple) fail(400, `Found ${n} occurrences of target string but allow_multiple is false`);
    // The result's size is known before it is built: a short file and a long replacement must
    // not make a string of hundreds of MB on the agent's main thread (or past V8's longest
    // string, a RangeError answered 500).
    const size = content.length + (r.allow_multiple ? n : 1) * (r.replacement.length - r.target.length);
    if (size > REPLACE_MAX_BYTES) fail(400, `File too large to edit (the result would hold ${size} characters, limit ${REPLACE_MAX_BYTES})`);
    // As Python's str.replace: an empty target matches at every position, the ends included
    // (split/join matched between characters only, and made an array of every character).
    const replaced = r.allow_multiple ? region.replaceAll(r.target, () => r.replacement) : region.replace(r.target, () => r.replacement);
    content = content.slice(0, from) + replaced + content.slice(to);
  }
  try {
    await writeRegular(target, content);
  } catch (e) {
    osFail(e, target);
  }
  return Response.json({ path: target, size: Buffer.byteLength(content) });
}

/** `POST /files/mkdir`: parents created; `{path}`. */
export async function makeDir(target: string): Promise<Response> {
  try {
    await makeDirectories(target);
  } catch (e) {
    osFail(e, target);
  }
  return Response.json({ path: target });
}

/** `DELETE /files/delete`: recursive for directories; `{path, type}`. */
export async function deletePath(target: string): Promise<Response> {
  const s = await lstat(target).catch(() => null);
  if (!s) fail(404, "Path not found");
  try {
    await rm(target, { recursive: s.isDirectory(), force: false });
  } catch (e) {
    osFail(e, target);
  }
  return Response.json({ path: target, type: s.isDirectory() ? "directory" : "file" });
}

/** `POST /files/move`: `{source, destination}`; 404 / 400 / 409 as the reference. */
export async function movePath(source: string, destination: string): Promise<Response> {
  if (!(await lstat(source).catch(() => null))) fail(404, "Source path not found");
  if (!(await isDir(dirname(destination)))) fail(400, "Destination parent directory not found");
  if (await lstat(destination).catch(() => null)) fail(409, "Destination already exists");
  try {
    await rename(source, destination);
  } catch (e) {
    osFail(e, source);
  }
  return Response.json({ source, destination });
}

/** The name a download of `target` gets. */
export function downloadName(target: string): string {
  return basename(target) || "download";
}
