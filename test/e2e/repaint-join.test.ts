/**
 * Late joiners through the real stack (workerd + agent + PTY): the five cases that used to leave
 * a joiner with a different screen or state than a client present from the start. Each program
 * prints part A, waits for a key (the join happens here), then prints part B. Every client's
 * received bytes are replayed into an @xterm/headless terminal with the web client's Unicode
 * version, and the states (cells, cursor and pending wrap, saved cursor, tab stops, modes…) must
 * be equal; each case also checks what a person would see.
 */
import type { Terminal } from "@xterm/headless";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createScreenTerminal } from "../../worker/agent/screen/screen-state.ts";
import { terminalState } from "../../worker/agent/screen/terminal-state.ts";
import { startStack, type TestStack } from "../support/stack.ts";
import { TermClient } from "../support/term-client.ts";

const COLS = 80;
const ROWS = 24;

let stack: TestStack;
const clients: TermClient[] = [];
let nextId = 300;
let marks = 0;

beforeAll(async () => {
  stack = await startStack();
});

afterAll(async () => {
  for (const c of clients) c.close();
  await stack?.stop();
});

async function attach(id: number): Promise<TermClient> {
  const c = await TermClient.connect(`${stack.url}/api/v1/terminal/ws?terminal_id=${id}`, { apiKey: stack.apiKey, cols: COLS, rows: ROWS, screen: false });
  clients.push(c);
  return c;
}

/** A terminal in the state a client's received bytes leave it in. */
async function replay(client: TermClient): Promise<Terminal> {
  const t = createScreenTerminal(COLS, ROWS);
  await new Promise<void>((resolve) => t.write(client.text(), resolve));
  return t;
}

function row(t: Terminal, y: number): string {
  const b = t.buffer.active;
  return b.getLine(b.baseY + y)?.translateToString(true) ?? "";
}

/**
 * Runs `printf A; wait for a key; printf B` in a fresh shell session (the `printf` arguments are
 * shell-quoted by the caller), joins a second client during the wait, then releases B. Returns
 * both clients' terminals.
 */
async function joinBetween(partA: string, partB: string): Promise<{ live: Terminal; joiner: Terminal }> {
  const id = nextId++;
  const res = await stack.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: id, shell: "sh", cols: COLS, rows: ROWS }) });
  expect(res.status, await res.clone().text()).toBe(200);
  const live = await attach(id);
  const ready = `ready-${++marks}`;
  const done = `done-${marks}`;
  // The markers travel as window titles: invisible, and part of the state both clients compare.
  live.input(
    `PS1=''; stty -echo -icanon; clear; printf ${partA}; printf '\\033]2;%s\\007' ${ready.slice(0, 5)}''${ready.slice(5)}; ` +
      `dd bs=1 count=1 >/dev/null 2>&1; printf ${partB}; printf '\\033]2;%s\\007' ${done.slice(0, 4)}''${done.slice(4)}; stty sane\r`,
  );
  await live.waitForText(`\x1b]2;${ready}\x07`, 30_000);
  const joiner = await attach(id);
  await joiner.waitForText(ready, 30_000); // the repaint carries the title
  live.input("k");
  await live.waitForText(`\x1b]2;${done}\x07`);
  await joiner.waitForText(`\x1b]2;${done}\x07`);
  // Nothing follows (the prompt is empty); a PONG comes after every frame sent before it.
  await live.ping();
  await joiner.ping();
  return { live: await replay(live), joiner: await replay(joiner) };
}

describe("a late joiner sees exactly what a client present from the start sees", () => {
  it("wide characters: 4 emoji, join, Z — one Unicode version everywhere", async () => {
    const { live, joiner } = await joinBetween(`'\\360\\237\\230\\200\\360\\237\\230\\200\\360\\237\\230\\200\\360\\237\\230\\200'`, "Z");
    expect(row(live, 0)).toBe("😀😀😀😀Z");
    expect(row(joiner, 0)).toBe("😀😀😀😀Z");
    expect(terminalState(joiner)).toEqual(terminalState(live));
  });

  it("pending wrap: a full row, join, X — X starts the next row", async () => {
    const { live, joiner } = await joinBetween(`'%080d' 0`, "X");
    expect(row(live, 0)).toBe("0".repeat(COLS));
    expect(row(live, 1).startsWith("X")).toBe(true);
    expect(row(joiner, 1).startsWith("X")).toBe(true);
    expect(terminalState(joiner)).toEqual(terminalState(live));
  });

  it("saved cursor: ESC 7 at row 5 column 10, join, ESC 8 and text — the text lands at the saved place", async () => {
    const { live, joiner } = await joinBetween(`'\\033[5;10H\\0337\\033[1;1H'`, `'\\0338saved-here'`);
    expect(row(live, 4)).toBe(`${" ".repeat(9)}saved-here`);
    expect(row(joiner, 4)).toBe(`${" ".repeat(9)}saved-here`);
    expect(terminalState(joiner)).toEqual(terminalState(live));
  });

  it("tab stops: clear all, set one at column 21, join, TAB and T — T lands in column 21", async () => {
    const { live, joiner } = await joinBetween(`'\\033[3g\\033[1;21H\\033H\\r'`, `'\\tT'`);
    expect(row(live, 0)).toBe(`${" ".repeat(20)}T`);
    expect(row(joiner, 0)).toBe(`${" ".repeat(20)}T`);
    expect(terminalState(joiner)).toEqual(terminalState(live));
  });

  it("a 2 MB burst after the alternate screen and mouse reporting: the joiner has both", async () => {
    // 2 MB in one burst (the agent used to drop queued output past 1 MiB, mode switches included).
    const { live, joiner } = await joinBetween(`'\\033[?1049h\\033[?1000h\\033[?1006h'; head -c 2000000 /dev/zero | tr '\\000' 'x'; printf %s`, "'.'");
    expect(live.buffer.active.type).toBe("alternate");
    expect(joiner.buffer.active.type).toBe("alternate");
    expect(joiner.modes.mouseTrackingMode).toBe("vt200");
    expect(terminalState(joiner)).toEqual(terminalState(live));
  });
});
