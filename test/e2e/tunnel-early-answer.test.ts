/**
 * A client that stops sending its body once it has an answer's head, as curl does ("HTTP error
 * before end of send, stop sending", and with `Expect: 100-continue` it sends none): the agent
 * refused the call without reading the body, and the answer's end must still come. The tunnel
 * holds an answer's end until the unread body is drained (the local runtime would otherwise close
 * the connection under a client still writing); it must not wait for bytes that never come.
 * A body past the tunnel's window (4 MiB) and one within it, declared or held back for
 * `Expect: 100-continue`.
 */
import net from "node:net";
import { describe, expect, it } from "vitest";
import { useStack } from "../support/stack.ts";
import { Waiters } from "../support/waiters.ts";

const stack = useStack();

/** What a raw HTTP/1.1 exchange brought back: the bytes so far, and whether the socket ended. */
interface RawExchange {
  text: () => string;
  ended: () => boolean;
  waiters: Waiters;
  socket: net.Socket;
}

/** Sends `head` and `bodyBytes` bytes of a body, then nothing more (the socket stays open). */
function partialRequest(head: string, bodyBytes: number): Promise<RawExchange> {
  const url = new URL(stack.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname, () => {
      socket.write(head);
      if (bodyBytes > 0) socket.write(Buffer.alloc(bodyBytes, 0x61));
      resolve({ text: () => Buffer.concat(chunks).toString("latin1"), ended: () => ended, waiters, socket });
    });
    const chunks: Buffer[] = [];
    let ended = false;
    const waiters = new Waiters();
    socket.on("data", (chunk) => {
      chunks.push(chunk);
      waiters.notify();
    });
    socket.on("close", () => {
      ended = true;
      waiters.notify();
    });
    socket.on("error", reject);
  });
}

/** A chunked answer is whole once its last chunk (`0\r\n\r\n`) came after the head. */
function wholeChunkedAnswer(text: string): boolean {
  const headEnd = text.indexOf("\r\n\r\n");
  return headEnd >= 0 && text.indexOf("0\r\n\r\n", headEnd + 4) >= 0;
}

describe("an answer given before the request body was read", () => {
  const cases = [
    { name: "a declared 5 MiB body of which 16 KiB came", length: 5 << 20, sent: 16 << 10, expect: false },
    { name: "a declared 512 KiB body of which 16 KiB came", length: 512 << 10, sent: 16 << 10, expect: false },
    { name: "a declared 5 MiB body held back for `Expect: 100-continue`", length: 5 << 20, sent: 0, expect: true },
  ];
  for (const c of cases) {
    it(`ends for ${c.name}, though the client sends no more`, { timeout: 60_000 }, async () => {
      // POST /files/upload without `directory`: the agent answers 422 without reading the body.
      const head = [
        "POST /files/upload HTTP/1.1",
        `Host: ${new URL(stack.url).host}`,
        `Authorization: Bearer ${stack.apiKey}`,
        "Content-Type: application/octet-stream",
        `Content-Length: ${c.length}`,
        ...(c.expect ? ["Expect: 100-continue"] : []),
        "",
        "",
      ].join("\r\n");
      const exchange = await partialRequest(head, c.sent);
      try {
        await exchange.waiters.until(() => wholeChunkedAnswer(exchange.text()) || exchange.ended(), "the answer's end or the socket's close", 30_000);
        const text = exchange.text();
        expect(text).toMatch(/^HTTP\/1\.1 422 /);
        expect(wholeChunkedAnswer(text)).toBe(true);
        expect(text).toContain('"loc":["query","directory"]');
      } finally {
        exchange.socket.destroy();
      }
    });
  }
});
