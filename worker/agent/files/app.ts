/**
 * The part of the Open Terminal API the agent answers through the HTTP tunnel: `/files/*`,
 * `/ports`, `/proxy/{port}/…`, `/system` and `/info`. A web-standard handler (Request in,
 * Response out) so it is tested without a transport; errors answer in FastAPI's shapes.
 *
 * Relative paths resolve as the reference's: the seven model tools (list, read, display, write,
 * replace, grep, glob) against the `X-Session-Id` session's cwd, the rest against home.
 */
import { realpath, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { arch, hostname, release, type as osType, userInfo } from "node:os";
import {
  BODY_NOT_UTF8,
  noRouteReply,
  OtCode,
  otError,
  parseArchiveBody,
  parseDirectoryQuery,
  parseGlobQuery,
  parseGrepQuery,
  parsePathQuery,
  parsePathsBody,
  parseReadQuery,
  parseReplaceBody,
  parseWriteBody,
} from "../../../shared/open-terminal.ts";
import type { Parsed } from "../../../shared/open-terminal.ts";
import { CwdStore } from "./cwd-store.ts";
import { deletePath, displayFile, listFiles, makeDir, movePath, readFileRoute, replaceInFile, viewFile, writeFileRoute } from "./file-routes.ts";
import { FileApiError, fail, resolvePath } from "./paths.ts";
import { proxyPort } from "./port-proxy.ts";
import { listPorts } from "./ports.ts";
import { glob, grep } from "./search.ts";
import type { TunnelCaller, TunnelHandler } from "./tunnel-server.ts";
import { archive, upload } from "./transfer.ts";

/** Largest JSON body a file route reads (a `write_file` content), in bytes. */
export const FILE_JSON_MAX_BYTES = 64 << 20; // 64 MiB

export interface OpenTerminalAppOptions {
  /** The user's home: relative paths' base without a session cwd. */
  home: string;
  /** Session working directories, shared with the execute API. */
  cwds: CwdStore;
  /** Text served at `/info` (the reference's OPEN_TERMINAL_INFO); unset → 404. */
  info?: string;
  /** Replaces the `/system` prompt; `{{os}}`, `{{hostname}}`, `{{user}}`, `{{shell}}`, `{{home}}`, `{{kernel}}`, `{{arch}}` are filled in. */
  systemPrompt?: string;
  /** Sees every resolved path before it is used; throws (a FileApiError) to refuse it. */
  guard?: (path: string) => void;
}

const DEFAULT_SYSTEM_PROMPT =
  "You have a terminal on {{hostname}} ({{os}} {{kernel}}, {{arch}}) as {{user}}, shell {{shell}}, home {{home}}. " +
  "Use run_command for shell commands: it runs them in the background on a terminal and returns at once unless you pass wait; " +
  "follow them with get_process_status, answer prompts with send_process_input and stop them with kill_process. " +
  "Use the file tools (list_files, read_file, write_file, replace_file_content, grep_search, glob_search) for files, " +
  "and display_file to show a file to the user.";

/**
 * The `/system` prompt with its placeholders filled in; `account` names the user and shell when
 * they are not the agent's (multi-user mode).
 */
export function systemPrompt(home: string, template = DEFAULT_SYSTEM_PROMPT, info?: string, account?: { name: string; shell: string }): string {
  const user = userInfo();
  const facts: Record<string, string> = {
    os: osType(),
    hostname: hostname(),
    user: account?.name ?? user.username,
    shell: account?.shell ?? process.env.SHELL ?? user.shell ?? "/bin/sh",
    python_version: "",
    home,
    kernel: release(),
    arch: arch(),
  };
  const text = template.replace(/\{\{(\w+)\}\}/g, (m, k: string) => facts[k] ?? m);
  return info ? `${text}\n\n${info}` : text;
}

function json(reply: { status: number; body: unknown }): Response {
  return Response.json(reply.body, { status: reply.status });
}

function value<T>(p: Parsed<T>): T {
  if (!p.ok) throw new FileApiError(p.reply);
  return p.value;
}

async function bodyText(request: Request): Promise<string | null> {
  if (!request.body) return null;
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value: chunk } = await reader.read();
    if (done) break;
    size += chunk.byteLength;
    if (size > FILE_JSON_MAX_BYTES) {
      await reader.cancel().catch(() => {});
      fail(413, `Request body exceeds ${FILE_JSON_MAX_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  try {
    return strictUtf8.decode(Buffer.concat(chunks));
  } catch {
    return fail(400, BODY_NOT_UTF8);
  }
}

/** A JSON body is UTF-8 (RFC 8259): anything else is refused, not patched with U+FFFD. */
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The tunnel handler for the agent's part of the Open Terminal API. */
export function openTerminalApp(opts: OpenTerminalAppOptions): TunnelHandler {
  const { home, cwds } = opts;
  return async (request: Request, caller: TunnelCaller, signal: AbortSignal): Promise<Response> => {
    const url = new URL(request.url);
    const path = url.pathname;
    const q = url.searchParams;
    const sessionBase = () => cwds.get(caller.scope, caller.session) ?? home;
    const guarded = (p: string) => {
      opts.guard?.(p);
      return p;
    };
    const atSession = (p: string) => guarded(resolvePath(p, sessionBase(), home));
    const atHome = (p: string) => guarded(resolvePath(p, home, home));
    const method = request.method;
    const route = `${method} ${path}`;
    try {
      if (path.startsWith("/proxy/")) {
        const [, , port = "", ...rest] = path.split("/");
        return await proxyPort(request, port, rest.join("/"), url.search.slice(1), signal);
      }
      if (method === "GET" && path.startsWith("/files/serve/")) return await viewFile(atHome("/" + servedPath(path.slice("/files/serve/".length))));
      switch (route) {
        case "GET /system":
          return Response.json({ prompt: systemPrompt(home, opts.systemPrompt, opts.info) });
        case "GET /info":
          if (opts.info === undefined) return json(otError(404, OtCode.NOT_FOUND, "Not Found"));
          return Response.json({ info: opts.info });
        case "GET /ports":
          return Response.json(await listPorts());
        case "GET /files/cwd":
          // `root`: where the file browser starts, the home as in the reference's default.
          return Response.json({ cwd: sessionBase(), home, root: { path: home, label: "Home" } });
        case "POST /files/cwd": {
          const { path: p } = value(parsePathsBody(await bodyText(request), ["path"] as const));
          const target = atHome(p);
          const s = await stat(target).catch(() => null);
          if (!s?.isDirectory()) fail(404, "Directory not found");
          cwds.set(caller.scope, caller.session, target);
          return Response.json({ cwd: target });
        }
        case "GET /files/list":
          return await listFiles(atSession(value(parseDirectoryQuery(q)).directory));
        case "GET /files/read": {
          const query = value(parseReadQuery(q));
          return await readFileRoute(atSession(query.path), query);
        }
        case "GET /files/display":
          return await displayFile(atSession(value(parsePathQuery(q)).path));
        case "GET /files/view":
          return await viewFile(atHome(value(parsePathQuery(q)).path));
        case "POST /files/write": {
          const b = value(parseWriteBody(await bodyText(request)));
          return await writeFileRoute(atSession(b.path), b.content);
        }
        case "POST /files/replace": {
          const b = value(parseReplaceBody(await bodyText(request)));
          return await replaceInFile(atSession(b.path), b.replacements);
        }
        case "GET /files/grep": {
          const query = value(parseGrepQuery(q));
          return await grep(atSession(query.path), query, signal);
        }
        case "GET /files/glob": {
          const query = value(parseGlobQuery(q));
          return await glob(atSession(query.path), query, signal);
        }
        case "POST /files/mkdir":
          return await makeDir(atHome(value(parsePathsBody(await bodyText(request), ["path"] as const)).path));
        case "DELETE /files/delete": {
          const target = atHome(value(parsePathQuery(q)).path);
          // An empty or relative path resolves to the home (or above it): the reference deletes
          // it, whole. Refused here: a slip of a model's tool call must not wipe the account.
          if (await holdsHome(target, home)) fail(400, "Refusing to delete the home directory or a folder that holds it");
          return await deletePath(target);
        }
        case "POST /files/move": {
          const b = value(parsePathsBody(await bodyText(request), ["source", "destination"] as const));
          const source = atHome(b.source);
          // As for delete: an empty source is the home, and moving it away would take the account's
          // files (and its shells' working directory) with it.
          if (await holdsHome(source, home)) fail(400, "Refusing to move the home directory or a folder that holds it");
          return await movePath(source, atHome(b.destination));
        }
        case "POST /files/upload": {
          if (!q.has("directory")) return json({ status: 422, body: { detail: [{ type: "missing", loc: ["query", "directory"], msg: "Field required", input: null }], code: OtCode.VALIDATION } });
          return await upload(request, atHome(value(parseDirectoryQuery(q)).directory));
        }
        case "POST /files/archive": {
          const { paths } = value(parseArchiveBody(await bodyText(request)));
          return await archive(paths.map((given) => ({ given, path: atHome(given) })), signal);
        }
      }
      return noRoute(path);
    } catch (e) {
      if (e instanceof FileApiError) return json(e.reply);
      throw e;
    }
  };
}

/**
 * The file path of `/files/serve/{path}`, percent-decoded. A malformed escape (`%ff`, `%E0%A4%A`)
 * names no file (Starlette decodes it to U+FFFD): 404, not the URIError's 500.
 */
function servedPath(encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    return fail(404, "File not found");
  }
}

/**
 * Whether deleting `target` would delete `home` or a folder that holds it (or `/`), judged on the
 * path as given and on the real path the removal acts on: its parent resolved (so
 * `/proc/self/root/<home>`, a symlinked parent, or a symlink to `/` followed by the home's path
 * cannot name the home another way), its last component not followed (a symlink is removed, not
 * what it points to).
 */
async function holdsHome(target: string, home: string): Promise<boolean> {
  const realHome = await realpath(home).catch(() => home);
  const parent = await realpath(dirname(target)).catch(() => null);
  const real = parent === null ? target : join(parent, basename(target));
  return [target, real].some((t) => t === "/" || [home, realHome].some((h) => t === h || h.startsWith(`${t}/`)));
}

const KNOWN = new Set(["/system", "/info", "/ports", "/files/cwd", "/files/list", "/files/read", "/files/display", "/files/view", "/files/write", "/files/replace", "/files/grep", "/files/glob", "/files/mkdir", "/files/delete", "/files/move", "/files/upload", "/files/archive"]);

/** FastAPI's 404 / 405 for a path this app does not serve with that method. */
function noRoute(path: string): Response {
  return json(noRouteReply(KNOWN.has(path) || path.startsWith("/files/serve/") ? 405 : 404));
}
