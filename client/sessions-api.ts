/**
 * The terminal session API (seed 002) of one server: list, create, delete, attach over the
 * WebSocket, command history, raw output and screenshots. Errors in this family's shape
 * (`{statusCode, error, message, code}`) become EdgettyErrors with `family: "session"`.
 */
import type { CommandRecord } from "../shared/history.ts";
import type { RawFormat, ScreenshotFormat } from "../shared/screen.ts";
import type { CreateSessionRequest, CreateSessionResult, DeleteSessionResult, SessionListing } from "../shared/session-api.ts";
import type { ShellName } from "../shared/validation.ts";
import { EdgettyError } from "./errors.ts";
import { TerminalConnection } from "./terminal-connection.ts";
import type { Query, Transport } from "./transport.ts";

/** Query of `/api/v1/terminal/ws`: which terminal, read-only or not, and how to create it when missing. */
export interface AttachOptions {
  /** 1–65535; a new id is chosen when absent. */
  terminal_id?: number;
  /** Watch only: INPUT and RESIZE are refused, and a missing session is not created (404). */
  readonly?: boolean;
  shell?: ShellName;
  cwd?: string;
  cwd_auto_create?: boolean;
  user?: string;
  /** Typed into a new shell once it starts (the client base64-encodes it for the wire). */
  cmd?: string;
  /** `["KEY=VALUE", …]` or `{KEY: VALUE}` for a new session. */
  env?: string[] | Record<string, string>;
  display?: string;
  cols?: number;
  rows?: number;
  pid?: number;
  ssh_host?: string;
  ssh_user?: string;
  ssh_port?: number;
  ssh_password?: string;
  socks5_host?: string;
  socks5_port?: number;
}

/** Raw output: the body, its type, and whether older lines were left out (`X-Edgetty-Truncated`). */
export interface RawOutput<T extends string | Uint8Array> {
  content: T;
  contentType: string;
  truncated: boolean;
}

/** Screenshot options (docs/screen-state.md). */
export interface ScreenshotOptions {
  format?: ScreenshotFormat;
  /** A name (`white`), `(R,G,B[,A])` or `#RRGGBB[AA]`. */
  foreground?: string;
  background?: string;
  /** 6–96 pixels. */
  fontsize?: number;
  /** Keep a copy on the host (default true). */
  save?: boolean;
}

/** A screenshot and what the edge said about it. */
export interface Screenshot {
  image: Uint8Array;
  contentType: string;
  /** Where the host saved it (`X-Screenshot-Path`), or null with `save: false`. */
  path: string | null;
  width: number | null;
  height: number | null;
}

function base64Utf8(text: string): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** The terminal session API at one mount. */
export class SessionsApi {
  constructor(private readonly t: Transport) {}

  /** `GET /api/v1/terminal/sessions`: `history_limit` (0–1000, default 50) bounds `command_history`. */
  list(options: { history_limit?: number } = {}): Promise<SessionListing[]> {
    return this.t.json("GET", "/api/v1/terminal/sessions", { query: { history_limit: options.history_limit } });
  }

  /** `POST /api/v1/terminal/create`: answers `created` or `exists`. */
  create(request: CreateSessionRequest): Promise<CreateSessionResult> {
    return this.t.json("POST", "/api/v1/terminal/create", { json: request });
  }

  /** `DELETE /api/v1/terminal/{id}`: ends the shell and every client. 404 SESSION_NOT_FOUND. */
  delete(terminalId: number): Promise<DeleteSessionResult> {
    return this.t.json("DELETE", `/api/v1/terminal/${terminalId}`);
  }

  /** `GET /api/v1/terminal/history/{id}`: every command record, oldest first. */
  history(terminalId: number): Promise<CommandRecord[]> {
    return this.t.json("GET", `/api/v1/terminal/history/${terminalId}`);
  }

  /**
   * `GET /api/v1/terminal/raw`: `download` (default) answers the raw bytes, `text` and `html` the
   * rendered screen and scrollback. `tail` keeps the last N lines. 404 SESSION_NOT_FOUND.
   */
  raw(terminalId: number, options?: { format?: "download"; tail?: number }): Promise<RawOutput<Uint8Array>>;
  raw(terminalId: number, options: { format: "text" | "html"; tail?: number }): Promise<RawOutput<string>>;
  async raw(terminalId: number, options: { format?: RawFormat; tail?: number } = {}): Promise<RawOutput<Uint8Array | string>> {
    let response: Response;
    try {
      response = await this.t.request("GET", "/api/v1/terminal/raw", { query: { terminal_id: terminalId, format: options.format, tail: options.tail } });
    } catch (error) {
      // The seed answers an unknown session here in plain text, without a code.
      if (error instanceof EdgettyError && error.status === 404 && error.family === "text") {
        throw new EdgettyError(404, "SESSION_NOT_FOUND", error.message, "text", error.body);
      }
      throw error;
    }
    const contentType = response.headers.get("Content-Type") ?? "";
    const truncated = response.headers.get("X-Edgetty-Truncated") === "1";
    const content = (options.format ?? "download") === "download" ? new Uint8Array(await response.arrayBuffer()) : await response.text();
    return { content, contentType, truncated };
  }

  /** `GET /api/v1/terminal/screenshot`: the visible screen as an image. */
  async screenshot(terminalId: number, options: ScreenshotOptions = {}): Promise<Screenshot> {
    const response = await this.t.request("GET", "/api/v1/terminal/screenshot", { query: { terminal_id: terminalId, ...options } });
    const size = /^(\d+)x(\d+)$/.exec(response.headers.get("X-Screenshot-Size") ?? "");
    return {
      image: new Uint8Array(await response.arrayBuffer()),
      contentType: response.headers.get("Content-Type") ?? "",
      path: response.headers.get("X-Screenshot-Path"),
      width: size ? Number(size[1]) : null,
      height: size ? Number(size[2]) : null,
    };
  }

  /**
   * `GET /api/v1/terminal/ws`: attaches (creating the session from `options` when it is missing,
   * unless read-only). Resolves once the session's INFO arrived; refusals (400, 401, 403, 404,
   * 503, a failed SSH login) reject with an EdgettyError.
   */
  async connect(options: AttachOptions = {}): Promise<TerminalConnection> {
    const { env, cmd, readonly, ...rest } = options;
    const query: Query = { ...rest };
    if (readonly) query["readonly"] = "true";
    if (cmd !== undefined) query["cmd"] = base64Utf8(cmd);
    if (env !== undefined) query["env"] = Array.isArray(env) ? env : Object.entries(env).map(([k, v]) => `${k}=${v}`);
    return TerminalConnection.attach(await this.t.openChannel("/api/v1/terminal/ws", query));
  }
}
