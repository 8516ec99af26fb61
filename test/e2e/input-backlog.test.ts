/**
 * Input flooded at a program that does not read it, through the real stack (workerd + agent +
 * PTY): the sender is told INPUT_BACKLOG, the agent's and workerd's memory stay bounded (before,
 * 1.2 GB went through in 8 s and both grew by hundreds of MB), other terminals keep echoing, and a
 * paste of several MiB into a program that reads arrives whole and exact.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { rssBytes, workerdPidOf } from "../support/ndjson.ts";
import { useStack } from "../support/stack.ts";
import { TermClient } from "../support/term-client.ts";
import { until } from "../support/waiters.ts";

const stack = useStack();

/** What the flood offers, in bytes: far more than any bound on the way. */
const FLOOD_BYTES = 256 << 20; // 256 MiB
/** Payload of the largest INPUT frame a client may send (1 MiB with its type byte). */
const CHUNK = (1 << 20) - 1;
/** How much the agent may grow during the flood, in bytes (loose: GC timing; unbounded, it grew 150 MB in 8 s). */
const AGENT_RSS_GROWTH_MAX = 64 << 20; // 64 MiB
/**
 * How much workerd may grow, in bytes: looser, as it passes every 1 MiB message through two
 * isolates (Worker and DO) whose garbage is collected lazily (measured: ~65 MiB; unbounded, it
 * grew over 1 GB in 8 s).
 */
const WORKERD_RSS_GROWTH_MAX = 128 << 20; // 128 MiB
/** The paste into a program that reads, in bytes. */
const PASTE_BYTES = 3 << 20; // 3 MiB

async function terminal(id: number): Promise<TermClient> {
  const res = await stack.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: id, shell: "sh" }) });
  expect(res.status).toBeLessThan(300);
  const c = stack.track(await TermClient.connect(`${stack.url}/api/v1/terminal/ws?terminal_id=${id}`, { apiKey: stack.apiKey, screen: false }));
  return c;
}

/** Yields until the client's socket has sent what it was given, so the test itself queues nothing big. */
async function drained(c: TermClient): Promise<void> {
  while (c.ws.bufferedAmount > 4 * CHUNK) await new Promise((resolve) => setImmediate(resolve));
}

describe("input for a program that does not read it", () => {
  it("is refused with INPUT_BACKLOG while memory stays bounded and other terminals echo; a program that reads gets a big paste whole", async () => {
    const flooded = await terminal(21);
    const other = await terminal(22);
    // Markers computed by the shell, so its echo of the command line does not match them.
    flooded.input("stty -echo; echo NOT-READING-$((1+1)); exec sleep 600\n");
    await flooded.waitForText("NOT-READING-2");

    const pids = [stack.agent.pid!, workerdPidOf(join(stack.stateDir, "state"))];
    const base = pids.map(rssBytes);
    const peak = [...base];
    const sampler = setInterval(() => pids.forEach((pid, i) => (peak[i] = Math.max(peak[i]!, rssBytes(pid)))), 50);
    const chunk = Buffer.alloc(CHUNK, 0x61);
    try {
      for (let sent = 0; sent < FLOOD_BYTES; sent += CHUNK) {
        flooded.input(chunk);
        await drained(flooded);
      }
      // Another terminal still echoes while the flood is refused.
      other.input("echo other-$((40+2))\n");
      await other.waitForText("other-42");
      await flooded.waitFor(() => flooded.errors.some((e) => e.code === "INPUT_BACKLOG"), "INPUT_BACKLOG");
    } finally {
      clearInterval(sampler);
    }
    const growth = peak.map((p, i) => p - base[i]!);
    console.log(`flood of ${FLOOD_BYTES >> 20} MiB: agent RSS ${base[0]! >> 20} → peak ${peak[0]! >> 20} MiB, workerd ${base[1]! >> 20} → peak ${peak[1]! >> 20} MiB`);
    const error = flooded.errors.find((e) => e.code === "INPUT_BACKLOG")!;
    expect(error.message).toMatch(/not reading its input: \d+ bytes/);
    expect(growth[0]).toBeLessThan(AGENT_RSS_GROWTH_MAX);
    expect(growth[1]).toBeLessThan(WORKERD_RSS_GROWTH_MAX);

    // A program that reads: a paste of several MiB arrives whole and exact (counted and hashed on its side).
    const reader = await terminal(23);
    reader.input(`stty raw -echo; echo READING-$((1+1)); head -c ${PASTE_BYTES} | sha256sum; echo PASTE-END-$((1+1))\n`);
    await reader.waitForText("READING-2");
    const paste = Buffer.alloc(PASTE_BYTES);
    for (let i = 0; i < PASTE_BYTES; i++) paste[i] = 0x61 + (i % 26);
    for (let at = 0; at < PASTE_BYTES; at += 256 << 10) reader.input(paste.subarray(at, at + (256 << 10)));
    await reader.waitForText("PASTE-END-2", 60_000);
    expect(reader.text()).toContain(createHash("sha256").update(paste).digest("hex"));
    expect(reader.errors.filter((e) => e.code === "INPUT_BACKLOG")).toEqual([]);
    await until("the flooded terminal to be deletable", async () => (await stack.api("/api/v1/terminal/21", { method: "DELETE" })).status < 500 || null);
  }, 240_000);
});
