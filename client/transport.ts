/**
 * The client's HTTP transport: one origin, one credential, one mount. Builds URLs (the default
 * server's routes at the top level, another server's under `/api/v1/terminals/{server_id}`),
 * sends the bearer token and the Open Terminal identity headers, and turns every non-2xx answer
 * into an EdgettyError. Web standards only (fetch, URL, Headers, ReadableStream).
 */
import { EdgettyError, errorFromResponse } from "./errors.ts";
import { defaultWebSocketFactory, openChannel, type Channel, type WebSocketFactory } from "./socket.ts";

/** How the client reaches the edge. */
export interface ClientOptions {
  /** The edge's origin, e.g. `https://edgetty.example.com` (a path prefix is kept). */
  url: string;
  /**
   * `Authorization: Bearer` credential: the API key (admin) or a per-user `ett_…` token. Leave it
   * out in a browser signed in with a session cookie (same origin).
   */
  token?: string;
  /** `X-User-Id` for the Open Terminal routes: whose background processes, cwds and `/api/terminals` sessions. */
  userId?: string;
  /** `X-Session-Id` for the Open Terminal routes: the chat/session whose working directory relative paths use. */
  sessionId?: string;
  /** Extra headers on every HTTP request. */
  headers?: Record<string, string>;
  /** fetch to use (default: the global one). */
  fetch?: typeof fetch;
  /** How WebSockets are opened (default: socket.ts `defaultWebSocketFactory`). */
  webSocket?: WebSocketFactory;
}

/** A query value; arrays repeat the key, undefined and null leave it out. */
export type QueryValue = string | number | boolean | null | undefined | readonly (string | number)[];
export type Query = Record<string, QueryValue>;

/** What one request sends beyond method and path. */
export interface RequestOptions {
  query?: Query;
  /** Sent as `application/json`. */
  json?: unknown;
  /** A raw body (a stream is sent with `duplex: "half"`). */
  body?: BodyInit | null;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** The mount prefix of a server: `/api/v1/terminals/{id}`, or "" for the default server's top level. */
export function mountOf(serverId: string | null): string {
  return serverId === null ? "" : `/api/v1/terminals/${encodeURIComponent(serverId)}`;
}

/** The transport one mount uses; `at()` makes the same client for another mount. */
export class Transport {
  readonly base: string;
  /** The fetch in use, bound (browsers refuse an unbound one). */
  readonly fetchImpl: typeof fetch;

  constructor(
    readonly options: ClientOptions,
    /** `""` (the default server) or `/api/v1/terminals/{server_id}`. */
    readonly mount: string = "",
  ) {
    this.base = options.url.replace(/\/+$/, "");
    // Called unbound, fetch would throw "Illegal invocation" in browsers.
    const f = options.fetch ?? globalThis.fetch;
    this.fetchImpl = (input, init) => f(input, init);
  }

  /** The same credential at another mount. */
  at(mount: string): Transport {
    return new Transport(this.options, mount);
  }

  /** The absolute URL of `path` (which starts with `/`) under this mount, with `query`. */
  url(path: string, query: Query = {}, mounted = true): URL {
    const url = new URL(this.base + (mounted ? this.mount : "") + path);
    for (const [key, value] of Object.entries(query)) {
      if (value === undefined || value === null) continue;
      if (Array.isArray(value)) for (const item of value) url.searchParams.append(key, String(item));
      else url.searchParams.set(key, String(value));
    }
    return url;
  }

  /** Headers every request carries: the bearer token, identity headers, the caller's extras. */
  baseHeaders(extra: Record<string, string> = {}): Record<string, string> {
    const headers: Record<string, string> = { ...this.options.headers };
    if (this.options.token) headers["Authorization"] = `Bearer ${this.options.token}`;
    if (this.options.userId) headers["X-User-Id"] = this.options.userId;
    if (this.options.sessionId) headers["X-Session-Id"] = this.options.sessionId;
    return { ...headers, ...extra };
  }

  /** Sends a request and answers the Response as is, whatever its status. */
  async fetch(method: string, path: string, opts: RequestOptions = {}, mounted = true): Promise<Response> {
    const headers = this.baseHeaders(opts.headers);
    let body: BodyInit | null | undefined = opts.body;
    if (opts.json !== undefined) {
      body = JSON.stringify(opts.json);
      headers["Content-Type"] = "application/json";
    }
    const init: RequestInit & { duplex?: "half" } = { method, headers, body: body ?? null };
    if (opts.signal) init.signal = opts.signal;
    // A streamed request body needs half-duplex (fetch standard; Node's fetch insists on it).
    if (body && typeof body === "object" && (isReadableStream(body) || Symbol.asyncIterator in body)) init.duplex = "half";
    try {
      return await this.fetchImpl(this.url(path, opts.query, mounted), init);
    } catch (error) {
      if (error instanceof TypeError) throw new EdgettyError(0, "NETWORK_ERROR", `cannot reach ${this.base}: ${error.message}`, "none", null);
      throw error;
    }
  }

  /** Sends a request; a non-2xx answer throws its EdgettyError. */
  async request(method: string, path: string, opts: RequestOptions = {}, mounted = true): Promise<Response> {
    const response = await this.fetch(method, path, opts, mounted);
    if (!response.ok) throw await errorFromResponse(response);
    return response;
  }

  /** Sends a request and answers its JSON body; a non-2xx answer throws its EdgettyError. */
  async json<T>(method: string, path: string, opts: RequestOptions = {}, mounted = true): Promise<T> {
    const response = await this.request(method, path, opts, mounted);
    return (await response.json()) as T;
  }

  /** Opens a WebSocket to `path` under this mount with this client's headers; resolves once open. */
  openChannel(path: string, query: Query = {}): Promise<Channel> {
    const url = this.url(path, query);
    const httpUrl = url.toString();
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return openChannel(this.options.webSocket ?? defaultWebSocketFactory, { url: url.toString(), httpUrl, headers: this.baseHeaders(), fetch: this.fetchImpl });
  }
}

/** True for a WHATWG ReadableStream (without relying on the global, which differs by runtime). */
export function isReadableStream(value: unknown): value is ReadableStream<Uint8Array> {
  return typeof value === "object" && value !== null && typeof (value as { getReader?: unknown }).getReader === "function";
}

/** The chunks of a stream as an async iterable (Safari's ReadableStream is not one). */
export async function* chunksOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    // Leaving early (break, throw) cancels the body: the edge sees the client go.
    await reader.cancel().catch(() => {});
  }
}
