/**
 * The file server of one multi-user account (os-users.ts): the agent's `/files/*` app in a
 * process of its own that runs as the account (started by user-files.ts through setpriv), so
 * every open, walk, write, rename and delete is the kernel's decision for that account — symlinks
 * and `..` included. It answers HTTP on a Unix socket in a folder only the account and root can
 * enter, and exits when the agent closes its stdin (the agent stopped or died).
 *
 * Requests come from the agent only, already authenticated: `X-Edgetty-Cwd` carries the caller's
 * session working directory (URI-encoded), if it has one. Paths in other accounts' homes answer
 * 403 as in the reference, before the kernel is asked.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { inOtherHome } from "../os-users.ts";
import { openTerminalApp } from "./app.ts";
import { CwdStore } from "./cwd-store.ts";
import { writeBody } from "./direct-body.ts";
import { fail } from "./paths.ts";

/** Header carrying the caller's session cwd from the agent to the helper (URI-encoded). */
export const HELPER_CWD_HEADER = "X-Edgetty-Cwd";
/** The session name the helper's one-entry cwd store uses. */
const SESSION = "s";

/** `req`'s headers as web Headers. */
function webHeaders(req: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [key, value] of Object.entries(req.headers)) {
    if (typeof value === "string") headers.set(key, value);
    else if (Array.isArray(value)) for (const v of value) headers.append(key, v);
  }
  return headers;
}

async function serve(req: IncomingMessage, res: ServerResponse, home: string): Promise<void> {
  const abort = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) abort.abort();
  });
  const headers = webHeaders(req);
  const cwds = new CwdStore();
  const cwd = headers.get(HELPER_CWD_HEADER);
  let session = "";
  if (cwd) {
    session = SESSION;
    cwds.set("", session, decodeURIComponent(cwd));
  }
  const app = openTerminalApp({
    home,
    cwds,
    guard: (path) => {
      if (inOtherHome(path, home)) fail(403, `Access denied: ${path} belongs to another user`);
    },
  });
  const method = req.method ?? "GET";
  const hasBody = method !== "GET" && method !== "HEAD";
  const request = new Request(`http://files${req.url ?? "/"}`, {
    method,
    headers,
    ...(hasBody ? { body: Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>, duplex: "half" } : {}),
  } as RequestInit);
  let response: Response;
  try {
    response = await app(request, { scope: "", session }, abort.signal);
  } catch (error) {
    response = Response.json({ detail: `Internal error: ${(error as Error).message}`, code: "INTERNAL" }, { status: 500 });
  }
  const flat: string[] = [];
  response.headers.forEach((value, key) => flat.push(key, value));
  res.writeHead(response.status, flat);
  if (!response.body) {
    res.end();
    return;
  }
  // A file's bytes go out through a few reused buffers (direct-body.ts), not a new one per read.
  await writeBody(response.body, res, abort.signal).catch(() => res.destroy());
}

/**
 * Runs the helper: listens on EDGETTY_FILES_SOCKET, prints `ready` on stdout once it does, and
 * exits when stdin ends. HOME is the account's home (relative paths' base).
 */
export function runFilesHelper(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const socket = env.EDGETTY_FILES_SOCKET;
  const home = env.HOME;
  if (!socket || !home) throw new Error("files-helper needs EDGETTY_FILES_SOCKET and HOME");
  // The agent is the only client: no time limits of its own on long uploads and downloads.
  const server = createServer({ requestTimeout: 0 }, (req, res) => {
    serve(req, res, home).catch(() => res.destroy());
  });
  // Idle connections stay open until the agent closes them: were the server to close one as the
  // agent reuses it, that call would fail.
  server.keepAliveTimeout = 0;
  return new Promise((resolve) => {
    process.stdin.on("end", () => process.exit(0));
    process.stdin.on("error", () => process.exit(0));
    process.stdin.resume();
    server.listen(socket, () => {
      process.stdout.write("ready\n");
      resolve();
    });
    server.on("error", (error) => {
      process.stderr.write(`files-helper: ${error.message}\n`);
      process.exit(1);
    });
  });
}
