/** InputGate (typeahead held until the shell is ready), with its real timers. */
import { afterEach, describe, expect, it } from "vitest";
import { INPUT_GATE_MAX_BYTES, InputGate } from "../../worker/agent/input-gate.ts";
import { Waiters } from "../support/waiters.ts";

let gates: InputGate[] = [];
afterEach(() => {
  for (const g of gates) g.dispose();
  gates = [];
});

/** A gate whose deliveries and log lines are recorded; `closed` stands for the shell's exit. */
function gate(closed = () => false, maxMs?: number) {
  const delivered: string[] = [];
  const logs: string[] = [];
  const waiters = new Waiters();
  const g = new InputGate(
    (data) => {
      delivered.push(data.toString());
      waiters.notify();
    },
    closed,
    (line) => logs.push(line),
    maxMs,
  );
  gates.push(g);
  return { g, delivered, logs, waiters };
}

describe("InputGate", () => {
  it("holds input until opened, then delivers it in order and passes later input straight through", () => {
    const { g, delivered } = gate();
    g.write(Buffer.from("ec"));
    g.write(Buffer.from("ho\r"));
    expect(delivered).toEqual([]);
    g.open();
    expect(delivered).toEqual(["ec", "ho\r"]);
    g.write(Buffer.from("ls\r"));
    expect(delivered).toEqual(["ec", "ho\r", "ls\r"]);
  });

  it("keeps a copy of held input (the caller may reuse its buffer)", () => {
    const { g, delivered } = gate();
    const buf = Buffer.from("abc");
    g.write(buf);
    buf.fill(0x78);
    g.open();
    expect(delivered).toEqual(["abc"]);
  });

  it("opens once the shell printed and then went quiet", async () => {
    // The hard cap is an hour away: only the quiet spell can open it.
    const { g, delivered, waiters } = gate(undefined, 3_600_000);
    g.write(Buffer.from("typed"));
    g.onOutput();
    await waiters.until(() => delivered.length === 1, "the release after the quiet spell");
    expect(delivered).toEqual(["typed"]);
  });

  it("opens at its hard cap when the shell never went quiet after printing", async () => {
    const { g, delivered, waiters } = gate(undefined, 50);
    g.write(Buffer.from("typed"));
    g.onOutput(); // printing keeps pushing the quiet spell back; the cap does not move
    await waiters.until(() => delivered.length === 1, "the release at the cap");
  });

  it(`opens early, with a log line, once more than ${INPUT_GATE_MAX_BYTES} bytes are held; nothing is dropped`, () => {
    const { g, delivered, logs } = gate();
    const half = Buffer.alloc(INPUT_GATE_MAX_BYTES / 2 + 1, 0x61);
    g.write(half);
    expect(delivered).toEqual([]);
    g.write(half);
    expect(delivered.join("").length).toBe(2 * half.byteLength);
    expect(logs.join("\n")).toMatch(/typed ahead/);
  });

  it("drops what it holds when the shell is gone by the time it opens", () => {
    let exited = false;
    const { g, delivered } = gate(() => exited);
    g.write(Buffer.from("late"));
    exited = true;
    g.open();
    expect(delivered).toEqual([]);
  });
});
