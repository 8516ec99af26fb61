/**
 * The close handshake through the local stack (RFC 6455 §5.5.1): a client that closes its
 * WebSocket gets a Close back, with its own code. The Durable Objects take their sockets with the
 * hibernation API, where workerd answers nothing by itself; the client's close used to end as
 * 1006 after its own timeout (edge/ws-close.ts).
 */
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { useStack } from "../support/stack.ts";

const stack = useStack();

/**
 * Opens `path` (with `headers`), runs `ready` once open (given the promise of the first message),
 * closes with `code` and answers the code and reason of the Close the server sent back (without
 * one, `ws` gives up after 30 s with 1006).
 */
async function closeAfter(path: string, headers: Record<string, string>, ready: (ws: WebSocket, first: Promise<void>) => Promise<void>, code: number): Promise<{ code: number; reason: string }> {
  const ws = new WebSocket(stack.url.replace(/^http/, "ws") + path, { headers, perMessageDeflate: false });
  const first = firstMessage(ws); // listening before the open: the first frame follows it at once
  await new Promise<void>((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  await ready(ws, first);
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once("close", (c, r) => resolve({ code: c, reason: r.toString() })));
  ws.close(code, "bye");
  return closed;
}

/** Resolves at the socket's first message. */
const firstMessage = (ws: WebSocket) => new Promise<void>((resolve) => ws.once("message", () => resolve()));
const attached = (_ws: WebSocket, first: Promise<void>) => first;

describe("a client's close", () => {
  it("is answered on a terminal attach, with the client's code (both mounts)", async () => {
    const auth = { Authorization: `Bearer ${stack.apiKey}` };
    for (const path of ["/api/v1/terminal/ws?terminal_id=41", "/api/v1/terminals/local/api/v1/terminal/ws?terminal_id=41"]) {
      expect(await closeAfter(path, auth, attached, 1000)).toEqual({ code: 1000, reason: "bye" });
    }
    expect(await closeAfter("/api/v1/terminal/ws?terminal_id=41", auth, attached, 4321)).toEqual({ code: 4321, reason: "bye" });
  });

  it("is answered on the Open Terminal WebSocket", async () => {
    const res = await stack.api("/api/terminals", { method: "POST" });
    const { id } = (await res.json()) as { id: string };
    const authenticated = async (ws: WebSocket) => {
      const answered = firstMessage(ws);
      ws.send(JSON.stringify({ type: "auth", token: stack.apiKey }));
      await answered;
    };
    expect(await closeAfter(`/api/terminals/${id}`, {}, authenticated, 1000)).toEqual({ code: 1000, reason: "bye" });
  });
});
