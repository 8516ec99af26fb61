import { describe, expect, it } from "vitest";
import { COMMAND_RECORDS_MAX, CommandTracker, parseFileUrl, unescapeValue, type CommandRecord } from "../../worker/agent/shell/command-tracker.ts";

const NONCE = "0123456789abcdef0123456789abcdef";

function tracker(now = (): number => 1_700_000_000_000) {
  const events: CommandRecord[] = [];
  const cwds: string[] = [];
  const t = new CommandTracker(NONCE, (r) => events.push(r), { cwd: "/home/u", now, onCwd: (c) => cwds.push(c) });
  return { t, events, cwds };
}

describe("CommandTracker", () => {
  it("builds a record from E and D marks that carry the nonce", () => {
    let clock = Date.parse("2025-01-15T10:30:00.000Z");
    const { t, events } = tracker(() => clock);
    t.feed("633", `E;ls -la;${NONCE}`);
    t.feed("633", "C");
    clock += 1500;
    t.feed("633", `D;2;${NONCE}`);
    expect(events).toEqual([
      { id: 1, command: "ls -la", cwd: "/home/u", exit_code: null, started_at: "2025-01-15T10:30:00.000Z", finished_at: null, duration_ms: null, status: "running" },
      { id: 1, command: "ls -la", cwd: "/home/u", exit_code: 2, started_at: "2025-01-15T10:30:00.000Z", finished_at: "2025-01-15T10:30:01.500Z", duration_ms: 1500, status: "done" },
    ]);
  });

  it("ignores E and D marks without the nonce or with another one", () => {
    const { t, events } = tracker();
    t.feed("633", "E;rm -rf /");
    t.feed("633", "E;rm -rf /;wrong");
    t.feed("633", `E;rm -rf /;${NONCE};extra`);
    t.feed("633", `E;true;${NONCE}`);
    t.feed("633", "D;0");
    t.feed("633", "D;0;wrong");
    expect(t.list()).toMatchObject([{ command: "true", status: "running" }]);
    t.feed("633", `D;0;${NONCE}`);
    expect(events.map((e) => e.status)).toEqual(["running", "done"]);
  });

  it("closes a record left running when the next command starts", () => {
    const { t } = tracker();
    t.feed("633", `E;first;${NONCE}`);
    t.feed("633", `E;second;${NONCE}`);
    expect(t.list()).toMatchObject([{ command: "first", status: "done", exit_code: null }, { command: "second", status: "running" }]);
  });

  it("follows OSC 7 for the cwd of later records", () => {
    const { t, cwds } = tracker();
    t.feed("7", "file://host/tmp/with%20space");
    t.feed("7", "file://host/tmp/with%20space");
    t.feed("7", "not a url");
    t.feed("633", `E;pwd;${NONCE}`);
    expect(t.cwd).toBe("/tmp/with space");
    expect(cwds).toEqual(["/tmp/with space"]);
    expect(t.list()[0]!.cwd).toBe("/tmp/with space");
  });

  it(`keeps at most ${COMMAND_RECORDS_MAX} records, dropping the oldest`, () => {
    const { t } = tracker();
    for (let i = 1; i <= COMMAND_RECORDS_MAX + 5; i++) {
      t.feed("633", `E;cmd ${i};${NONCE}`);
      t.feed("633", `D;0;${NONCE}`);
    }
    const all = t.list();
    expect(all).toHaveLength(COMMAND_RECORDS_MAX);
    expect(all[0]!.id).toBe(6);
    expect(t.list(2).map((r) => r.id)).toEqual([COMMAND_RECORDS_MAX + 4, COMMAND_RECORDS_MAX + 5]);
  });

  it("ignores other OSC codes", () => {
    const { t, events } = tracker();
    t.feed("0", `E;x;${NONCE}`);
    t.feed("133", "A");
    expect(events).toEqual([]);
  });
});

describe("unescapeValue", () => {
  it("reverses the hooks' escaping", () => {
    expect(unescapeValue(String.raw`echo a\x3bb \\n\x0aline \xc3\xa9 \x`)).toBe("echo a;b \\n\nline é \\x");
  });
});

describe("parseFileUrl", () => {
  it("takes the percent-decoded path and ignores the host", () => {
    expect(parseFileUrl("file://my-host/home/u/%C3%A9")).toBe("/home/u/é");
    expect(parseFileUrl("file:///tmp")).toBe("/tmp");
    expect(parseFileUrl("http://x/y")).toBeNull();
  });
});
