/**
 * Joins measured: the join storm (a flood's rate while 20 clients keep joining and leaving,
 * against its rate with no joins) and the big-burst repaint check (after 100 MB of output in
 * one burst, in the alternate screen with mouse reporting on, a joiner's repaint must leave it in
 * exactly the state of a client that received the whole stream).
 */
import type { Terminal } from "@xterm/headless";
import WebSocket from "ws";
import { ClientOp, decodeServerFrame, encodeClientFrame, ServerOp } from "../shared/links/client.ts";
import { createScreenTerminal } from "../worker/agent/screen/screen-state.ts";
import { REPAINT_SCROLLBACK_LINES } from "../worker/agent/screen/snapshot.ts";
import { terminalState } from "../worker/agent/screen/terminal-state.ts";
import { CountingWebSocket } from "./counting-client.ts";

const MB = 1e6;
/** Clients that join and leave during the storm. */
export const STORM_CLIENTS = 20;
/** Each storm client leaves this long after its repaint arrived, in milliseconds. */
const STORM_STAY_MS = 40;

/** Answers a MARK (docs/protocol.md, flow control): the client has read everything before it. */
function answerMark(ws: WebSocket, data: Buffer): void {
  if (data[0] === ServerOp.MARK) ws.send(Uint8Array.of(ClientOp.ACK, ...data.subarray(1)));
}

/** Opens a `ws` client that answers MARKs and resolves with it once open (the burst check's typist). */
function join(url: string, apiKey: string): Promise<{ ws: WebSocket }> {
  const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${apiKey}` }, perMessageDeflate: false });
  ws.on("message", (data: Buffer) => answerMark(ws, data));
  return new Promise((resolve, reject) => {
    ws.once("open", () => {
      ws.send(Uint8Array.of(ClientOp.ACK)); // it answers MARKs, as the web app does
      resolve({ ws });
    });
    ws.once("error", reject);
  });
}

/**
 * MB/s of `command` to one counting viewer, with `joiners` clients joining (and leaving once
 * repainted) over and over meanwhile. Returns the rate, how many joins completed, what the
 * joiners received in all (output MB, repaints included) and how long a join waited for its
 * repaint (ms, each join).
 *
 * The joiners are counting clients, as the viewer is: on the wire they behave as a browser tab
 * (they answer MARKs, read everything, close with a Close frame and read on until the server's),
 * and they cost this machine's two cores as little as a client can; a browser's own parsing runs
 * on its own machine. (With `ws` clients the joiners took 20–24 ms of CPU per MB of flood here,
 * more than the edge and as much as the agent.)
 */
export async function floodRate(url: string, apiKey: string, command: string, doneCmd: string, done: string, joiners: number): Promise<{ mbPerS: number; joins: number; joinerMb: number; repaintMs: number[] }> {
  const headers = { Authorization: `Bearer ${apiKey}` };
  const viewer = await CountingWebSocket.open(url, headers);
  viewer.send(Uint8Array.of(ClientOp.ACK)); // it answers MARKs, as the web app does
  const marker = `READY${Math.random().toString(36).slice(2, 8)}`;
  const ready = viewer.output.until(marker);
  viewer.send(encodeClientFrame({ t: "input", data: Buffer.from(`echo ${marker.slice(0, 3)}''${marker.slice(3)}\r`) }));
  await ready;
  let running = true;
  let joins = 0;
  const gone: CountingWebSocket[] = [];
  const repaintMs: number[] = [];
  const storm = Array.from({ length: joiners }, async () => {
    while (running) {
      const t0 = performance.now();
      const ws = await CountingWebSocket.open(url, headers);
      ws.send(Uint8Array.of(ClientOp.ACK));
      await ws.firstOutput;
      if (running) {
        joins++;
        repaintMs.push(performance.now() - t0);
      }
      await new Promise((r) => setTimeout(r, STORM_STAY_MS));
      ws.close();
      gone.push(ws);
    }
  });
  const bytes0 = viewer.output.bytes;
  const t0 = performance.now();
  const finished = viewer.output.until(done);
  viewer.send(encodeClientFrame({ t: "input", data: Buffer.from(`${command}; ${doneCmd}\r`) }));
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  running = false;
  const bytes = viewer.output.bytes - bytes0;
  await Promise.all(storm);
  viewer.close();
  const joinerBytes = gone.reduce((sum, ws) => sum + ws.output.bytes, 0);
  return { mbPerS: bytes / MB / seconds, joins, joinerMb: joinerBytes / MB, repaintMs };
}

/** A `ws` client that renders everything it receives into a headless terminal. */
async function renderingClient(url: string, apiKey: string, cols: number, rows: number): Promise<{ term: Terminal; text: () => string; parsed: () => Promise<void>; close(): void }> {
  const term = createScreenTerminal(cols, rows);
  let tail = "";
  // Written one after another: xterm.js throws output away once 50 MB wait in its own queue,
  // and a 100 MB burst arrives faster than it parses. (A bench client may hold the burst.)
  let last: Promise<void> = Promise.resolve();
  const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${apiKey}` }, perMessageDeflate: false });
  ws.on("message", (data: Buffer) => {
    answerMark(ws, data);
    const f = decodeServerFrame(data);
    if (f.t !== "output") return;
    const bytes = Buffer.from(f.data);
    tail = (tail + bytes.toString("latin1")).slice(-4096);
    last = last.then(() => new Promise((resolve) => term.write(bytes, resolve)));
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => {
      ws.send(Uint8Array.of(ClientOp.ACK)); // it answers MARKs: it reads everything, however slowly it parses
      resolve();
    });
    ws.once("error", reject);
  });
  return { term, text: () => tail, parsed: () => last, close: () => ws.close() };
}

/**
 * The big-burst repaint check: in the alternate screen with mouse reporting on, `mb` MB of output
 * in one burst; then a joiner's state (repaint only) must equal the state of a client that saw
 * everything. Returns whether they matched and how long the joiner waited for its repaint.
 */
export async function burstRepaintCheck(url: string, apiKey: string, mb: number, cols: number, rows: number): Promise<{ exact: boolean; repaintMs: number }> {
  const done = "BURST-DONE";
  const live = await renderingClient(url, apiKey, cols, rows);
  const typist = await join(url, apiKey);
  const line = `$(printf 'burst \\033[1;32mline\\033[0m with colour')`;
  typist.ws.send(encodeClientFrame({ t: "input", data: Buffer.from(`PS1=''; printf '\\033[?1049h\\033[?1000h\\033[?1006h'; yes "${line}" | head -c ${mb * MB}; echo BURST-DO''NE\r`) }));
  await until(() => live.text().includes(done));
  await live.parsed();
  typist.ws.close();
  const t0 = performance.now();
  const joiner = await renderingClient(url, apiKey, cols, rows);
  await until(() => joiner.text().includes(done));
  const repaintMs = performance.now() - t0;
  await joiner.parsed();
  // A repaint carries REPAINT_SCROLLBACK_LINES of scrollback: compare that much.
  const exact = JSON.stringify(terminalState(joiner.term, REPAINT_SCROLLBACK_LINES)) === JSON.stringify(terminalState(live.term, REPAINT_SCROLLBACK_LINES));
  for (const c of [live, joiner]) {
    c.close();
    c.term.dispose();
  }
  return { exact, repaintMs };
}

/** Polls `predicate` every 20 ms (bench only: the clients here have no event to wait on). */
async function until(predicate: () => boolean): Promise<void> {
  while (!predicate()) await new Promise((r) => setTimeout(r, 20));
}
