/**
 * A keep-alive client through the local stack: an answer that did not read the request's body
 * (a refusal before it, a 404) leaves the connection usable for the next request. workerd closes
 * a connection whose body was left unread without saying so, and the next request on it failed
 * with ECONNRESET; the Worker drains small unread bodies (edge/index.ts).
 */
import http from "node:http";
import { afterAll, describe, expect, it } from "vitest";
import { useStack } from "../support/stack.ts";

const stack = useStack();
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

afterAll(() => agent.destroy());

/** One request on the shared keep-alive socket: status and the local port it went out on. */
function send(method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; port: number }> {
  const url = new URL(stack.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path, agent, headers }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, port: req.socket?.localPort ?? 0 }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("a keep-alive connection", () => {
  it("carries the next request after answers that left the body unread", async () => {
    const auth = { Authorization: `Bearer ${stack.apiKey}` };
    const refusals = [
      () => send("POST", "/execute", { ...auth, "Content-Type": "application/x-www-form-urlencoded" }, "command=true"), // 415 before the body
      () => send("PUT", "/api/v1/admin/servers/x", { "Content-Type": "application/json" }, "{}"), // 401 before the body
      () => send("POST", "/no/such/route", auth, "x".repeat(10_000)), // 404
    ];
    const first = await send("GET", "/health", {});
    for (const refuse of refusals) {
      const refused = await refuse();
      expect(refused.status).toBeGreaterThanOrEqual(400);
      const next = await send("GET", "/health", {});
      expect(next).toEqual({ status: 200, port: first.port });
    }
  });
});
