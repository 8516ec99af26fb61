/**
 * Whether a WebSocket the edge answers negotiates `permessage-deflate` (RFC 7692), decided per
 * link (docs/protocol.md#compression-permessage-deflate-per-link): agent links never, client
 * terminal links only when the operator turns EDGETTY_CLIENT_WS_DEFLATE on (off by default:
 * terminal links are interactive, and deflate costs latency and edge CPU per client).
 *
 * How workerd decides (its `Response` sender, with the `web_socket_compression` behaviour every
 * compatibility date since 2023 has): the runtime answering the client's socket runs its HTTP
 * server in manual-compression mode, so the application names the extensions it supports in the
 * 101's `Sec-WebSocket-Extensions`, and the runtime agrees on the ones the client offered too.
 * When the 101 carries no such header, it supports whatever the client offered: a browser's offer
 * is accepted. Removing the offer from the request the Worker forwards to a Durable Object does
 * not change that (the outermost answer still sees the client's own offer). What does: a header
 * that names no extension the runtime implements. The runtime then agrees on nothing and writes
 * no `Sec-WebSocket-Extensions` of its own into the 101 (checked end to end in
 * test/e2e/ws-compression.test.ts).
 */

/** A 101's `Sec-WebSocket-Extensions` that supports no extension (any name workerd does not implement). */
export const NO_WS_EXTENSIONS = "edgetty-no-extensions";

/** The path prefix of agent links (agent-api.ts), which never negotiate an extension. */
const AGENT_LINK_PREFIX = "/agent/";

/**
 * `response` as sent to the client: a WebSocket answer (101) that may not compress says it
 * supports no extension; anything else is returned as it is. `path` is the request's path,
 * `clientDeflate` the operator's setting for client links.
 */
export function withWsCompression(path: string, response: Response, clientDeflate: boolean): Response {
  if (response.status !== 101 || !response.webSocket) return response;
  if (clientDeflate && !path.startsWith(AGENT_LINK_PREFIX)) return response;
  const headers = new Headers(response.headers);
  headers.set("Sec-WebSocket-Extensions", NO_WS_EXTENSIONS);
  return new Response(null, { status: 101, webSocket: response.webSocket, headers });
}
