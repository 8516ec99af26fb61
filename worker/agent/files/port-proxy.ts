/**
 * `ANY /proxy/{port}/{path}`: forwards the request to `localhost:{port}` on the host (method,
 * query, headers and body passed through, streamed both ways; `Authorization` and the edge's
 * own headers are not forwarded), as the reference does for port previews. Redirects are passed
 * back, not followed. An upstream head the tunnel cannot carry (more than TUNNEL_HEADERS_MAX
 * headers, one past its length limit, or past fetch's head size) is a 502 naming why.
 */
import { maxHeaderSize } from "node:http";
import { headerListProblem, type HeaderList } from "../../../shared/links/tunnel.ts";
import { OtCode, otError } from "../../../shared/open-terminal.ts";

/** How long the upstream may take to answer its head, in ms (the reference: 300 s). */
export const PROXY_HEAD_TIMEOUT_MS = 300_000;

/**
 * Request headers not forwarded upstream: credentials, the edge's own, and hop-by-hop ones.
 * `Expect` among them: the expectation was the edge's to meet (curl sends `Expect: 100-continue`
 * with every body over 1 MB), and undici's fetch refuses a request that carries it.
 */
const DROP_UP = new Set(["host", "authorization", "connection", "transfer-encoding", "keep-alive", "upgrade", "expect", "x-session-id", "x-user-id"]);
/** Response headers not passed back (fetch has already decoded the body). */
const DROP_DOWN = new Set(["content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive"]);

function reply(status: number, code: string, detail: string): Response {
  const r = otError(status, code, detail);
  return Response.json(r.body, { status });
}

/** Forwards one request; `rest` is the path after the port (without its leading `/`). */
export async function proxyPort(request: Request, portText: string, rest: string, query: string, signal: AbortSignal): Promise<Response> {
  // An integer, as FastAPI's `port: int` parses it (a sign too); out of range is the next check.
  if (!/^[-+]?\d+$/.test(portText)) {
    return Response.json({ detail: [{ type: "int_parsing", loc: ["path", "port"], msg: "Input should be a valid integer, unable to parse string as an integer", input: portText }], code: OtCode.VALIDATION }, { status: 422 });
  }
  const port = Number(portText);
  if (port < 1 || port > 65535) return reply(422, OtCode.VALIDATION, "Port must be between 1 and 65535");
  const headers = new Headers();
  request.headers.forEach((v, k) => {
    if (!DROP_UP.has(k.toLowerCase())) headers.append(k, v);
  });
  const timeout = AbortSignal.timeout(PROXY_HEAD_TIMEOUT_MS);
  const hasBody = request.method !== "GET" && request.method !== "HEAD" && request.body !== null;
  let upstream: Response;
  try {
    upstream = await fetch(`http://localhost:${port}/${rest}${query ? `?${query}` : ""}`, {
      method: request.method,
      headers,
      redirect: "manual",
      signal: AbortSignal.any([signal, timeout]),
      ...(hasBody ? { body: request.body, duplex: "half" } : {}),
    } as RequestInit);
  } catch (e) {
    if (timeout.aborted) return reply(504, OtCode.GATEWAY_TIMEOUT, `Timeout connecting to localhost:${port}`);
    if (signal.aborted) return reply(499, OtCode.BAD_GATEWAY, "Client closed request");
    // undici refuses a response head past node:http's maxHeaderSize (16 KiB by default).
    if ((e as { cause?: { code?: unknown } }).cause?.code === "UND_ERR_HEADERS_OVERFLOW") {
      return reply(502, OtCode.BAD_GATEWAY, `Upstream response head from localhost:${port} is too large: over ${maxHeaderSize} bytes`);
    }
    // Any failure before an answer is a failed connection, as the reference's ConnectError.
    return reply(502, OtCode.BAD_GATEWAY, `Connection refused: localhost:${port}`);
  }
  const out: HeaderList = [];
  upstream.headers.forEach((v, k) => {
    if (!DROP_DOWN.has(k.toLowerCase())) out.push([k, v]);
  });
  const tooLarge = headerListProblem(out);
  if (tooLarge) {
    await upstream.body?.cancel().catch(() => {});
    return reply(502, OtCode.BAD_GATEWAY, `Upstream response head from localhost:${port} is too large: ${tooLarge}`);
  }
  return new Response(upstream.body, { status: upstream.status, statusText: upstream.statusText, headers: out });
}
