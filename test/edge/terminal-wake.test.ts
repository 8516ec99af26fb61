/**
 * A TerminalDO woken from hibernation keeps what its INFO tells joiners: a read-only client mirrors
 * the PTY's size from INFO alone (docs/protocol.md), so the size the agent last reported must
 * outlive the instance's memory — it is kept in the DO's storage, which the constructor reads.
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { expect, it } from "vitest";
import { terminalStub } from "../../edge/addresses.ts";
import type { Env } from "../../edge/env.ts";
import { decodeServerFrame, encodeClientFrame } from "../../shared/links/client.ts";
import { TerminalDO } from "../../edge/terminal-do.ts";
import type { TerminalHub } from "../../edge/terminal-hub.ts";
import type { ClientAttachment } from "../../edge/terminal-sockets.ts";
import { decodeEdgeFrame, encodeAgentFrame } from "../../shared/links/data.ts";
import { until } from "../support/waiters.ts";
import { collect, withAgent } from "./worker-client.ts";

const bindings = env as unknown as Env;


it("keeps the PTY's last size where a wake-up reads it, for the INFO of read-only joiners", async () => {
  const stub = terminalStub(bindings, "wake-size", 1);
  const { waiters, agent, toAgent } = await withAgent(stub);
  // A writer resized the PTY: the agent reports the new size.
  agent.send(encodeAgentFrame({ t: "size", size: { cols: 132, rows: 43 } }));
  // The SIZE crosses the agent's socket: the viewer joins once the DO has taken it (under load it
  // could otherwise join first and get the INFO of the 80×24 before).
  const stored = () => runInDurableObject(stub, (_instance, state) => state.storage.get<{ cols: number; rows: number }>("size"));
  await until("the DO to take the agent's SIZE", async () => (await stored())?.cols === 132 || null);
  const viewer = (await stub.fetch("https://do/client?readonly=1", { headers: { Upgrade: "websocket" } })).webSocket!;
  const before = collect(viewer, waiters);
  await waiters.until(() => before.length > 0, "the first viewer's INFO");
  expect(decodeServerFrame(before[0]!)).toMatchObject({ t: "info", info: { cols: 132, rows: 43 } });

  // What the constructor restores `size` from after hibernation (the default 80×24 otherwise).
  expect(await runInDurableObject(stub, (_instance, state) => state.storage.get("size"))).toEqual({ cols: 132, rows: 43 });
  viewer.close();
  agent.close();
});

it("keeps in a client's attachment that it answers MARKs, so a woken instance still sends it MARKs", async () => {
  const stub = terminalStub(bindings, "wake-reading", 1);
  const { waiters, agent, toAgent } = await withAgent(stub);
  const reader = (await stub.fetch("https://do/client", { headers: { Upgrade: "websocket" } })).webSocket!;
  const got = collect(reader, waiters);
  await waiters.until(() => got.length > 0, "the reader's INFO");
  reader.send(encodeClientFrame({ t: "ack", mark: new Uint8Array(0) }));
  await waiters.until(() => toAgent.some((m) => decodeEdgeFrame(m).t === "snapshot-request"), "the reader's snapshot request");
  const reading = () =>
    runInDurableObject(stub, (_instance, state) => (state.getWebSockets("client")[0]!.deserializeAttachment() as ClientAttachment).reading);
  await until("the reader's attachment to say it answers MARKs", async () => (await reading())?.acks === true);

  // A new instance over the same sockets, as after hibernation: the reader is still one that answers MARKs.
  const woken = await runInDurableObject(stub, (_instance, state) => {
    const instance = new TerminalDO(state, bindings);
    return state.blockConcurrencyWhile(async () => {
      const hub = (instance as unknown as { hub: TerminalHub }).hub;
      return [...hub.clients.values()].map((c) => c.flow?.acks);
    });
  });
  expect(woken).toEqual([true]);
  reader.close();
  agent.close();
});
