/**
 * `/files/*` of the Open Terminal API at one mount (docs/open-terminal.md): the model tools
 * (list, read, display, write, replace, grep, glob), the browser's routes (view, serve, mkdir,
 * delete, move, upload, archive) and the session working directory. Downloads and uploads stream:
 * nothing is held whole in memory on the client's side.
 */
import { FormDataEncoder, type FileLike, type FormDataLike } from "form-data-encoder";
import type { Replacement } from "../shared/open-terminal-files.ts";
import { chunksOf, isReadableStream, type Transport } from "./transport.ts";

/** One entry of `GET /files/list`. */
export interface FileEntry {
  name: string;
  type: "file" | "directory";
  size: number;
  /** Seconds since the epoch (a float, as Python's `st_mtime`). */
  modified: number;
}

/** `GET /files/read` of a text (or document) file. */
export interface TextFile {
  path: string;
  total_lines: number;
  content: string;
}

/** `GET /files/read` of an image: its bytes and type, as the edge sends them raw. */
export interface BinaryFile {
  path: string;
  contentType: string;
  bytes: Uint8Array;
}

/** One grep match (`{file}` only with `match_per_line: false`). */
export interface GrepMatch {
  file: string;
  line?: number;
  content?: string;
}

/** One glob match (path relative to the search directory). */
export interface GlobMatch {
  path: string;
  type: "file" | "directory";
  size: number;
  modified: number;
}

/** One replacement as sent: the validated `Replacement` (shared/open-terminal-files.ts) with its defaults left out. */
export type ReplacementRequest = Pick<Replacement, "target" | "replacement"> & Partial<Omit<Replacement, "target" | "replacement">>;

/** A streamed download: read `body` (or `chunks()`), or `bytes()` / `text()` for small ones. */
export interface Download {
  response: Response;
  body: ReadableStream<Uint8Array>;
  contentType: string;
  /** `Content-Length`, when the edge sent one. */
  size: number | null;
  /** The `Content-Disposition` file name, when there is one. */
  filename: string | null;
  /** The body's chunks as an async iterable (everywhere, Safari too). */
  chunks(): AsyncGenerator<Uint8Array>;
  bytes(): Promise<Uint8Array>;
  text(): Promise<string>;
}

/** What `upload` sends: a Blob/File (streamed by the runtime), a stream, chunks, bytes or text. */
export type UploadContent = Blob | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | Uint8Array | string;

function download(response: Response): Download {
  const length = response.headers.get("Content-Length");
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const name = /filename\*=UTF-8''([^;]+)/i.exec(disposition)?.[1] ?? /filename="([^"]*)"/i.exec(disposition)?.[1] ?? null;
  const body = response.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  return {
    response,
    body,
    contentType: response.headers.get("Content-Type") ?? "",
    size: length !== null && /^\d+$/.test(length) ? Number(length) : null,
    filename: name === null ? null : safeDecode(name),
    chunks: () => chunksOf(body),
    bytes: async () => new Uint8Array(await response.arrayBuffer()),
    text: () => response.text(),
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** A one-file FormData for the multipart encoder, whose file streams `content`. */
function streamingForm(field: string, name: string, type: string, content: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>): FormDataLike {
  const file: FileLike = {
    name,
    type,
    size: NaN, // unknown: the body is sent without Content-Length, chunk by chunk
    lastModified: Date.now(),
    stream: () => (isReadableStream(content) ? chunksOf(content) : content),
    [Symbol.toStringTag]: "File",
  };
  const entries = (): IterableIterator<[string, FileLike]> => [[field, file] as [string, FileLike]][Symbol.iterator]();
  return {
    append() {
      throw new Error("read-only form");
    },
    getAll: (key: string) => (key === field ? [file] : []),
    entries,
    [Symbol.iterator]: entries,
    [Symbol.toStringTag]: "FormData",
  };
}

function isBlob(value: unknown): value is Blob {
  return typeof Blob !== "undefined" && value instanceof Blob;
}

/** A pull-driven ReadableStream of an async iterator: reads only as fast as fetch sends. */
function streamOf(source: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const it = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await it.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel() {
      await it.return?.();
    },
  });
}

/** `/files/*` at one mount. */
export class FilesApi {
  constructor(private readonly t: Transport) {}

  /** `GET /files/cwd`: the `X-Session-Id` session's working directory and home. */
  cwd(): Promise<{ cwd: string; home: string }> {
    return this.t.json("GET", "/files/cwd");
  }

  /** `POST /files/cwd`: sets the `X-Session-Id` session's working directory. */
  setCwd(path: string): Promise<{ cwd: string }> {
    return this.t.json("POST", "/files/cwd", { json: { path } });
  }

  /** `GET /files/list`: a directory's entries. 404 `Directory not found`. */
  list(directory = "."): Promise<{ dir: string; entries: FileEntry[] }> {
    return this.t.json("GET", "/files/list", { query: { directory } });
  }

  /** `GET /files/read`: text (lines `start_line`..`end_line`, 1-based) or, for an image, its bytes. */
  async read(path: string, options: { start_line?: number; end_line?: number } = {}): Promise<TextFile | BinaryFile> {
    const response = await this.t.request("GET", "/files/read", { query: { path, ...options } });
    const type = response.headers.get("Content-Type") ?? "";
    if (/^application\/json\b/i.test(type)) return (await response.json()) as TextFile;
    return { path, contentType: type, bytes: new Uint8Array(await response.arrayBuffer()) };
  }

  /** `GET /files/display`: asks the client to show a file; never 404. */
  display(path: string): Promise<{ path: string; exists: boolean }> {
    return this.t.json("GET", "/files/display", { query: { path } });
  }

  /** `GET /files/view`: the file's bytes, streamed, with its guessed type. */
  async download(path: string, options: { signal?: AbortSignal } = {}): Promise<Download> {
    return download(await this.t.request("GET", "/files/view", { query: { path }, signal: options.signal }));
  }

  /** `GET /files/serve/{path}`: like `download`, addressed by path (for pages that load siblings). */
  async serve(path: string, options: { signal?: AbortSignal } = {}): Promise<Download> {
    const encoded = path.replace(/^\/+/, "").split("/").map(encodeURIComponent).join("/");
    return download(await this.t.request("GET", `/files/serve/${encoded}`, { signal: options.signal }));
  }

  /** `POST /files/write`: creates parents; answers the size in UTF-8 bytes. */
  write(path: string, content: string): Promise<{ path: string; size: number }> {
    return this.t.json("POST", "/files/write", { json: { path, content } });
  }

  /** `POST /files/replace`: applies replacements in order. */
  replace(path: string, replacements: ReplacementRequest[]): Promise<{ path: string; size: number }> {
    return this.t.json("POST", "/files/replace", { json: { path, replacements } });
  }

  /** `GET /files/grep`. */
  grep(
    query: string,
    options: { path?: string; regex?: boolean; case_insensitive?: boolean; include?: string[]; match_per_line?: boolean; max_results?: number } = {},
  ): Promise<{ query: string; path: string; matches: GrepMatch[]; truncated: boolean }> {
    return this.t.json("GET", "/files/grep", { query: { query, ...options } });
  }

  /** `GET /files/glob`. */
  glob(
    pattern: string,
    options: { path?: string; exclude?: string[]; type?: "file" | "directory" | "any"; max_results?: number } = {},
  ): Promise<{ pattern: string; path: string; matches: GlobMatch[]; truncated: boolean }> {
    return this.t.json("GET", "/files/glob", { query: { pattern, ...options } });
  }

  /** `POST /files/mkdir`: creates parents. */
  mkdir(path: string): Promise<{ path: string }> {
    return this.t.json("POST", "/files/mkdir", { json: { path } });
  }

  /** `DELETE /files/delete`: recursive for directories. */
  delete(path: string): Promise<{ path: string; type: "file" | "directory" }> {
    return this.t.json("DELETE", "/files/delete", { query: { path } });
  }

  /** `POST /files/move`. 409 when the destination exists. */
  move(source: string, destination: string): Promise<{ source: string; destination: string }> {
    return this.t.json("POST", "/files/move", { json: { source, destination } });
  }

  /**
   * `POST /files/upload?directory=`: multipart field `file` named `name` (only its base name is
   * kept). A Blob goes as the runtime's FormData; streams and chunks are encoded as they are read
   * (form-data-encoder), so a large file is never held whole.
   */
  async upload(directory: string, name: string, content: UploadContent, options: { type?: string; signal?: AbortSignal } = {}): Promise<{ path: string; size: number }> {
    const type = options.type ?? "application/octet-stream";
    if (typeof content === "string" || content instanceof Uint8Array || isBlob(content)) {
      const form = new FormData();
      const blob = isBlob(content) ? content : new Blob([typeof content === "string" ? content : new Uint8Array(content)], { type });
      form.append("file", blob, name);
      return this.t.json("POST", "/files/upload", { query: { directory }, body: form, signal: options.signal });
    }
    const encoder = new FormDataEncoder(streamingForm("file", name, type, content));
    return this.t.json("POST", "/files/upload", {
      query: { directory },
      body: streamOf(encoder.encode()),
      headers: { "Content-Type": encoder.contentType },
      signal: options.signal,
    });
  }

  /** `POST /files/archive`: a zip of `paths`, streamed as the agent builds it. */
  async archive(paths: string[], options: { signal?: AbortSignal } = {}): Promise<Download> {
    return download(await this.t.request("POST", "/files/archive", { json: { paths }, signal: options.signal }));
  }
}
