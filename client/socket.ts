/**
 * Opening WebSockets from any runtime, and a bounded inbox to read them as async iterators.
 *
 * `defaultWebSocketFactory` picks, in order:
 * - Cloudflare Workers (`WebSocketPair` exists): `fetch` with `Upgrade: websocket`, so headers are
 *   sent and a refusal's status and body are read.
 * - the global `WebSocket` (browsers, Node ≥ 22): in Node-like runtimes headers go in
 *   undici's `{headers}` init; browsers send none (they use the session cookie, same origin). A
 *   refused upgrade only says "error" there, so the client asks the same URL once more without
 *   the upgrade to learn why (a 401 or 403 answers the same; otherwise `WEBSOCKET_REFUSED`).
 * - the `ws` package, only when there is no global WebSocket (Node 20): headers, and a refusal's
 *   status and body from its `unexpected-response`.
 * Each resolves with an open socket or rejects with an EdgettyError.
 */
import { EdgettyError, ERROR_BODY_MAX_BYTES, errorFromBody, errorFromResponse } from "./errors.ts";

/** The part of the WHATWG WebSocket the client uses (the global one, `ws`'s and Workers' all have it). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: string | ArrayBuffer | Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open" | "message" | "close" | "error", listener: (event: never) => void): void;
}

/**
 * What a factory is asked to open. `url` is `ws:`/`wss:`; `httpUrl` the same as `http:`/`https:`.
 * The factory calls `listen(ws)` as soon as it has constructed the socket, before it opens, so no
 * message or close that follows the open in the same tick is missed.
 */
export interface WebSocketRequest {
  url: string;
  httpUrl: string;
  headers: Record<string, string>;
  protocols?: string[];
  fetch: typeof fetch;
  listen(ws: WebSocketLike): void;
}

/** Opens a WebSocket; resolves once it is open, rejects with an EdgettyError when refused. */
export type WebSocketFactory = (request: WebSocketRequest) => Promise<WebSocketLike>;

/** How long opening a WebSocket may take, in milliseconds. */
export const WS_OPEN_TIMEOUT_MS = 30_000;

type WsCtor = new (url: string, protocols?: unknown, options?: unknown) => WebSocketLike;

const isNodeLike = (): boolean => typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === "string";

/** Workers: upgrade through fetch, read a refusal like any answer. */
async function openWorkers(req: WebSocketRequest): Promise<WebSocketLike> {
  const headers: Record<string, string> = { ...req.headers, Upgrade: "websocket" };
  if (req.protocols?.length) headers["Sec-WebSocket-Protocol"] = req.protocols.join(", ");
  const response = await req.fetch(req.httpUrl, { headers });
  const ws = (response as Response & { webSocket?: WebSocketLike & { accept(): void } | null }).webSocket;
  if (response.status !== 101 || !ws) throw await errorFromResponse(response);
  req.listen(ws);
  ws.accept();
  return ws;
}

/** Waits for `open`; `refused` says why when it fails first. */
function whenOpen(ws: WebSocketLike, refused: () => Promise<EdgettyError>): Promise<WebSocketLike> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (error: Promise<EdgettyError>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      error.then(reject, reject);
    };
    const timer = setTimeout(() => {
      fail(Promise.resolve(new EdgettyError(0, "WEBSOCKET_TIMEOUT", `the WebSocket did not open within ${WS_OPEN_TIMEOUT_MS} ms`, "none")));
      try {
        ws.close();
      } catch {
        /* never opened */
      }
    }, WS_OPEN_TIMEOUT_MS);
    ws.addEventListener("open", () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(ws);
    });
    ws.addEventListener("error", () => fail(refused()));
    ws.addEventListener("close", () => fail(refused()));
  });
}

/** Asks the WebSocket's URL again without the upgrade: auth and gate refusals answer the same. */
async function probe(req: WebSocketRequest): Promise<EdgettyError> {
  const fallback = new EdgettyError(0, "WEBSOCKET_REFUSED", `the edge refused the WebSocket at ${new URL(req.httpUrl).pathname}`, "none");
  try {
    const response = await req.fetch(req.httpUrl, { headers: req.headers });
    if (response.ok || response.status === 426) {
      await response.body?.cancel();
      return fallback;
    }
    return await errorFromResponse(response);
  } catch {
    return fallback;
  }
}

/** The `ws` package (Node without a global WebSocket), loaded only then. */
async function openWithWsPackage(req: WebSocketRequest): Promise<WebSocketLike> {
  // A variable specifier: bundlers for browsers and Workers leave `ws` out.
  const specifier = "ws";
  const mod = (await import(/* @vite-ignore */ specifier)) as { WebSocket?: WsCtor; default?: WsCtor };
  const Ctor = mod.WebSocket ?? mod.default;
  if (!Ctor) throw new EdgettyError(0, "WEBSOCKET_UNAVAILABLE", "no WebSocket in this runtime and the ws package did not load", "none");
  const ws = new Ctor(req.url, req.protocols ?? [], { headers: req.headers, perMessageDeflate: true }) as WebSocketLike & {
    on(event: "unexpected-response", cb: (request: { destroy(): void }, response: AsyncIterable<Uint8Array> & { statusCode?: number }) => void): void;
    terminate(): void;
  };
  req.listen(ws);
  let refusal: Promise<EdgettyError> | null = null;
  ws.on("unexpected-response", (request, response) => {
    refusal = (async () => {
      const decoder = new TextDecoder();
      let text = "";
      for await (const chunk of response) {
        text += decoder.decode(chunk, { stream: true });
        if (text.length > ERROR_BODY_MAX_BYTES) break;
      }
      let body: unknown = null;
      try {
        body = JSON.parse(text);
      } catch {
        body = null;
      }
      return errorFromBody(response.statusCode ?? 0, body, body === null ? text : "");
    })();
    refusal.finally(() => {
      request.destroy();
      ws.terminate();
    });
  });
  return whenOpen(ws, () => refusal ?? Promise.resolve(new EdgettyError(0, "WEBSOCKET_REFUSED", "the WebSocket could not be opened", "none")));
}

/** Opens a WebSocket with whatever this runtime has (see the module comment). */
export const defaultWebSocketFactory: WebSocketFactory = async (req) => {
  const g = globalThis as { WebSocketPair?: unknown; WebSocket?: WsCtor };
  if (g.WebSocketPair !== undefined) return openWorkers(req);
  if (g.WebSocket !== undefined) {
    const ws = isNodeLike()
      ? new g.WebSocket(req.url, { headers: req.headers, protocols: req.protocols ?? [] })
      : new g.WebSocket(req.url, req.protocols ?? []);
    req.listen(ws);
    return whenOpen(ws, () => probe(req));
  }
  if (isNodeLike()) return openWithWsPackage(req);
  throw new EdgettyError(0, "WEBSOCKET_UNAVAILABLE", "this runtime has no WebSocket; pass options.webSocket", "none");
};

/** Messages a channel holds before its reader is attached. */
export const CHANNEL_EARLY_MAX = 1024;

/**
 * A socket's messages and close, caught from construction on and handed to the reader once it
 * attaches (`onMessage`, `closed`). Binary messages arrive as ArrayBuffers.
 */
export class Channel {
  private ws: WebSocketLike | null = null;
  private handler: ((data: Uint8Array | string) => void) | null = null;
  private readonly early: (Uint8Array | string)[] = [];
  private closeInfo: { code: number; reason: string } | null = null;
  private readonly closeWaiters: ((info: { code: number; reason: string }) => void)[] = [];

  /** Starts listening to `ws` (once). */
  bind(ws: WebSocketLike): void {
    if (this.ws) return;
    this.ws = ws;
    ws.binaryType = "arraybuffer";
    ws.addEventListener("message", (event: { data: unknown }) => {
      let data: Uint8Array | string;
      try {
        data = messageData(event.data);
      } catch {
        return;
      }
      if (this.handler) this.handler(data);
      else if (this.early.length < CHANNEL_EARLY_MAX) this.early.push(data);
    });
    ws.addEventListener("close", (event: { code: number; reason: string }) => {
      if (this.closeInfo) return;
      this.closeInfo = { code: event.code, reason: event.reason };
      for (const w of this.closeWaiters.splice(0)) w(this.closeInfo);
    });
  }

  get socket(): WebSocketLike {
    if (!this.ws) throw new EdgettyError(0, "WS_CLOSED", "no socket", "websocket");
    return this.ws;
  }

  /** Hands every message (those already caught first) to `handler`. */
  onMessage(handler: (data: Uint8Array | string) => void): void {
    this.handler = handler;
    for (const data of this.early.splice(0)) handler(data);
  }

  /** Resolves with the close code and reason once the socket closed. */
  closed(): Promise<{ code: number; reason: string }> {
    if (this.closeInfo) return Promise.resolve(this.closeInfo);
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  send(data: string | Uint8Array): void {
    if (this.closeInfo || this.socket.readyState !== 1) throw new EdgettyError(0, "WS_CLOSED", "the connection is closed", "websocket");
    this.socket.send(data);
  }

  close(code = 1000, reason = ""): void {
    try {
      this.ws?.close(code, reason);
    } catch {
      /* already closed */
    }
  }
}

/** Opens a socket through `factory` and answers its channel once it is open. */
export async function openChannel(factory: WebSocketFactory, req: Omit<WebSocketRequest, "listen">): Promise<Channel> {
  const channel = new Channel();
  const ws = await factory({ ...req, listen: (socket) => channel.bind(socket) });
  channel.bind(ws); // a factory that did not call listen: best effort
  return channel;
}

/** Most items an inbox holds before it is over its limit. */
export const INBOX_MAX_ITEMS = 65_536;

/**
 * A single-consumer queue of a socket's messages, read with `for await`. `bytes` counts what is
 * queued so the owner can apply back-pressure (PAUSE) or give up; `end()` finishes iteration
 * after the queued items, `fail()` right away.
 */
export class Inbox<T> implements AsyncIterable<T> {
  private readonly items: { item: T; bytes: number }[] = [];
  private waiter: (() => void) | null = null;
  private ended = false;
  private error: unknown = null;
  /** Bytes queued now. */
  bytes = 0;

  constructor(private readonly onDrain: (bytesLeft: number) => void = () => {}) {}

  get size(): number {
    return this.items.length;
  }

  push(item: T, bytes = 0): void {
    if (this.ended) return;
    this.items.push({ item, bytes });
    this.bytes += bytes;
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  fail(error: unknown): void {
    if (this.ended) return;
    this.error = error;
    this.ended = true;
    this.items.length = 0;
    this.bytes = 0;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /**
   * The next item; null once ended and empty; throws the failure. With `deadline` (epoch ms),
   * throws a `TIMEOUT` EdgettyError when nothing came by then (no item is lost).
   */
  async next(deadline?: number): Promise<T | null> {
    for (;;) {
      const head = this.items.shift();
      if (head) {
        this.bytes -= head.bytes;
        this.onDrain(this.bytes);
        return head.item;
      }
      if (this.error !== null) throw this.error;
      if (this.ended) return null;
      await new Promise<void>((resolve, reject) => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        this.waiter = () => {
          if (timer !== undefined) clearTimeout(timer);
          resolve();
        };
        if (deadline !== undefined) {
          timer = setTimeout(() => {
            this.waiter = null;
            reject(new EdgettyError(0, "TIMEOUT", "nothing arrived in time", "none"));
          }, Math.max(0, deadline - Date.now()));
        }
      });
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      const item = await this.next();
      if (item === null) return;
      yield item;
    }
  }
}

/**
 * A message's data as bytes (binary) or a string (text). Sockets are opened with
 * `binaryType = "arraybuffer"`, so binary data is an ArrayBuffer (or a view: `ws`, Workers).
 */
export function messageData(data: unknown): Uint8Array | string {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new EdgettyError(0, "INVALID_MESSAGE", "a WebSocket message was neither text nor binary", "websocket");
}

/** Output text `readUntilMatch` keeps to match against, in characters (the newest). */
export const MATCH_WINDOW_CHARS = 1 << 20; // 1 Mi characters
/** Default wait of `waitForOutput`, in milliseconds. */
export const WAIT_OUTPUT_DEFAULT_MS = 15_000;

/**
 * Reads output chunks from `next` (null: the terminal closed) until their UTF-8 text — its newest
 * MATCH_WINDOW_CHARS characters — matches; answers that text. Rejects with TIMEOUT after
 * `timeoutMs`, or WS_CLOSED when the terminal closes first.
 */
export async function readUntilMatch(next: (deadline: number) => Promise<Uint8Array | null>, match: string | RegExp, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    let chunk: Uint8Array | null;
    try {
      chunk = await next(deadline);
    } catch (error) {
      if (error instanceof EdgettyError && error.code === "TIMEOUT") {
        throw new EdgettyError(0, "TIMEOUT", `no output matching ${String(match)} within ${timeoutMs} ms; last output: ${JSON.stringify(text.slice(-200))}`, "none");
      }
      throw error;
    }
    if (chunk === null) throw new EdgettyError(0, "WS_CLOSED", `the terminal closed before its output matched ${String(match)}`, "websocket");
    text += decoder.decode(chunk, { stream: true });
    if (text.length > MATCH_WINDOW_CHARS) text = text.slice(-MATCH_WINDOW_CHARS);
    if (typeof match === "string" ? text.includes(match) : match.test(text)) return text;
  }
}
