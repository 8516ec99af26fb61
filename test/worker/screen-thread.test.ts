/**
 * The screen model in the agent's screen thread (screen-thread.ts, screen-worker.ts): a repaint
 * asked for while output keeps being pushed covers exactly the bytes pushed before the request,
 * so a joiner that applies it and then the rest of the stream ends in the live client's state —
 * for generated VT streams, random chunking and random join points, with several repaints in
 * flight at once.
 */
import type { Terminal } from "@xterm/headless";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { createScreenTerminal } from "../../worker/agent/screen/screen-state.ts";
import { REPAINT_SCROLLBACK_LINES } from "../../worker/agent/screen/snapshot.ts";
import { ScreenModel } from "../../worker/agent/screen/screen-thread.ts";
import { terminalState } from "../../worker/agent/screen/terminal-state.ts";
import { parserState } from "../../worker/agent/screen/xterm-core.ts";
import { COLS, ROWS, scenario } from "../support/vt-streams.ts";

/** Generated cases (each a few round trips to the thread), from a fixed seed. */
const RUNS = Number(process.env.EDGETTY_PROPERTY_RUNS ?? 80);
const SEED = Number(process.env.EDGETTY_PROPERTY_SEED ?? 20261130);

const models: ScreenModel[] = [];
afterEach(() => {
  for (const m of models.splice(0)) m.dispose();
});

function model(cols = COLS, rows = ROWS): ScreenModel {
  const m = new ScreenModel(cols, rows, () => {}, () => {});
  models.push(m);
  return m;
}

function write(t: Terminal, data: Uint8Array | string): Promise<void> {
  return new Promise((resolve) => t.write(data, resolve));
}

/** `bytes` cut at `cuts` (sorted, in range) into chunks. */
function chunks(bytes: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const cut of [...cuts, bytes.byteLength]) {
    if (cut <= at || cut > bytes.byteLength) continue;
    out.push(bytes.subarray(at, cut));
    at = cut;
  }
  return out;
}

describe("screen thread", () => {
  it("a repaint asked for mid-stream, while output keeps coming, is of exactly the bytes before it", async () => {
    await fc.assert(
      fc.asyncProperty(scenario, fc.integer({ min: 1, max: 3 }), async ({ bytes, cuts }, asks) => {
        // Known limit (docs/screen-state.md): a combining mark cut from its base by the join, in insert mode.
        const probe = createScreenTerminal(COLS, ROWS);
        const m = model();
        const live = createScreenTerminal(COLS, ROWS);
        const parts = chunks(bytes, cuts);
        // Repaints asked for after chunk `k` of the stream, without waiting: the pushes go on.
        const askAfter = new Set(Array.from({ length: asks }, (_, i) => Math.floor(((i + 1) * parts.length) / (asks + 1))));
        const repaints: Promise<{ bytes: Buffer; offset: number }>[] = [];
        const askedAt: number[] = [];
        const skip = new Set<number>();
        let pushed = 0;
        for (let k = 0; k < parts.length; k++) {
          if (askAfter.has(k)) {
            await write(probe, "");
            if (probe.modes.insertMode && parserState(probe).joinState !== 0) skip.add(repaints.length);
            repaints.push(m.snapshot());
            askedAt.push(pushed);
          }
          m.push(parts[k]!);
          await write(probe, parts[k]!);
          pushed += parts[k]!.byteLength;
        }
        await write(live, bytes);
        for (const [i, pending] of repaints.entries()) {
          const repaint = await pending;
          expect(repaint.offset).toBeLessThanOrEqual(pushed);
          expect(repaint.offset).toBe(askedAt[i]);
          if (skip.has(i)) continue;
          const joiner = createScreenTerminal(COLS, ROWS);
          await write(joiner, repaint.bytes);
          await write(joiner, bytes.subarray(repaint.offset));
          expect(terminalState(joiner)).toEqual(terminalState(live));
          joiner.dispose();
        }
        for (const t of [probe, live]) t.dispose();
        m.dispose();
      }),
      { numRuns: RUNS, seed: SEED, timeout: 20_000 },
    );
  });

  it("answers repaints asked for together at the same offset with one serialization", async () => {
    const m = model(40, 6);
    m.push(Buffer.from("hello\r\n\x1b[1mworld"));
    const [a, b] = await Promise.all([m.snapshot(), m.snapshot()]);
    expect(a).toBe(b);
    expect(a.offset).toBe(16);
  });

  it("gives a copy of the whole screen on this thread, after the output pushed so far and a resize", async () => {
    const m = model(40, 6);
    const live = createScreenTerminal(30, 4);
    const lines = Array.from({ length: 50 }, (_, i) => `line ${i} \x1b[3${i % 8}mcolour\x1b[0m`).join("\r\n");
    m.push(Buffer.from(lines.slice(0, 200)));
    m.resize(30, 4);
    live.resize(30, 4);
    await write(live, lines);
    m.push(Buffer.from(lines.slice(200)));
    const copy = await m.screen(30, 4);
    expect(terminalState(copy)).toEqual(terminalState(live));
    // Only the visible screen, for a screenshot: the same screen, no scrollback.
    const visible = await m.screen(30, 4, 0);
    expect(terminalState(visible, 0)).toEqual(terminalState(live, 0));
    expect(visible.buffer.active.length).toBe(4);
    for (const t of [live, copy, visible]) t.dispose();
  });

  it("stops counting output as unparsed once the thread has parsed it", async () => {
    let progressed = 0;
    const m = new ScreenModel(80, 24, () => progressed++, () => {});
    models.push(m);
    m.push(Buffer.alloc(300 << 10, 0x41));
    expect(m.backlog).toBe(300 << 10);
    // The thread parses after a quiet spell; a repaint makes it parse everything before it at
    // once, and reports that progress before it answers.
    await m.snapshot();
    expect(m.backlog).toBe(0);
    expect(progressed).toBeGreaterThan(0);
  });

  it("stays exact through a flood far past xterm.js's own 50 MB queue limit, its batches reused", async () => {
    const logged: string[] = [];
    const m = new ScreenModel(80, 24, () => {}, (line) => logged.push(line));
    models.push(m);
    const block = Buffer.from(Array.from({ length: 4096 }, (_, i) => `\x1b[3${i % 8}mline ${i} of a flood\x1b[0m, some more text to fill it`).join("\r\n") + "\r\n");
    const total = 64e6;
    let pushed = 0;
    for (let round = 0; pushed < total; round++) {
      m.push(block);
      pushed += block.byteLength;
      // A repaint now and then makes the thread parse what it has (as joins do); it must be of everything pushed.
      if (round % 16 === 0) expect((await m.snapshot()).offset).toBe(pushed);
    }
    const repaint = await m.snapshot();
    expect(repaint.offset).toBe(pushed);
    // Every block ends the same way, so the screen is that of the last block (all before scrolled away).
    const live = createScreenTerminal(80, 24);
    await write(live, Buffer.concat([block, block]));
    const joiner = createScreenTerminal(80, 24);
    await write(joiner, repaint.bytes);
    expect(terminalState(joiner, REPAINT_SCROLLBACK_LINES)).toEqual(terminalState(live, REPAINT_SCROLLBACK_LINES));
    expect(logged).toEqual([]);
    for (const t of [live, joiner]) t.dispose();
  }, 60_000);
});
