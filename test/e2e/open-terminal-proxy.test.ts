/**
 * `/proxy/{port}/…` against a real upstream HTTP server this file starts on loopback, on both
 * mounts: redirects come back to the client as the upstream sent them (never followed inside the
 * edge), an upstream head the tunnel cannot carry is a 502 at once, a client head with too many or
 * too large headers is a 431, and the bare `/proxy/{port}` is the reference's 307 to `…/`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TUNNEL_HEADERS_MAX } from "../../shared/links/tunnel.ts";
import { useStack } from "../support/stack.ts";

const stack = useStack();
const MOUNTS: [string, string][] = [
  ["root mount", ""],
  ["per-server mount", "/api/v1/terminals/local"],
];

/** Requests the upstream saw, by path (a redirect followed inside the edge would show here). */
const hits = new Map<string, number>();
let upstream: Server;
let port = 0;

/** The upstream's routes: `/redirect/{status}?to=…` redirects; `/many?n=` sends n headers; `/big?bytes=` one header that long; anything else echoes its path and headers. */
function serve(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? "/", "http://upstream");
  hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
  const redirect = /^\/redirect\/(\d{3})$/.exec(url.pathname);
  if (redirect) {
    req.resume();
    res.writeHead(Number(redirect[1]), { Location: url.searchParams.get("to") ?? "/" }).end("moved");
    return;
  }
  if (url.pathname === "/many") {
    const headers: [string, string][] = [];
    for (let i = 0; i < Number(url.searchParams.get("n")); i++) headers.push([`x${i}`, "1"]);
    res.writeHead(200, headers.flat()).end("many");
    return;
  }
  if (url.pathname === "/big") {
    res.writeHead(200, { "X-Big": "b".repeat(Number(url.searchParams.get("bytes"))) }).end("big");
    return;
  }
  res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ path: req.url, method: req.method, headers: req.headersDistinct }));
}

beforeAll(async () => {
  // Sends heads of any size (the request side's limit is raised too; the agent's fetch takes 16 KiB of head).
  upstream = createServer({ maxHeaderSize: 1 << 20 }, serve);
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  port = (upstream.address() as AddressInfo).port;
});

afterAll(async () => {
  upstream.closeAllConnections();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

describe.each(MOUNTS)("on the %s", (_name, base) => {
  const proxied = (path: string, init: RequestInit = {}) => stack.api(`${base}/proxy/${port}${path}`, { redirect: "manual", ...init });

  it("passes 301, 302, 303, 307 and 308 back with the upstream's Location, unfollowed", async () => {
    const cases: [number, string, string][] = [
      [301, "GET", "/up/"],
      [302, "GET", "http://example.invalid/elsewhere?q=1"],
      [303, "POST", "/done"],
      [307, "PUT", "relative/path"],
      [308, "GET", "/tunnel"],
    ];
    for (const [status, method, to] of cases) {
      hits.clear();
      const res = await proxied(`/redirect/${status}?to=${encodeURIComponent(to)}`, { method, ...(method === "GET" ? {} : { body: "x" }) });
      expect({ status: res.status, location: res.headers.get("Location") }).toEqual({ status, location: to });
      expect(await res.text()).toBe("moved");
      // Only the redirecting path was asked for: nothing followed the Location.
      expect([...hits.keys()]).toEqual([`/redirect/${status}`]);
    }
  });

  it("answers 502 at once, naming the reason, when the upstream's head is too large for the tunnel", async () => {
    // More headers than the tunnel carries, in a head small enough for the agent's fetch.
    const many = await proxied(`/many?n=${TUNNEL_HEADERS_MAX + 50}`);
    expect(many.status).toBe(502);
    // (node:http adds a few of its own, such as Date.)
    expect(await many.json()).toEqual({ detail: expect.stringMatching(new RegExp(`^Upstream response head from localhost:${port} is too large: \\d+ headers \\(at most ${TUNNEL_HEADERS_MAX}\\)$`)), code: "BAD_GATEWAY" });
    // Thousands of headers, and one 200 KiB header: past the agent's fetch's head size.
    for (const path of ["/many?n=3000", "/big?bytes=204800"]) {
      const res = await proxied(path);
      expect(res.status).toBe(502);
      expect(await res.json()).toEqual({ detail: expect.stringMatching(new RegExp(`^Upstream response head from localhost:${port} is too large: `)), code: "BAD_GATEWAY" });
    }
    // An upstream with a head the tunnel can carry still answers.
    const fits = await proxied("/many?n=50");
    expect(fits.status).toBe(200);
    expect(fits.headers.get("x49")).toBe("1");
  });

  it("answers 431 in the family's shape to a client request with too many or too large headers", async () => {
    const headers: [string, string][] = [];
    for (let i = 0; i <= TUNNEL_HEADERS_MAX; i++) headers.push([`x-c${i}`, "1"]);
    const many = await proxied("/echo", { headers });
    expect(many.status).toBe(431);
    expect(await many.json()).toMatchObject({ detail: expect.stringMatching(/headers/i), code: expect.any(String) });
    const long = await proxied("/echo", { headers: { "X-Long": "l".repeat(20_000) } });
    expect(long.status).toBe(431);
    expect(await long.json()).toMatchObject({ detail: expect.stringMatching(/X-Long/i) });
    // Within the limits the headers reach the upstream.
    const fits = await proxied("/echo", { headers: { "X-Fine": "yes" } });
    expect(fits.status).toBe(200);
    expect((await fits.json()).headers["x-fine"]).toEqual(["yes"]);
  });

  it("redirects the bare /proxy/{port} to /proxy/{port}/ with 307, keeping the query", async () => {
    hits.clear();
    const res = await stack.api(`${base}/proxy/${port}?a=1&b=2`, { redirect: "manual" });
    expect(res.status).toBe(307);
    expect(res.headers.get("Location")).toBe(`${stack.url}${base}/proxy/${port}/?a=1&b=2`);
    expect(hits.size).toBe(0);
    const root = await stack.api(`${base}/proxy/${port}/?a=1`, { redirect: "manual" });
    expect(root.status).toBe(200);
    expect((await root.json()).path).toBe("/?a=1");
  });
});
