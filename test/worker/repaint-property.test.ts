/**
 * Exact repaints as a property: for generated VT streams mixing the features a repaint must
 * carry, cut into random chunks and joined at a random byte offset (mid-sequence included), a
 * client that applies the repaint and then the rest of the stream ends in the same state as a
 * client that saw the whole stream. Both are @xterm/headless with the Unicode version the web
 * client uses.
 */
import type { Terminal } from "@xterm/headless";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createScreenTerminal, repaintBytes } from "../../worker/agent/screen/screen-state.ts";
import { terminalState } from "../../worker/agent/screen/terminal-state.ts";
import { parserState } from "../../worker/agent/screen/xterm-core.ts";
import { COLS, ROWS, scenario } from "../support/vt-streams.ts";

const SCROLLBACK = 30;
/**
 * Generated cases per property (each takes a few milliseconds), from a fixed seed so the suite is
 * deterministic; set EDGETTY_PROPERTY_SEED (and _RUNS) to explore further.
 */
const RUNS = Number(process.env.EDGETTY_PROPERTY_RUNS ?? 400);
const SEED = Number(process.env.EDGETTY_PROPERTY_SEED ?? 20261130);

function term(): Terminal {
  return createScreenTerminal(COLS, ROWS, SCROLLBACK);
}
function write(t: Terminal, data: Uint8Array | string): Promise<void> {
  return new Promise((resolve) => t.write(data, resolve));
}

/** Writes `bytes[from, to)` in the chunks the cuts make. */
async function feed(t: Terminal, bytes: Buffer, cuts: number[], from: number, to: number): Promise<void> {
  let at = from;
  for (const cut of [...cuts, to]) {
    if (cut <= at || cut > to) continue;
    await write(t, bytes.subarray(at, cut));
    at = cut;
  }
}

/** The live client, and the late joiner that got the agent's repaint at `join`. */
async function replay({ bytes, cuts, join }: { bytes: Buffer; cuts: number[]; join: number }) {
  const live = term();
  const agent = term();
  const joiner = term();
  await feed(live, bytes, cuts, 0, bytes.byteLength);
  await feed(agent, bytes, cuts, 0, join);
  // Known limit (docs/screen-state.md): a combining mark cut from its base by the join, in insert mode.
  fc.pre(!(agent.modes.insertMode && parserState(agent).joinState !== 0));
  await write(joiner, repaintBytes(agent, bytes.subarray(Math.max(0, join - 4096), join)));
  await feed(joiner, bytes, cuts, join, bytes.byteLength);
  const result = { live: terminalState(live), joiner: terminalState(joiner), repaintAtJoin: terminalState(joiner) };
  for (const t of [live, agent, joiner]) t.dispose();
  return result;
}

describe("repaint property", () => {
  it("a late joiner ends in the live client's state for any stream, chunking and join point", async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const { live, joiner } = await replay(s);
        expect(joiner).toEqual(live);
      }),
      { numRuns: RUNS, seed: SEED, timeout: 10_000 },
    );
  });

  it("the repaint alone reproduces the state at the join", async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ bytes, cuts }) => {
        const agent = term();
        const joiner = term();
        await feed(agent, bytes, cuts, 0, bytes.byteLength);
        await write(joiner, repaintBytes(agent, bytes.subarray(-4096)));
        expect(terminalState(joiner)).toEqual(terminalState(agent));
        agent.dispose();
        joiner.dispose();
      }),
      { numRuns: RUNS, seed: SEED, timeout: 10_000 },
    );
  });
});
