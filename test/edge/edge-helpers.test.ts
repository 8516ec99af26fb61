/** The edge's small pure helpers for platform and web rules, each on its own. */
import { describe, expect, it } from "vitest";
import { parseTerminalName, terminalName } from "../../edge/addresses.ts";
import { needsSameOrigin, randomToken, sameOrigin } from "../../edge/auth.ts";
import { hasBody, isJsonContentType } from "../../edge/http.ts";
import { NO_WS_EXTENSIONS, withWsCompression } from "../../edge/ws-compression.ts";

const OWN = "https://edge.example";

function request(headers: Record<string, string>, method = "POST"): Request {
  return new Request(`${OWN}/api/v1/terminal/create`, { method, headers });
}

describe("randomToken", () => {
  it("is URL-safe and never starts with a dash (a CLI would take it for an option)", () => {
    // One token in 64 would start with "-" without the re-draw; 5,000 draws miss that with odds of about e^-78.
    for (let i = 0; i < 5_000; i++) expect(randomToken()).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{31}$/);
  });
});

describe("sameOrigin", () => {
  it("trusts Origin first", () => {
    expect(sameOrigin(request({ Origin: OWN }))).toBe(true);
    expect(sameOrigin(request({ Origin: "https://edge.example:8443" }))).toBe(false);
    expect(sameOrigin(request({ Origin: "http://edge.example" }))).toBe(false);
    expect(sameOrigin(request({ Origin: "null" }))).toBe(false);
    expect(sameOrigin(request({ Origin: "https://evil.example", "Sec-Fetch-Site": "same-origin" }))).toBe(false);
  });

  it("falls back to Sec-Fetch-Site, then Referer", () => {
    expect(sameOrigin(request({ "Sec-Fetch-Site": "same-origin" }))).toBe(true);
    for (const site of ["same-site", "cross-site", "none"]) expect(sameOrigin(request({ "Sec-Fetch-Site": site }))).toBe(false);
    expect(sameOrigin(request({ Referer: `${OWN}/app` }))).toBe(true);
    expect(sameOrigin(request({ Referer: "https://edge.example.evil.example/" }))).toBe(false);
    expect(sameOrigin(request({ Referer: "not a url" }))).toBe(false);
  });

  it("passes a request no browser sent", () => {
    expect(sameOrigin(request({}))).toBe(true);
  });
});

describe("needsSameOrigin", () => {
  it("holds state changes and WebSocket upgrades to the edge's origin, not reads", () => {
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) expect(needsSameOrigin(request({}, method))).toBe(true);
    for (const method of ["GET", "HEAD", "OPTIONS"]) expect(needsSameOrigin(request({}, method))).toBe(false);
    expect(needsSameOrigin(request({ Upgrade: "websocket" }, "GET"))).toBe(true);
  });
});

describe("isJsonContentType and hasBody", () => {
  it("takes application/json and +json types, with parameters, and nothing else", () => {
    for (const t of ["application/json", "Application/JSON; charset=utf-8", "application/vnd.api+json"]) expect(isJsonContentType(t)).toBe(true);
    for (const t of [null, "", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/json", "application/jsonp"]) {
      expect(isJsonContentType(t)).toBe(false);
    }
  });

  it("sees a body only where one is sent", () => {
    expect(hasBody(new Request(OWN, { method: "POST" }))).toBe(false);
    expect(hasBody(new Request(OWN, { method: "POST", body: "", headers: { "Content-Length": "0" } }))).toBe(false);
    expect(hasBody(new Request(OWN, { method: "POST", body: "x" }))).toBe(true);
  });
});

describe("terminal names", () => {
  it("round-trips and refuses names it did not make", () => {
    expect(parseTerminalName(terminalName("alpha-1", 42))).toEqual({ serverId: "alpha-1", terminalId: 42 });
    for (const name of ["alpha", "Alpha:1", "alpha:", "alpha:123456", ":1", "a:b:1"]) expect(parseTerminalName(name)).toBeNull();
  });
});

describe("withWsCompression", () => {
  const upgraded = () => {
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    server.accept();
    return new Response(null, { status: 101, webSocket: client, headers: { "Sec-WebSocket-Protocol": "edgetty.share" } });
  };

  it("makes a client's 101 name no extension by default, keeping its other headers and socket", () => {
    const before = upgraded();
    const after = withWsCompression("/api/v1/terminal/ws", before, false);
    expect(after.status).toBe(101);
    expect(after.webSocket).toBe(before.webSocket);
    expect(after.headers.get("Sec-WebSocket-Extensions")).toBe(NO_WS_EXTENSIONS);
    expect(after.headers.get("Sec-WebSocket-Protocol")).toBe("edgetty.share");
  });

  it("leaves a client's 101 to the runtime's negotiation when the operator turned deflate on", () => {
    const before = upgraded();
    expect(withWsCompression("/api/terminals/abc", before, true)).toBe(before);
  });

  it("never lets an agent link negotiate an extension", () => {
    expect(withWsCompression("/agent/v1/data", upgraded(), true).headers.get("Sec-WebSocket-Extensions")).toBe(NO_WS_EXTENSIONS);
  });

  it("passes anything but a WebSocket answer through", () => {
    const refusal = new Response("no", { status: 403 });
    expect(withWsCompression("/api/v1/terminal/ws", refusal, false)).toBe(refusal);
  });
});
