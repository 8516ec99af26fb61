/**
 * Input toward an agent that acknowledges it (INPUT_ACK) is bounded in the TerminalDO: a real DO
 * in workerd, a test-played agent and real client WebSockets. Input past the window, or refused by
 * the agent, gets its sender ERROR INPUT_BACKLOG; an older agent (no `input_acks`) works as before;
 * lying acks never open the window wider than it is.
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { expect, it } from "vitest";
import { terminalStub } from "../../edge/addresses.ts";
import type { Env } from "../../edge/env.ts";
import { TerminalDO } from "../../edge/terminal-do.ts";
import type { TerminalHub } from "../../edge/terminal-hub.ts";
import { decodeServerFrame, encodeClientFrame, encodeServerFrame, type ErrorInfo } from "../../shared/links/client.ts";
import { decodeEdgeFrame, encodeAgentFrame, encodeSnapshot, INPUT_IN_FLIGHT_MAX_BYTES } from "../../shared/links/data.ts";
import { Waiters } from "../support/waiters.ts";
import { collect } from "./worker-client.ts";

const bindings = env as unknown as Env;
/** The payload of the largest INPUT frame a client may send (CLIENT_FRAME_MAX_BYTES with its type byte). */
const CHUNK = (1 << 20) - 1;

/** A terminal with a test-played agent (`input_acks` as given) and one writer client. */
async function terminal(name: string, inputAcks: boolean | undefined) {
  const stub = terminalStub(bindings, name, 1);
  const waiters = new Waiters();
  const agent = (await stub.fetch("https://do/agent", { headers: { Upgrade: "websocket" } })).webSocket!;
  const toAgent = collect(agent, waiters);
  const meta = { terminal_id: 1, shell: "bash", cwd: "/", started_at: "2026-01-01T00:00:00.000Z", ephemeral: false };
  agent.send(encodeAgentFrame({ t: "hello", hello: { end: 0, oldest: 0, size: { cols: 80, rows: 24 }, meta, ...(inputAcks === undefined ? {} : { input_acks: inputAcks }) } }));
  await waiters.until(() => toAgent.some((m) => decodeEdgeFrame(m).t === "resume"), "the DO's RESUME");
  await stub.configure(meta, { maxClients: 8, idleTimeoutMs: 0 });
  const writer = async () => {
    const ws = (await stub.fetch("https://do/client", { headers: { Upgrade: "websocket" } })).webSocket!;
    const got = collect(ws, waiters);
    await waiters.until(() => got.length > 0, "the writer's INFO");
    const errors = () => got.map((b) => decodeServerFrame(b)).flatMap((f) => (f.t === "error" ? [f.error] : []));
    const titles = () => got.map((b) => decodeServerFrame(b)).flatMap((f) => (f.t === "title" ? [f.title] : []));
    const pongs = () => got.filter((b) => decodeServerFrame(b).t === "pong").length;
    return { ws, errors, pongs, titles };
  };
  /** Input bytes the agent was sent. */
  const inputAtAgent = () => toAgent.reduce((n, m) => (m[0] === 0 ? n + m.byteLength - 1 : n), 0);
    /** Answers the DO's snapshot request, so the writers are live (sent TITLEs). */
  const repaint = async () => {
    const request = () => toAgent.map((m) => decodeEdgeFrame(m)).find((f) => f.t === "snapshot-request");
    await waiters.until(() => request() !== undefined, "a snapshot request");
    const req = request()!;
    if (req.t === "snapshot-request") agent.send(encodeSnapshot(req.id, 0, new Uint8Array(0)));
  };
  return { stub, agent, waiters, writer, inputAtAgent, repaint };
}

const input = (bytes: number) => encodeClientFrame({ t: "input", data: new Uint8Array(bytes).fill(0x61) });
const backlogErrors = (errors: ErrorInfo[]) => errors.filter((e) => e.code === "INPUT_BACKLOG");
/** The refused byte count an INPUT_BACKLOG message states. */
const refusedIn = (e: ErrorInfo) => Number(/(\d+) bytes of input were refused/.exec(e.message)?.[1]);

it("sends an agent that acknowledges input no more than INPUT_IN_FLIGHT_MAX_BYTES unacknowledged, and refuses the rest to its sender", async () => {
  const { agent, waiters, writer, inputAtAgent } = await terminal("input-window", true);
  const w = await writer();
  const frames = Math.ceil(INPUT_IN_FLIGHT_MAX_BYTES / CHUNK) + 2;
  for (let i = 0; i < frames; i++) w.ws.send(input(CHUNK));
  const refused = () => backlogErrors(w.errors()).reduce((n, e) => n + refusedIn(e), 0);
  await waiters.until(() => inputAtAgent() + refused() === frames * CHUNK, "every frame forwarded or refused");
  const errors = backlogErrors(w.errors());
  expect(errors[0]!.message).toMatch(/not reading its input/);
  // What the agent got and what was refused add up to what was sent, and the agent got no more than the window.
  expect(inputAtAgent()).toBeLessThanOrEqual(INPUT_IN_FLIGHT_MAX_BYTES);
  expect(refused()).toBeGreaterThan(0);

  // The agent takes what it was sent: the window opens again.
  agent.send(encodeAgentFrame({ t: "input-ack", refused: false, bytes: inputAtAgent() }));
  const before = inputAtAgent();
  w.ws.send(input(10));
  await waiters.until(() => inputAtAgent() === before + 10, "input after the ack");
  expect(backlogErrors(w.errors())).toHaveLength(errors.length);
  w.ws.close();
  agent.close();
});

it("tells the sender of input the agent refused, with how much, and no other writer", async () => {
  const { agent, waiters, writer, inputAtAgent } = await terminal("input-refused", true);
  const a = await writer();
  const b = await writer();
  a.ws.send(input(1000));
  await waiters.until(() => inputAtAgent() === 1000, "a's input at the agent");
  b.ws.send(input(300));
  await waiters.until(() => inputAtAgent() === 1300, "b's input at the agent");
  agent.send(encodeAgentFrame({ t: "input-ack", refused: false, bytes: 1000 }));
  agent.send(encodeAgentFrame({ t: "input-ack", refused: true, bytes: 300 }));
  await waiters.until(() => backlogErrors(b.errors()).length === 1, "b's INPUT_BACKLOG");
  expect(refusedIn(backlogErrors(b.errors())[0]!)).toBe(300);
  // Messages reach the DO in order: once a's PING is answered, any error for a would be there.
  a.ws.send(encodeClientFrame({ t: "ping", data: new Uint8Array([1]) }));
  await waiters.until(() => a.pongs() === 1, "a's PONG");
  expect(backlogErrors(a.errors())).toEqual([]);
  a.ws.close();
  b.ws.close();
  agent.close();
});

it("forwards all input to an agent that does not acknowledge input (an older agent), as before", async () => {
  const { agent, waiters, writer, inputAtAgent } = await terminal("input-old-agent", undefined);
  const w = await writer();
  const frames = Math.ceil(INPUT_IN_FLIGHT_MAX_BYTES / CHUNK) + 2;
  for (let i = 0; i < frames; i++) w.ws.send(input(CHUNK));
  await waiters.until(() => inputAtAgent() === frames * CHUNK, "all input at the agent");
  expect(backlogErrors(w.errors())).toEqual([]);
  w.ws.close();
  agent.close();
});

it("never opens the window wider for acks of more than was sent, nor for refusals of it", async () => {
  const { agent, waiters, writer, inputAtAgent, repaint } = await terminal("input-lying-acks", true);
  const w = await writer();
  await repaint();
  // Lies before anything was sent: 4 GiB accepted, 4 GiB refused.
  agent.send(encodeAgentFrame({ t: "input-ack", refused: false, bytes: 0xffff_ffff }));
  agent.send(encodeAgentFrame({ t: "input-ack", refused: true, bytes: 0xffff_ffff }));
  // A malformed one (verdict 7) is dropped alone.
  agent.send(new Uint8Array([0x87, 7, 0, 0, 0, 1]));
  // Frames of one link are handled in order: once the writer has this TITLE, the DO has had the lies.
  agent.send(encodeAgentFrame({ t: "title", frame: encodeServerFrame({ t: "title", title: "after the lies" }) }));
  await waiters.until(() => w.titles().includes("after the lies"), "the TITLE after the lies");
  const frames = Math.ceil(INPUT_IN_FLIGHT_MAX_BYTES / CHUNK) + 2;
  for (let i = 0; i < frames; i++) w.ws.send(input(CHUNK));
  const refused = () => backlogErrors(w.errors()).reduce((n, e) => n + refusedIn(e), 0);
  await waiters.until(() => inputAtAgent() + refused() === frames * CHUNK, "every frame forwarded or refused");
  expect(inputAtAgent()).toBeLessThanOrEqual(INPUT_IN_FLIGHT_MAX_BYTES);

  // An ack of far more than is in flight clears what is in flight, and no more.
  const atAgent = inputAtAgent();
  agent.send(encodeAgentFrame({ t: "input-ack", refused: false, bytes: 0xffff_ffff }));
  agent.send(encodeAgentFrame({ t: "title", frame: encodeServerFrame({ t: "title", title: "after the big ack" }) }));
  await waiters.until(() => w.titles().includes("after the big ack"), "the TITLE after the big ack");
  const errorsBefore = backlogErrors(w.errors()).length;
  for (let i = 0; i < frames; i++) w.ws.send(input(CHUNK));
  await waiters.until(() => inputAtAgent() + refused() === 2 * frames * CHUNK, "every frame forwarded or refused");
  expect(inputAtAgent() - atAgent).toBeLessThanOrEqual(INPUT_IN_FLIGHT_MAX_BYTES);
  expect(backlogErrors(w.errors()).length).toBeGreaterThan(errorsBefore);
  w.ws.close();
  agent.close();
}, 20_000);

it("after a wake-up, applies the window once the agent acknowledges input again, counting from zero", async () => {
  const { stub, agent, writer } = await terminal("input-wake", true);
  const w = await writer();
  const sinks = await runInDurableObject(stub, (_instance, state) => {
    const instance = new TerminalDO(state, bindings);
    return state.blockConcurrencyWhile(async () => {
      const hub = (instance as unknown as { hub: TerminalHub }).hub;
      const window = (hub as unknown as { inputWindow: { bytes: number; take(s: unknown, n: number): boolean } }).inputWindow;
      // Before any INPUT_ACK the woken hub does not know the agent acknowledges: no window.
      const beforeAck = window.take("x", INPUT_IN_FLIGHT_MAX_BYTES + 1);
      const agentSink = { send() {}, close() {} };
      hub.attachAgent(agentSink, true);
      hub.onAgentMessage(agentSink, encodeAgentFrame({ t: "input-ack", refused: false, bytes: 5 }).slice().buffer);
      return { beforeAck, inFlight: window.bytes, fits: window.take("x", INPUT_IN_FLIGHT_MAX_BYTES), over: window.take("x", 1) };
    });
  });
  expect(sinks).toEqual({ beforeAck: true, inFlight: 0, fits: true, over: false });
  w.ws.close();
  agent.close();
});
