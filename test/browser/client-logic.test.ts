/**
 * Unit tests for the web client's pure pieces: reconnect backoff, the flow-control pump, the
 * bounded input queue, key-bar sequences, shortcuts, routes and binary (mouse) input. Node only, no browser needed.
 */
import { describe, expect, it } from "vitest";
import { binaryStringBytes } from "../../web/src/binary-input.ts";
import { RECONNECT_BASE_MS, RECONNECT_CAP_MS, reconnectDelay } from "../../web/src/backoff.ts";
import { OutputPump } from "../../web/src/flow-control.ts";
import { InputQueue } from "../../web/src/input-queue.ts";
import { applyModifiers, ctrlCode, keySequence } from "../../web/src/keys.ts";
import { adminHref, parseRoute, terminalHref } from "../../web/src/routes.ts";
import { shortcutFor } from "../../web/src/shortcuts.ts";

const none = { ctrl: false, alt: false };
const key = (k: string, mods: Partial<{ ctrl: boolean; meta: boolean; shift: boolean; alt: boolean }> = {}) => ({
  key: k,
  ctrlKey: !!mods.ctrl,
  metaKey: !!mods.meta,
  shiftKey: !!mods.shift,
  altKey: !!mods.alt,
});

describe("reconnect backoff", () => {
  it("grows exponentially from the base and never passes the cap", () => {
    const high = () => 0.999999;
    expect(reconnectDelay(0, high)).toBeLessThanOrEqual(RECONNECT_BASE_MS);
    expect(reconnectDelay(3, high)).toBeLessThanOrEqual(RECONNECT_BASE_MS * 8);
    for (let attempt = 0; attempt < 100; attempt++) expect(reconnectDelay(attempt, high)).toBeLessThanOrEqual(RECONNECT_CAP_MS);
  });

  it("keeps at least half the delay fixed, so jitter never makes it zero", () => {
    expect(reconnectDelay(0, () => 0)).toBe(RECONNECT_BASE_MS / 2);
    expect(reconnectDelay(50, () => 0)).toBe(RECONNECT_CAP_MS / 2);
  });
});

describe("output pump", () => {
  /** A terminal that parses only when told to, recording what it was given. */
  function fakeTerminal() {
    const pending: (() => void)[] = [];
    const written: number[] = [];
    return {
      written,
      write: (data: Uint8Array, parsed: () => void) => {
        written.push(data.byteLength);
        pending.push(parsed);
      },
      parseOne: () => pending.shift()?.(),
      get unparsed() {
        return pending.length;
      },
    };
  }
  const limits = { feedAhead: 100, highWater: 200, lowWater: 50, heldMax: 1000 };
  const chunk = (n: number) => new Uint8Array(n);

  it("hands the terminal only a bounded amount at a time and holds the rest in order", () => {
    const term = fakeTerminal();
    const pump = new OutputPump(term.write, { onFlow: () => {}, onOverflow: () => {} }, limits);
    for (const n of [60, 60, 60]) pump.push(chunk(n));
    expect(term.written).toEqual([60, 60]); // 120 ≥ feedAhead: the third waits
    term.parseOne();
    expect(term.written).toEqual([60, 60, 60]);
    expect(pump.backlog).toBe(120);
  });

  it("runs an action once the output before it is parsed, before the output after it is handed over", () => {
    const term = fakeTerminal();
    const events: string[] = [];
    const pump = new OutputPump((data, parsed) => (events.push(`write ${data.byteLength}`), term.write(data, parsed)), { onFlow: () => {}, onOverflow: () => {} }, limits);
    pump.push(chunk(10));
    pump.push(chunk(20));
    pump.then(() => events.push("resize"));
    pump.push(chunk(30));
    expect(events).toEqual(["write 10", "write 20"]);
    term.parseOne();
    expect(events).toEqual(["write 10", "write 20"]); // 20 bytes still unparsed
    term.parseOne();
    expect(events).toEqual(["write 10", "write 20", "resize", "write 30"]);
    pump.then(() => events.push("after 30")); // waits for the 30 bytes in xterm.js
    expect(events.at(-1)).toBe("write 30");
    term.parseOne();
    expect(events.at(-1)).toBe("after 30");
  });

  it("pauses above the high-water mark and resumes only under the low-water mark", () => {
    const term = fakeTerminal();
    const flow: boolean[] = [];
    const pump = new OutputPump(term.write, { onFlow: (p) => flow.push(p), onOverflow: () => {} }, limits);
    for (let i = 0; i < 5; i++) pump.push(chunk(50));
    expect(flow).toEqual([true]);
    pump.push(chunk(50)); // already paused: no second PAUSE
    expect(flow).toEqual([true]);
    while (term.unparsed > 0 && pump.backlog >= 50) term.parseOne();
    expect(flow).toEqual([true, false]);
    expect(pump.paused).toBe(false);
  });

  it("drops held output past its cap and asks for a resync", () => {
    const term = fakeTerminal();
    let overflows = 0;
    const pump = new OutputPump(term.write, { onFlow: () => {}, onOverflow: () => overflows++ }, limits);
    for (let i = 0; i < 12; i++) pump.push(chunk(100));
    expect(overflows).toBe(1);
    expect(pump.backlog).toBeLessThanOrEqual(limits.heldMax + limits.feedAhead);
    while (term.unparsed > 0) term.parseOne();
    expect(pump.backlog).toBe(0);
  });
});

describe("input queue", () => {
  it("returns chunks in order and refuses what would pass the cap", () => {
    const q = new InputQueue(5);
    expect(q.push(new Uint8Array([1, 2]))).toBe(true);
    expect(q.push(new Uint8Array([3, 4, 5]))).toBe(true);
    expect(q.push(new Uint8Array([6]))).toBe(false);
    expect(q.bytes).toBe(5);
    expect(q.drain().map((c) => [...c])).toEqual([[1, 2], [3, 4, 5]]);
    expect(q.bytes).toBe(0);
  });
});

describe("key bar sequences", () => {
  it("sends arrows as CSI, or SS3 in application cursor mode", () => {
    expect(keySequence("ArrowUp", none, false)).toBe("\x1b[A");
    expect(keySequence("ArrowUp", none, true)).toBe("\x1bOA");
  });

  it("encodes modified arrows the way xterm does", () => {
    expect(keySequence("ArrowLeft", { ctrl: true, alt: false }, true)).toBe("\x1b[1;5D");
    expect(keySequence("ArrowRight", { ctrl: false, alt: true }, false)).toBe("\x1b[1;3C");
  });

  it("sends Esc and Tab, with Alt as an ESC prefix", () => {
    expect(keySequence("Escape", none, false)).toBe("\x1b");
    expect(keySequence("Tab", { ctrl: false, alt: true }, false)).toBe("\x1b\t");
  });

  it("turns sticky Ctrl plus a letter into its control code", () => {
    expect(applyModifiers("c", { ctrl: true, alt: false })).toBe("\x03");
    expect(applyModifiers("C", { ctrl: true, alt: false })).toBe("\x03");
    expect(applyModifiers("[", { ctrl: true, alt: false })).toBe("\x1b");
    expect(ctrlCode("é")).toBeNull();
    expect(applyModifiers("é", { ctrl: true, alt: false })).toBe("é");
  });

  it("prefixes ESC for Alt and modifies only the first character", () => {
    expect(applyModifiers("b", { ctrl: false, alt: true })).toBe("\x1bb");
    expect(applyModifiers("dd", { ctrl: true, alt: true })).toBe("\x1b\x04d");
    expect(applyModifiers("x", none)).toBe("x");
  });
});

describe("shortcuts", () => {
  it("copies with Ctrl+Shift+C and pastes natively with Ctrl+Shift+V on Linux and Windows", () => {
    expect(shortcutFor(key("C", { ctrl: true, shift: true }), false)).toBe("copy");
    expect(shortcutFor(key("V", { ctrl: true, shift: true }), false)).toBe("native");
    expect(shortcutFor(key("Insert", { shift: true }), false)).toBe("native");
  });

  it("leaves plain Ctrl+C to the shell", () => {
    expect(shortcutFor(key("c", { ctrl: true }), false)).toBeNull();
    expect(shortcutFor(key("c", { ctrl: true }), true)).toBeNull();
  });

  it("lets Cmd+C and Cmd+V go to the browser on a Mac", () => {
    expect(shortcutFor(key("c", { meta: true }), true)).toBe("native");
    expect(shortcutFor(key("v", { meta: true }), true)).toBe("native");
  });

  it("opens search with Ctrl+Shift+F or Cmd+Shift+F", () => {
    expect(shortcutFor(key("F", { ctrl: true, shift: true }), false)).toBe("search");
    expect(shortcutFor(key("f", { meta: true, shift: true }), true)).toBe("search");
  });

  it("toggles whether Tab leaves the terminal with Ctrl+Shift+M on every platform, and leaves Ctrl+M to the shell", () => {
    for (const apple of [false, true]) expect(shortcutFor(key("M", { ctrl: true, shift: true }), apple)).toBe("tab-focus");
    expect(shortcutFor(key("m", { ctrl: true }), false)).toBeNull();
    expect(shortcutFor(key("M", { meta: true, shift: true }), true)).toBeNull();
  });
});

describe("routes", () => {
  it("round-trips terminal routes, read-only included", () => {
    expect(parseRoute(terminalHref("local", 5))).toEqual({ page: "terminal", serverId: "local", terminalId: 5, readonly: false });
    expect(parseRoute(terminalHref("gpu-1", 40001, true))).toEqual({ page: "terminal", serverId: "gpu-1", terminalId: 40001, readonly: true });
  });

  it("round-trips admin routes; a bare #/admin is its first section", () => {
    expect(parseRoute(adminHref("tokens"))).toEqual({ page: "admin", section: "tokens" });
    expect(parseRoute("#/admin")).toEqual({ page: "admin", section: "" });
  });

  it("sends anything else to the sessions page, naming what it did not understand", () => {
    for (const hash of ["", "#", "#/"]) expect(parseRoute(hash)).toEqual({ page: "sessions" });
    for (const hash of ["#/t/local/0", "#/t/local/70000", "#/t/local/abc", "#/t/%E0%A4%A/1", "#/admin/Users", "#/admin/users/x", "#/admin/../t"]) {
      expect(parseRoute(hash)).toEqual({ page: "sessions", unknown: hash });
    }
  });
});

describe("binary input", () => {
  it("sends a legacy mouse report past column 95 as its exact bytes", () => {
    // Button 0 pressed at column 201, row 11: ESC [ M, then 32 + button, 32 + x, 32 + y.
    const report = "\x1b[M" + String.fromCharCode(32, 32 + 201, 32 + 11);
    expect([...binaryStringBytes(report)]).toEqual([0x1b, 0x5b, 0x4d, 32, 233, 43]);
    // What UTF-8 encoding did instead: 233 became two bytes and the report was corrupt.
    expect(new TextEncoder().encode(report).byteLength).toBe(7);
  });

  it("maps every char code 0–255 to that one byte", () => {
    const all = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i));
    expect([...binaryStringBytes(all)]).toEqual(Array.from({ length: 256 }, (_, i) => i));
  });
});
