/**
 * Denial of service through the agent's file routes, over the real stack (edge, tunnel, agent):
 * procfs files whose `stat().size` is 0 answer within their limits with the agent's peak memory
 * flat, grep over /proc/self ends, an archive of a procfs file is a valid zip or refused, and a
 * catastrophic regex runs off the agent's main thread: other calls are answered while it runs,
 * and it answers `truncated` at its time budget.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SEARCH_TIME_MAX_MS } from "../../worker/agent/files/search.ts";
import { startStack, STACK_HOOK_TIMEOUT_MS, type TestStack } from "../support/stack.ts";
import { until } from "../support/waiters.ts";

/** Peak resident memory growth allowed in the agent for a refused procfs read (the read stops at 64 MiB). */
const PEAK_GROWTH_MAX_BYTES = 256 << 20; // 256 MiB

let stack: TestStack;

beforeAll(async () => {
  stack = await startStack();
}, STACK_HOOK_TIMEOUT_MS);

afterAll(async () => {
  await stack?.stop();
}, STACK_HOOK_TIMEOUT_MS);

/** `pid`'s peak resident memory so far (VmHWM), in bytes. */
function peakRss(pid: number): number {
  const line = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(line![1]) * 1024;
}

/** CPU time (user + system, clock ticks) of `pid`'s threads other than its main one. */
function offMainTicks(pid: number): number {
  const ticks = (stat: string) => {
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  };
  return ticks(readFileSync(`/proc/${pid}/stat`, "utf8")) - ticks(readFileSync(`/proc/${pid}/task/${pid}/stat`, "utf8"));
}

/** CPU the regex must have burnt off the agent's main thread before the test asks for the cwd, in clock ticks (1/100 s). */
const BACKTRACKING_TICKS = 30;

const json = (paths: unknown) => ({ method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(paths) });

describe("procfs and FIFOs through the file routes", () => {
  it("GET /files/read of the agent's /proc/self/pagemap answers 413 with its peak memory flat", async () => {
    const pid = stack.agent.pid!;
    const before = peakRss(pid);
    const res = await stack.api("/files/read?path=/proc/self/pagemap");
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ detail: expect.stringContaining("File too large to read") });
    expect(peakRss(pid) - before).toBeLessThan(PEAK_GROWTH_MAX_BYTES);
  });

  it("GET /files/grep over the agent's /proc/self finishes", async () => {
    const res = await stack.api("/files/grep?query=root&path=/proc/self&max_results=3");
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.matches.length).toBeLessThanOrEqual(3);
  });

  it("POST /files/archive of a procfs file is a valid zip with its content; an unbounded one and a FIFO are refused", async () => {
    const res = await stack.api("/files/archive", json({ paths: ["/proc/self/status"] }));
    expect(res.status).toBe(200);
    const zip = join(stack.stateDir, "status.zip");
    writeFileSync(zip, Buffer.from(await res.arrayBuffer()));
    // Python's zipfile checks the entry's size and CRC.
    const script = "import sys,zipfile\nz=zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nprint(z.read('status').decode())";
    expect(execFileSync("python3", ["-c", script, zip], { encoding: "utf8" })).toMatch(/^Name:/);
    expect((await stack.api("/files/archive", json({ paths: ["/proc/self/pagemap"] }))).status).toBe(413);
    const fifo = join(stack.home, "pipe");
    execFileSync("mkfifo", [fifo]);
    expect((await stack.api("/files/archive", json({ paths: ["pipe"] }))).status).toBe(400);
  });
});

describe("a catastrophic regex", () => {
  it("runs off the agent's main thread: /files/cwd is answered meanwhile, and grep answers truncated at its budget", async () => {
    const dir = join(stack.home, "redos");
    mkdirSync(dir);
    writeFileSync(join(dir, "a.txt"), "aaaa\n");
    writeFileSync(join(dir, "b.txt"), `${"a".repeat(34)}!\n`);
    const pid = stack.agent.pid!;
    const idle = offMainTicks(pid);
    const order: string[] = [];
    const search = stack.api(`/files/grep?query=${encodeURIComponent("(a+)+$")}&path=redos`).then(async (res) => {
      order.push("grep");
      return { status: res.status, body: await res.json() };
    });
    // The regex backtracks on a thread other than the agent's main one (the regex alone would
    // take 2^34 steps; before, it ran on the main thread and held the agent for minutes)…
    await until("the regex to run off the agent's main thread", () => order.length === 0 && offMainTicks(pid) - idle >= BACKTRACKING_TICKS, { timeoutMs: SEARCH_TIME_MAX_MS });
    // …and meanwhile the agent answers other calls.
    const cwd = await stack.api("/files/cwd");
    order.push("cwd");
    expect(cwd.status).toBe(200);
    const grep = await search;
    expect(order).toEqual(["cwd", "grep"]);
    expect(grep).toEqual({ status: 200, body: { query: "(a+)+$", path: dir, matches: [{ file: join(dir, "a.txt"), line: 1, content: "aaaa" }], truncated: true } });
  }, SEARCH_TIME_MAX_MS + 30_000);
});

describe("a document that takes long to parse", () => {
  it("is parsed off the agent's main thread: /files/cwd is answered meanwhile, and the read answers its text", async () => {
    // A .docx of 80 000 short paragraphs (3.5 MB of XML): parsing it takes seconds, far more than
    // the 2 s allowed below (200 000 took 40 s at load 6, near the 60 s limit). On the main thread
    // it had held the agent's calls (and its links' heartbeats) the whole time.
    const path = join(stack.home, "long.docx");
    const script = [
      "import sys, zipfile",
      "ct = '<?xml version=\"1.0\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/><Default Extension=\"xml\" ContentType=\"application/xml\"/><Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/></Types>'",
      "rels = '<?xml version=\"1.0\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"word/document.xml\"/></Relationships>'",
      "body = ''.join('<w:p><w:r><w:t>line %d</w:t></w:r></w:p>' % i for i in range(80000))",
      "doc = '<?xml version=\"1.0\"?><w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>' + body + '</w:body></w:document>'",
      "z = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED)",
      "z.writestr('[Content_Types].xml', ct); z.writestr('_rels/.rels', rels); z.writestr('word/document.xml', doc); z.close()",
    ].join("\n");
    execFileSync("python3", ["-c", script, path]);
    let settled = false;
    const read = stack.api("/files/read?path=long.docx&end_line=2").finally(() => (settled = true));
    // Calls made while the document is parsed are answered at once (on the main thread the first
    // would have waited for the whole parse, and been answered only after the read).
    const waits: number[] = [];
    while (!settled) {
      const asked = Date.now();
      expect((await stack.api("/files/cwd")).status).toBe(200);
      if (!settled) waits.push(Date.now() - asked);
    }
    expect(waits.length).toBeGreaterThan(0);
    expect(Math.max(...waits)).toBeLessThan(2000);
    const res = await read;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ path, total_lines: 80000, content: "line 0\nline 1\n" });
  }, 120_000);
});
