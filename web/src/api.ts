// The edge's HTTP API as the browser client uses it: sign-in, servers, sessions, history, raw
// output and screenshots. Same origin; the session cookie (HttpOnly) authenticates every call, so
// no token is ever held here beyond the sign-in request body.

import type { ShareLinkListing } from "../../shared/session-api.ts";

/** A server (host) the signed-in user may use, from `GET /api/v1/terminals/`. */
export interface ServerEntry {
  id: string;
  url?: string;
  name: string;
  online?: boolean;
  default?: boolean;
  /** False for a server an admin disabled (admins see those too). */
  enabled?: boolean;
  /** `agent`: reached over its agent's link; `url`: an Open Terminal server the edge proxies to. */
  kind?: "agent" | "url";
  /**
   * What the caller may do on the server: `write` (create, type, delete), `read` (watch), or null
   * when only single terminals of it are granted. Absent from older edges: treat as `write`.
   */
  access?: "read" | "write" | null;
  /** The server's agent: version, process start (ISO 8601) and when it was last heard from. */
  agent?: { version: string | null; started_at: string | null; last_seen: string | null };
}

/**
 * Who is signed in, from `GET /api/v1/auth/session`: the admin key's session is `{role: "admin"}`;
 * a user's carries their id and whether their token was read-only.
 */
export interface Me {
  role: "admin" | "user";
  user_id?: string;
  read_only?: boolean;
}

/** Whether `server` lets the caller change things (create, type, delete). */
export function canWrite(server: ServerEntry): boolean {
  return server.access === undefined || server.access === "write";
}

/** A terminal session on one server, from `GET …/api/v1/terminal/sessions`. */
export interface SessionEntry {
  id: number;
  shell: string;
  cwd: string;
  started_at: string;
  command_history?: string[];
  clients?: number;
  agent_online?: boolean;
  ephemeral?: boolean;
  cols?: number;
  rows?: number;
  title?: string;
}

/** Body of `POST …/api/v1/terminal/create`; every field optional. */
/** A create request (seed 002's `POST /api/v1/terminal/create` fields the web app sends). */
export interface CreateRequest {
  terminal_id?: string;
  ephemeral?: boolean;
  shell?: string;
  cwd?: string;
  /** Create `cwd` when it does not exist (otherwise 400 CWD_NOT_FOUND). */
  cwd_auto_create?: boolean;
  cols?: number;
  rows?: number;
  user?: string;
  display?: string;
  /** Seconds the create may wait for `display` to answer. */
  wait_timeout?: number;
  desktop_env?: "xfce" | "mate";
  ssh_host?: string;
  ssh_user?: string;
  ssh_port?: string;
  ssh_password?: string;
  /** Base64 of a PEM private key. */
  ssh_key?: string;
  socks5_host?: string;
  socks5_port?: string;
  socks5_user?: string;
  socks5_pass?: string;
  /** Follow this process's output (read-only). */
  pid?: number;
}

export interface CreateResult {
  status: "created" | "exists";
  terminal_id: number;
  shell: string;
}

/** One finished or running command, from `GET …/api/v1/terminal/history/{id}`. */
export interface HistoryEntry {
  command: string;
  cwd?: string;
  exit_code?: number | null;
  started_at?: string;
  finished_at?: string | null;
  duration_ms?: number | null;
  status?: string;
}

/** An HTTP answer other than success; `message` is in plain words (see `plainMessage`). */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** The edge did not answer at all: it is down, or this device is offline (fetch itself failed). */
export class NetworkError extends Error {
  override name = "NetworkError";
  constructor() {
    super("cannot reach the edge (is it running, and is this device online?)");
  }
}

/**
 * Plain words for the error codes whose own message is API jargon, names a request field the app
 * does not show, or asks for an action the user cannot take here. Other codes keep the edge's
 * message, which already says what happened.
 */
const PLAIN_MESSAGES: Readonly<Record<string, string>> = {
  USER_EXISTS: "A user with that id (or email) already exists.",
  GROUP_EXISTS: "A group with that id already exists.",
  CWD_NOT_FOUND: "That working directory does not exist on the server (tick \"create it if missing\" to have it made).",
  SESSION_ID_TAKEN: "Another user already has a terminal with that id.",
  TOO_MANY_SHARE_LINKS: "This terminal already has the most live share links it may have (20): revoke one first.",
  SHARE_NOT_FOUND: "That share link no longer exists (it was revoked or has expired).",
  SESSION_NOT_FOUND: "That terminal is not running any more.",
  SERVER_DISABLED: "An admin has disabled this server.",
  ACCESS_DENIED: "You may not use this server or terminal.",
  READ_ONLY: "You may only watch here, not change anything.",
  ORIGIN_CHECK_FAILED: "The edge refused a change sent from another site's page.",
  AGENT_OFFLINE: "The server's agent is offline.",
};

/** The message to show for an error answer: plain words for a known code, else the edge's own words. */
export function plainMessage(status: number, code: string | undefined, edgeMessage: string): string {
  const known = code ? PLAIN_MESSAGES[code] : undefined;
  if (known) return known;
  if (status === 401) return "You are signed out: sign in again.";
  if (status === 429 && !edgeMessage) return "Too many requests: wait a moment and try again.";
  // A bare status line ("502 Bad Gateway") is all a body-less answer gives.
  return edgeMessage ? edgeMessage.charAt(0).toUpperCase() + edgeMessage.slice(1) : `The edge answered ${status}.`;
}

/** `fetch`, with a failure to reach the edge at all turned into a NetworkError (plain words). */
async function edgeFetch(path: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(path, init);
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new NetworkError();
  }
}

/** A live share link of one terminal, from `GET …/api/v1/terminal/share/{id}`. */
export type ShareLinkInfo = ShareLinkListing;

/** A share link just created: its token and URL are shown this once, never again. */
export interface CreatedShareLink extends ShareLinkInfo {
  token: string;
  url: string;
}

/** Highest id the client picks for a new non-ephemeral terminal (40000+ are ephemeral ids). */
export const PICKED_ID_MAX = 39_999;
/** How many free ids a new terminal tries before giving up (others may take ids meanwhile). */
export const CREATE_ID_ATTEMPTS = 5;

/** Shells the create form offers (the edge validates the same list). */
export const SHELLS = ["bash", "zsh", "fish", "sh"] as const;

const JSON_HEADERS = { "content-type": "application/json", accept: "application/json" };

/** Reads the error from any of the three API families' error shapes, in plain words. */
async function errorFrom(res: Response): Promise<ApiError> {
  let message = "";
  let code: string | undefined;
  try {
    const body = (await res.json()) as Record<string, unknown>;
    const text = body["message"] ?? body["detail"] ?? body["error"];
    if (typeof text === "string" && text) message = text;
    if (typeof body["code"] === "string") code = body["code"];
  } catch {
    // Not JSON: say the status.
  }
  return new ApiError(res.status, plainMessage(res.status, code, message), code);
}

/** The HTTP client. `onUnauthorized` runs whenever the edge answers 401 (the cookie expired). */
export class Api {
  constructor(private readonly onUnauthorized: () => void = () => {}) {}

  /** The URL prefix that addresses one server's session API. */
  static serverPrefix(serverId: string): string {
    return `/api/v1/terminals/${encodeURIComponent(serverId)}`;
  }

  private async request(path: string, init: RequestInit = {}): Promise<Response> {
    const res = await edgeFetch(path, { credentials: "same-origin", cache: "no-store", ...init });
    if (res.status === 401) this.onUnauthorized();
    if (!res.ok) throw await errorFrom(res);
    return res;
  }

  /** A JSON call to the edge (same origin, the cookie authenticates); errors throw ApiError. */
  async json<T>(path: string, init: RequestInit = {}): Promise<T> {
    const res = await this.request(path, { headers: JSON_HEADERS, ...init });
    return (await res.json()) as T;
  }

  /** Exchanges a token for the session cookie. Throws ApiError(401) for a bad token. */
  async signIn(token: string): Promise<void> {
    const res = await edgeFetch("/api/v1/auth/session", {
      method: "POST",
      credentials: "same-origin",
      headers: JSON_HEADERS,
      body: JSON.stringify({ token }),
    });
    if (!res.ok) throw await errorFrom(res);
  }

  /** Ends the session (clears the cookie). */
  async signOut(): Promise<void> {
    await fetch("/api/v1/auth/session", { method: "DELETE", credentials: "same-origin" });
  }

  /** Who is signed in, or null when nobody is. Network failures throw. */
  async whoAmI(): Promise<Me | null> {
    const res = await edgeFetch("/api/v1/auth/session", { credentials: "same-origin", cache: "no-store" });
    if (res.status === 401) return null;
    if (!res.ok) throw await errorFrom(res);
    return (await res.json()) as Me;
  }

  servers(): Promise<ServerEntry[]> {
    return this.json<ServerEntry[]>("/api/v1/terminals/");
  }

  /** The server's sessions; a server (a URL server, say) that answers something else than a list is an error. */
  async sessions(serverId: string): Promise<SessionEntry[]> {
    const sessions = await this.json<unknown>(`${Api.serverPrefix(serverId)}/api/v1/terminal/sessions`);
    if (!Array.isArray(sessions)) throw new Error("This server answered its session list with something other than a list.");
    return sessions as SessionEntry[];
  }

  create(serverId: string, req: CreateRequest): Promise<CreateResult> {
    return this.json<CreateResult>(`${Api.serverPrefix(serverId)}/api/v1/terminal/create`, {
      method: "POST",
      body: JSON.stringify(req),
    });
  }

  /**
   * Starts a new terminal. The session API needs an id unless the terminal is ephemeral, so when
   * none is given this picks the lowest free one, and moves on if another client took it first
   * (the edge answers "exists" for a taken id).
   */
  async createNew(serverId: string, req: CreateRequest): Promise<CreateResult> {
    if (req.terminal_id || req.ephemeral) return this.create(serverId, req);
    const taken = new Set((await this.sessions(serverId)).map((s) => s.id));
    let id = 1;
    for (let attempt = 0; attempt < CREATE_ID_ATTEMPTS; attempt++) {
      while (taken.has(id)) id++;
      if (id > PICKED_ID_MAX) break;
      const res = await this.create(serverId, { ...req, terminal_id: String(id) });
      if (res.status === "created") return res;
      taken.add(id);
    }
    throw new ApiError(409, "No free terminal id: delete a terminal or give an id.", "NO_FREE_ID");
  }

  async remove(serverId: string, terminalId: number): Promise<void> {
    await this.request(`${Api.serverPrefix(serverId)}/api/v1/terminal/${terminalId}`, { method: "DELETE" });
  }

  /** The command history, or null when this server does not keep one (404/501). */
  async history(serverId: string, terminalId: number): Promise<HistoryEntry[] | null> {
    try {
      return await this.json<HistoryEntry[]>(`${Api.serverPrefix(serverId)}/api/v1/terminal/history/${terminalId}`);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 501)) return null;
      throw err;
    }
  }

  /** The terminal's live share links, newest first (without their tokens). */
  shareLinks(serverId: string, terminalId: number): Promise<ShareLinkInfo[]> {
    return this.json<ShareLinkInfo[]>(`${Api.serverPrefix(serverId)}/api/v1/terminal/share/${terminalId}`);
  }

  /** Creates a read-only link to the terminal that expires after `ttlS` seconds. */
  createShareLink(serverId: string, terminalId: number, ttlS: number): Promise<CreatedShareLink> {
    return this.json<CreatedShareLink>(`${Api.serverPrefix(serverId)}/api/v1/terminal/share/${terminalId}`, {
      method: "POST",
      body: JSON.stringify({ ttl_s: ttlS }),
    });
  }

  /** Revokes share link `id`; sockets opened with it close. */
  async revokeShareLink(serverId: string, terminalId: number, id: string): Promise<void> {
    await this.json(`${Api.serverPrefix(serverId)}/api/v1/terminal/share/${terminalId}/${encodeURIComponent(id)}`, { method: "DELETE" });
  }

  /** Where the raw output downloads from (the browser follows it with the cookie). */
  rawDownloadUrl(serverId: string, terminalId: number): string {
    return `${Api.serverPrefix(serverId)}/api/v1/terminal/raw?terminal_id=${terminalId}&format=download`;
  }

  /** A screenshot of the terminal's current screen as an image. */
  async screenshot(serverId: string, terminalId: number): Promise<Blob> {
    const res = await this.request(
      `${Api.serverPrefix(serverId)}/api/v1/terminal/screenshot?terminal_id=${terminalId}&save=false`,
    );
    return res.blob();
  }

  /** The WebSocket URL of one existing terminal (attach only); the cookie authenticates it, never a query parameter. */
  wsUrl(serverId: string, terminalId: number, opts: { readonly: boolean; cols?: number; rows?: number }): string {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    // Attach only: a terminal is made by createNew first, so a stale link or a reconnect after
    // the terminal was deleted never starts a new shell under its id (404 instead).
    const q = new URLSearchParams({ terminal_id: String(terminalId), create: "0" });
    if (opts.readonly) q.set("readonly", "1");
    // A writer is told when another client resizes the PTY, and shows that size until its user
    // types (terminal-page.ts): the last writer to type decides the size, as tmux's "latest".
    else q.set("size_updates", "1");
    if (opts.cols && opts.rows) {
      q.set("cols", String(opts.cols));
      q.set("rows", String(opts.rows));
    }
    return `${proto}//${location.host}${Api.serverPrefix(serverId)}/api/v1/terminal/ws?${q}`;
  }
}
