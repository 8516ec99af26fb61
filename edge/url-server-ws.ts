/**
 * A URL server's proxy WebSockets (ws-proxy.ts), run in that server's HostDO so a revocation
 * can reach them (live-sockets.ts). The client's socket is accepted here; once its first message
 * passes auth and the proxy's checks, the HostDO dials
 * `{url}/api/terminals/{session}?user_id=<user>` (no Origin), sends the URL server the auth
 * message it expects, `{"type":"auth","token":"<stored key>"}`, and relays frames verbatim both
 * ways (binary as binary, text as text). When either side ends, the other is closed; the client
 * with 1000, as Open WebUI does (upstream close codes are not passed on), unless the edge ended
 * it: a revoked or expired credential (4001, live-sockets.ts). A dial that fails closes 1011.
 *
 * These sockets are accepted, not hibernatable: each is a live relay to a socket this object
 * dialled, which keeps it in memory anyway.
 */
import { clientIp } from "./audit.ts";
import type { Env } from "./env.ts";
import { admissionClose, hostHolder, HeldCredentials, type CloseInfo, type Credential, type CredentialMatch, type HeldSocket } from "./live-sockets.ts";
import { log } from "./log.ts";
import { ProxyRefusals, refusalClose } from "./proxy-checks.ts";
import { forwardedUserId, hopsOf, URL_SERVER_HOPS_HEADER, URL_SERVER_HOPS_MAX, urlServerUpstream } from "./url-servers.ts";
import { authorizeProxySocket, awaitFirstMessage, ProxyWsClose } from "./ws-proxy.ts";

/**
 * Proxy WebSockets one URL server holds at once, relaying or waiting for their auth. Past it, a
 * newcomer closes the longest-waiting unauthenticated one (as raw-terminal.ts does), so silent
 * sockets never lock out clients with credentials; with none waiting it is refused (1013).
 */
export const URL_WS_MAX = 64;
/** Longest wait of the credential expiry timer, in ms (a day; a later expiry waits again). */
export const EXPIRY_TIMER_MAX_MS = 24 * 60 * 60 * 1000;
/** How long the URL server may take to accept the WebSocket, in ms. */
export const URL_WS_DIAL_TIMEOUT_MS = 10_000;

interface Relay {
  client: WebSocket;
  upstream: WebSocket | null;
  cred: Credential | null;
  /** Still waiting for its first message (or its check). */
  waiting: boolean;
}

function closeQuietly(ws: WebSocket | null, code: number, reason: string): void {
  try {
    ws?.close(code, reason.slice(0, 120));
  } catch {
    /* already closed */
  }
}

/** Messages a client may send while the URL server is being dialled; more close it (1009). */
export const DIAL_BACKLOG_MAX = 256;

/**
 * Sends every message of `from` to the socket given to `connect`, in order; until then (at most
 * `max` messages, `initial` first) they wait. Binary messages may arrive as Blobs, whose bytes
 * come asynchronously: one promise chain keeps them in order. Empty text frames are not sent.
 */
function forwarder(from: WebSocket, initial: unknown[], max: number, overflow: () => void): { connect(to: WebSocket): void } {
  let target: WebSocket | null = null;
  const waiting: unknown[] = [...initial];
  let chain: Promise<void> = Promise.resolve();
  const deliver = (data: unknown) => {
    chain = chain.then(async () => {
      try {
        if (typeof data === "string") {
          if (data !== "") target?.send(data);
        } else if (data instanceof Blob) target?.send(await data.arrayBuffer());
        else if (data instanceof ArrayBuffer) target?.send(data);
      } catch {
        /* the other side closed: its close event ends the relay */
      }
    });
  };
  from.addEventListener("message", (event) => {
    if (target) deliver(event.data);
    else if (waiting.length >= max) overflow();
    else waiting.push(event.data);
  });
  return {
    connect(to) {
      target = to;
      for (const data of waiting.splice(0)) deliver(data);
    },
  };
}

export class UrlServerSockets {
  private readonly relays = new Set<Relay>();
  private expiryTimer: ReturnType<typeof setTimeout> | null = null;
  readonly credentials: HeldCredentials;

  constructor(
    private readonly env: Env,
    private readonly serverId: () => string,
  ) {
    this.credentials = new HeldCredentials({
      env,
      holder: () => hostHolder(this.serverId()),
      held: () => [...this.relays].filter((r): r is Relay & { cred: Credential } => r.cred !== null).map((r): HeldSocket => ({ ws: r.client, cred: r.cred, writable: true })),
      close: (ws, close) => this.end(ws, close),
      armExpiry: async (at) => {
        if (this.expiryTimer) clearTimeout(this.expiryTimer);
        // Timers take at most 2^31 - 1 ms; a later expiry re-arms when this one fires.
        this.expiryTimer = at === null ? null : setTimeout(() => void this.credentials.onExpiry(), Math.min(Math.max(0, at - Date.now()), EXPIRY_TIMER_MAX_MS));
      },
    });
  }

  /** Answers a proxy WebSocket upgrade for this URL server (urlSocketRequest). */
  fetch(request: Request): Response {
    const url = new URL(request.url);
    const session = url.searchParams.get("session") ?? "";
    const asserted = url.searchParams.get("user_id");
    const ip = clientIp(request);
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    server.accept();
    if (this.relays.size >= URL_WS_MAX) {
      // Sets iterate in insertion order: the first waiting one has waited longest.
      const oldest = [...this.relays].find((r) => r.waiting);
      if (oldest) this.end(oldest.client, ProxyWsClose.AUTH_TIMEOUT);
      else {
        server.close(1013, `At most ${URL_WS_MAX} WebSockets per terminal server`);
        return new Response(null, { status: 101, webSocket: client });
      }
    }
    const hops = hopsOf(request);
    if (hops >= URL_SERVER_HOPS_MAX) {
      server.close(ProxyWsClose.PROXY_LOOP.code, ProxyWsClose.PROXY_LOOP.reason);
      return new Response(null, { status: 101, webSocket: client });
    }
    const relay: Relay = { client: server, upstream: null, cred: null, waiting: true };
    this.relays.add(relay);
    server.addEventListener("close", () => this.forget(relay, 1000, "client closed"));
    server.addEventListener("error", () => this.forget(relay, 1000, "client failed"));
    let pass: { userId: string | null } | null = null;
    awaitFirstMessage(
      server,
      async (token) => {
        const verdict = await authorizeProxySocket(this.env, token, this.serverId(), session, ip);
        if (!verdict.ok) return verdict;
        // The relay cannot keep a foreign server's terminal read-only: a `read` grant does not attach.
        if (verdict.access !== "write") return { ok: false, close: refusalClose(ProxyRefusals.READ_ONLY) };
        if (verdict.cred) {
          const admission = await this.credentials.admit(verdict.cred);
          if (admission !== "held") return { ok: false, close: admissionClose(admission) };
          relay.cred = verdict.cred;
          await this.credentials.rearm();
        }
        pass = { userId: forwardedUserId(verdict.identity, asserted) };
        return { ok: true };
      },
      (queued) => {
        relay.waiting = false;
        // From now on the client's messages wait for the URL server, in order.
        const toUpstream = forwarder(server, queued, DIAL_BACKLOG_MAX, () => this.end(server, { code: 1009, reason: "Too many messages before the terminal server answered" }));
        void this.dial(relay, session, pass!.userId, hops, toUpstream);
      },
    );
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Closes the relays of `users` (null: all) that lost their access to this server (live-sockets.ts); every relay writes. */
  recheck(users: readonly string[] | null): Promise<number> {
    return this.credentials.recheck(users, this.serverId(), null);
  }

  /** Closes the relays whose credential `match` covers (live-sockets.ts). */
  closeCredentialSockets(match: CredentialMatch, close: CloseInfo): number {
    return this.credentials.close(match, close);
  }

  private async dial(relay: Relay, session: string, userId: string | null, hops: number, toUpstream: { connect(to: WebSocket): void }): Promise<void> {
    const upstream = await urlServerUpstream(this.env, this.serverId());
    if (!this.relays.has(relay)) return;
    if (!upstream) return this.end(relay.client, ProxyWsClose.URL_NOT_CONFIGURED);
    const target = `${upstream.url}/api/terminals/${encodeURIComponent(session)}${userId === null ? "" : `?user_id=${encodeURIComponent(userId)}`}`;
    let ws: WebSocket | null = null;
    try {
      const response = await fetch(target, { headers: { Upgrade: "websocket", [URL_SERVER_HOPS_HEADER]: String(hops + 1) }, signal: AbortSignal.timeout(URL_WS_DIAL_TIMEOUT_MS) });
      ws = response.webSocket;
      if (!ws) {
        await response.body?.cancel();
        throw new Error(`the terminal server answered ${response.status}`);
      }
    } catch (error) {
      log("warn", "url_ws.dial_failed", "could not open the URL server's WebSocket", { server: this.serverId(), error });
      return this.end(relay.client, { code: 1011, reason: `Terminal proxy error: ${(error as Error).message}` });
    }
    ws.accept();
    if (!this.relays.has(relay)) return closeQuietly(ws, 1000, "client gone");
    relay.upstream = ws;
    ws.addEventListener("close", () => this.forget(relay, 1000, ""));
    ws.addEventListener("error", () => this.forget(relay, 1000, ""));
    ws.send(JSON.stringify({ type: "auth", token: upstream.key }));
    toUpstream.connect(ws);
    forwarder(ws, [], 0, () => {}).connect(relay.client);
  }

  /** The edge ends a relay: the client with `close`, the URL server with 1000. */
  private end(client: WebSocket, close: CloseInfo): void {
    const relay = [...this.relays].find((r) => r.client === client);
    closeQuietly(client, close.code, close.reason);
    if (relay) this.forget(relay, 1000, "");
  }

  /** One side ended: close the other and forget the relay. */
  private forget(relay: Relay, code: number, reason: string): void {
    if (!this.relays.delete(relay)) return;
    closeQuietly(relay.upstream, 1000, "");
    closeQuietly(relay.client, code, reason);
    if (relay.cred) void this.credentials.released(relay.cred, relay.client);
  }
}
