/**
 * The file API's single-file routes on the agent: cwd, list, read, display, view/serve, write,
 * replace, mkdir, delete, move. Each takes a validated request (shared/open-terminal-files.ts)
 * and answers the reference's JSON or a streamed file; failures throw FileApiError.
 */
import { constants, createReadStream } from "node:fs";
import { access, lstat, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Readable } from "node:stream";
import { lookup } from "mime-types";
import { TUNNEL_FRAME_BYTES } from "../../../shared/links/tunnel.ts";
import type { ReadQuery, Replacement } from "../../../shared/open-terminal.ts";
import { DOCUMENT_MAX_BYTES, ExtractorMissing, extractText, isDocument } from "./documents.ts";
import { fail, osFail } from "./paths.ts";
import { makeDirectories } from "../make-directories.ts";

/** Largest text file `read_file` decodes whole, in bytes (line ranges still read it all). */
export const READ_TEXT_MAX_BYTES = 64 << 20; // 64 MiB
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

/** `GET /files/read`: text (line range), extracted document text, raw image bytes, or 415. */
export async function readFileRoute(target: string, q: ReadQuery): Promise<Response> {
  const s = await stat(target).catch(() => null);
  if (!s?.isFile()) fail(404, "File not found");
  if (s.size > READ_TEXT_MAX_BYTES && !isDocument(target)) {
    const mime = guessMime(target);
    if (BINARY_MIME_PREFIXES.some((p) => mime.startsWith(p))) return streamFile(target, mime, s.size);
    fail(413, `File too large to read (${s.size} bytes, limit ${READ_TEXT_MAX_BYTES}); use the terminal to inspect it`);
  }
  let raw: Buffer;
  try {
    raw = await readFile(target);
  } catch (e) {
    osFail(e, target, 403);
  }
  let text: string | null = null;
  try {
    text = utf8.decode(raw);
  } catch {
    text = null;
  }
  if (text !== null) return Response.json(slice(target, text, q));
  const mime = guessMime(target);
  if (isDocument(target) && raw.length <= DOCUMENT_MAX_BYTES) {
    let extracted: string | null = null;
    try {
      extracted = await extractText(raw);
    } catch (e) {
      if (!(e instanceof ExtractorMissing)) fail(400, `Could not extract text: ${(e as Error).message}`);
    }
    if (extracted !== null) return Response.json(slice(target, extracted, q));
  }
  if (BINARY_MIME_PREFIXES.some((p) => mime.startsWith(p))) return new Response(new Uint8Array(raw) as unknown as BodyInit, { headers: { "Content-Type": mime } });
  fail(415, `Unsupported binary file type: ${mime} (${raw.length} bytes)`);
}

/** `GET /files/display`: `{path, exists}`, never 404. */
export async function displayFile(target: string): Promise<Response> {
  return Response.json({ path: target, exists: await isFile(target) });
}

/** A file's bytes, streamed (the tunnel paces the disk reads to the client). */
function streamFile(target: string, mime: string, size: number): Response {
  // Reads of one tunnel frame each (shared/links/tunnel.ts): one frame per read, no split.
  const body = Readable.toWeb(createReadStream(target, { highWaterMark: TUNNEL_FRAME_BYTES })) as ReadableStream<Uint8Array>;
  return new Response(body, { headers: { "Content-Type": mime, "Content-Length": String(size) } });
}

/** `GET /files/view` and `/files/serve/{path}`: raw bytes with the guessed type. */
export async function viewFile(target: string): Promise<Response> {
  const s = await stat(target).catch(() => null);
  if (!s?.isFile()) fail(404, "File not found");
  try {
    // Check now so a permission error is an answer, not a broken stream.
    await access(target, constants.R_OK);
  } catch (e) {
    osFail(e, target, 403);
  }
  return streamFile(target, guessMime(target), s.size);
}

/** `POST /files/write`: parents created; `{path, size}` with size in UTF-8 bytes. */
export async function writeFileRoute(target: string, content: string): Promise<Response> {
  try {
    await makeDirectories(dirname(target));
    await writeFile(target, content);
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
    content = utf8.decode(await readFile(target));
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
    const replaced = r.allow_multiple ? region.split(r.target).join(r.replacement) : region.replace(r.target, () => r.replacement);
    content = content.slice(0, from) + replaced + content.slice(to);
  }
  try {
    await writeFile(target, content);
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
