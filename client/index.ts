/**
 * edgetty's typed client (`edgetty/client`): the whole public API from Node ≥ 20.3, browsers and
 * Cloudflare Workers, on web-standard fetch and WebSocket.
 *
 *   const et = new EdgettyClient({ url: "https://edge.example.com", token: process.env.EDGETTY_API_KEY });
 *   await et.servers.list();                       // GET /api/v1/terminals/
 *   const web1 = et.server("web1");                // everything below, under /api/v1/terminals/web1/
 *   await web1.sessions.create({ terminal_id: 5 });
 *   for await (const e of et.exec.stream("ls")) … // the default server, at the top level
 *
 * The same methods work at both mounts (an EdgettyClient is the default server's; `server(id)`
 * answers another's). Every refusal throws an EdgettyError (status, code, message, family).
 * See docs/client.md.
 */
import type { TerminalServer } from "../shared/admin.ts";
import { AdminApi, AuthApi } from "./admin-api.ts";
import { ExecApi } from "./exec-api.ts";
import { FilesApi } from "./files-api.ts";
import { OpenTerminalInfoApi, OtTerminalsApi } from "./open-terminal-api.ts";
import { SessionsApi } from "./sessions-api.ts";
import { mountOf, Transport, type ClientOptions, type RequestOptions } from "./transport.ts";

/** Every route of one server: the terminal session API and the Open Terminal API. */
export class ServerClient {
  /** The terminal session API (seed 002). */
  readonly sessions: SessionsApi;
  /** `/execute`: background processes, seed 004's synchronous run and NDJSON stream. */
  readonly exec: ExecApi;
  /** `/files/*`. */
  readonly files: FilesApi;
  /** `/api/terminals` and their raw WebSocket. */
  readonly terminals: OtTerminalsApi;
  /** `/health`, `/api/config`, `/openapi.json`, `/system`, `/info`, `/ports`, `/proxy/…`. */
  readonly openTerminal: OpenTerminalInfoApi;
  protected readonly transport: Transport;

  constructor(options: ClientOptions, serverId: string | null = null) {
    this.transport = new Transport(options, mountOf(serverId));
    this.sessions = new SessionsApi(this.transport);
    this.exec = new ExecApi(this.transport);
    this.files = new FilesApi(this.transport);
    this.terminals = new OtTerminalsApi(this.transport);
    this.openTerminal = new OpenTerminalInfoApi(this.transport);
  }

  /** The mount this client addresses: "" (the default server) or `/api/v1/terminals/{id}`. */
  get mount(): string {
    return this.transport.mount;
  }

  /**
   * Any route of this server, as fetch: `path` is relative to the mount (`/api/v1/terminal/sessions`).
   * Answers the Response whatever its status (through another server's mount, this is the
   * terminals proxy `/api/v1/terminals/{server_id}/{path}`).
   */
  fetch(path: string, options: RequestOptions & { method?: string } = {}): Promise<Response> {
    const { method = "GET", ...rest } = options;
    return this.transport.fetch(method, path.startsWith("/") ? path : `/${path}`, rest);
  }
}

/** The Open WebUI terminals API: the servers this caller may use. */
export class ServersApi {
  constructor(private readonly t: Transport) {}

  /** `GET /api/v1/terminals/`: enabled, granted servers for a user; every server for an admin. */
  list(): Promise<TerminalServer[]> {
    return this.t.json("GET", "/api/v1/terminals/", {}, false);
  }
}

/** The client: the default server's routes, plus the server list, other servers, admin and auth. */
export class EdgettyClient extends ServerClient {
  /** `GET /api/v1/terminals/`. */
  readonly servers: ServersApi;
  /** `/api/v1/admin/*` (admins only). */
  readonly admin: AdminApi;
  /** `/api/v1/auth/session`. */
  readonly auth: AuthApi;

  constructor(readonly options: ClientOptions) {
    super(options, null);
    this.servers = new ServersApi(this.transport);
    this.admin = new AdminApi(this.transport);
    this.auth = new AuthApi(this.transport);
  }

  /** The same client for server `id`: every route under `/api/v1/terminals/{id}/`. */
  server(id: string): ServerClient {
    return new ServerClient(this.options, id);
  }

  /** The same client with other options (another token, user or session id). */
  with(options: Partial<ClientOptions>): EdgettyClient {
    return new EdgettyClient({ ...this.options, ...options });
  }
}

export { EdgettyError, errorFromBody, errorFromResponse, type ErrorFamily } from "./errors.ts";
export type { ClientOptions, Query, QueryValue, RequestOptions } from "./transport.ts";
export { defaultWebSocketFactory, type WebSocketFactory, type WebSocketLike, type WebSocketRequest } from "./socket.ts";
export { TerminalConnection, type CloseInfo } from "./terminal-connection.ts";
export { RawTerminalConnection } from "./raw-terminal-connection.ts";
export { SessionsApi, type AttachOptions, type RawOutput, type Screenshot, type ScreenshotOptions } from "./sessions-api.ts";
export { ExecApi, type CommandOptions } from "./exec-api.ts";
export { FilesApi, type BinaryFile, type Download, type FileEntry, type GlobMatch, type GrepMatch, type ReplacementRequest, type TextFile, type UploadContent } from "./files-api.ts";
export { OpenTerminalInfoApi, OtTerminalsApi } from "./open-terminal-api.ts";
export { AdminApi, AuthApi, GrantsAdmin, GroupsAdmin, ServersAdmin, TokensAdmin, UsersAdmin, type GrantKey } from "./admin-api.ts";
// The wire types the client reads and sends, from shared/.
export type * from "../shared/admin.ts";
export type { SessionListing, CreateSessionRequest, CreateSessionResult, DeleteSessionResult } from "../shared/session-api.ts";
export type { CommandRecord } from "../shared/history.ts";
export type { ServerFrame, SessionInfo, ExitInfo, ErrorInfo, TerminalSize } from "../shared/links/client.ts";
export type { ProcessSummary, ProcessView, SyncExecResult, OutputEntry, ProcessStatus } from "../shared/open-terminal-execute.ts";
export type { StreamEvent } from "../shared/open-terminal-ndjson.ts";
export type { TerminalInfo } from "../shared/open-terminal-terminals.ts";
export type { ApiConfig } from "../shared/open-terminal-routes.ts";
export type { Replacement } from "../shared/open-terminal-files.ts";
export type { StatsBody, ServerStats, Counters } from "../shared/stats.ts";
