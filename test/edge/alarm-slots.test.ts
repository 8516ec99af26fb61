/** AlarmSlots on a real Durable Object's storage, in workerd: several deadlines, one alarm. */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { AlarmSlots } from "../../edge/alarm-slots.ts";
import type { Env } from "../../edge/env.ts";

type Slot = "idle" | "auth";

/**
 * Runs `fn` with AlarmSlots over the storage of a fresh Durable Object, emptied first (the
 * TerminalDO arms slots of its own when it starts).
 */
async function withSlots(fn: (slots: AlarmSlots<Slot>, storage: DurableObjectStorage) => Promise<void>): Promise<void> {
  const ns = (env as unknown as Env).TERMINAL;
  await runInDurableObject(ns.get(ns.newUniqueId()), async (_instance, state) => {
    await state.storage.deleteAlarm();
    await state.storage.deleteAll();
    await fn(new AlarmSlots<Slot>(state.storage), state.storage);
  });
}

/** Alarm times in the future (workerd moves a past alarm time to now). */
const T = Date.now() + 3_600_000;

describe("AlarmSlots", () => {
  it("sets the one alarm to the earliest slot, and moves it when that slot is cleared", async () => {
    await withSlots(async (slots, storage) => {
      await slots.set("idle", T + 5_000);
      await slots.set("auth", T + 3_000);
      expect(await storage.getAlarm()).toBe(T + 3_000);
      await slots.clear("auth");
      expect(await storage.getAlarm()).toBe(T + 5_000);
      await slots.clear("idle");
      expect(await storage.getAlarm()).toBeNull();
    });
  });

  it("replaces a slot's time when it is set again", async () => {
    await withSlots(async (slots, storage) => {
      await slots.set("idle", T + 3_000);
      await slots.set("idle", T + 9_000);
      expect(await storage.getAlarm()).toBe(T + 9_000);
      expect(await slots.due(T + 8_000)).toEqual(["idle"]); // the earliest (only) slot counts as due
    });
  });

  it("reports the slots that are due, clears them and re-arms for the rest", async () => {
    await withSlots(async (slots, storage) => {
      await slots.set("auth", T + 1_000);
      await slots.set("idle", T + 9_000);
      expect(await slots.due(T + 2_000)).toEqual(["auth"]);
      expect(await storage.getAlarm()).toBe(T + 9_000);
      expect(await slots.due(T + 9_000)).toEqual(["idle"]);
      expect(await storage.getAlarm()).toBeNull();
      expect(await slots.due(T + 10_000)).toEqual([]);
    });
  });

  it("counts the earliest slot as due when the alarm runs ahead of its time, and only that one", async () => {
    await withSlots(async (slots, storage) => {
      await slots.set("auth", T + 5_000);
      await slots.set("idle", T + 6_000);
      expect(await slots.due(T + 1_000)).toEqual(["auth"]);
      expect(await storage.getAlarm()).toBe(T + 6_000);
    });
  });

  it("reports slots due at the same time together", async () => {
    await withSlots(async (slots) => {
      await slots.set("auth", T + 5_000);
      await slots.set("idle", T + 5_000);
      expect((await slots.due(T + 5_000)).sort()).toEqual(["auth", "idle"]);
    });
  });
});
