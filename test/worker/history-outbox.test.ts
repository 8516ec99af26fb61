import { describe, expect, it } from "vitest";
import type { CommandRecord } from "../../shared/history.ts";
import { HistoryOutbox } from "../../worker/agent/history-outbox.ts";

function rec(id: number, status: CommandRecord["status"] = "running"): CommandRecord {
  return {
    id,
    command: `cmd ${id}`,
    cwd: "/",
    exit_code: status === "done" ? 0 : null,
    started_at: "2025-01-15T10:30:00.000Z",
    finished_at: status === "done" ? "2025-01-15T10:30:01.000Z" : null,
    duration_ms: status === "done" ? 1000 : null,
    status,
  };
}

describe("HistoryOutbox", () => {
  it("hands out each record once per connection, newest version only", () => {
    const box = new HistoryOutbox();
    box.push(rec(1));
    box.push(rec(1, "done"));
    box.push(rec(2));
    expect(box.take(100).map((r) => [r.id, r.status])).toEqual([[1, "done"], [2, "running"]]);
    expect(box.take(100)).toEqual([]);
  });

  it("drops a record once output sent after it is acknowledged", () => {
    const box = new HistoryOutbox();
    box.push(rec(1));
    box.take(100);
    box.confirm(100); // only output sent before the record: not proof
    expect(box.size).toBe(1);
    box.confirm(101);
    expect(box.size).toBe(0);
  });

  it("keeps a record changed after it was sent until the new version is confirmed", () => {
    const box = new HistoryOutbox();
    box.push(rec(1));
    box.take(10);
    box.push(rec(1, "done"));
    box.confirm(50);
    expect(box.size).toBe(1);
    expect(box.take(50)).toEqual([rec(1, "done")]);
    box.confirm(51);
    expect(box.size).toBe(0);
  });

  it("sends everything unconfirmed again on a new connection", () => {
    const box = new HistoryOutbox();
    box.push(rec(1));
    box.push(rec(2));
    box.take(0);
    box.unsendAll();
    expect(box.take(0).map((r) => r.id)).toEqual([1, 2]);
  });

  it("is bounded: the oldest records go first", () => {
    const box = new HistoryOutbox(3);
    for (let id = 1; id <= 5; id++) box.push(rec(id));
    expect(box.take(0).map((r) => r.id)).toEqual([3, 4, 5]);
  });
});
