/**
 * The file routes against hostile files, called on the app directly (no transport): procfs files
 * whose `stat().size` is 0, FIFOs, and a grep query or glob pattern that backtracks catastrophically. Each answers
 * within its limits instead of reading without bound, blocking a libuv thread on a FIFO, or
 * running the regex on the calling thread.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openTerminalApp } from "../../worker/agent/files/app.ts";
import { readRegularUpTo } from "../../worker/agent/files/bounded-read.ts";
import { CwdStore } from "../../worker/agent/files/cwd-store.ts";
import { READ_TEXT_IN_FLIGHT_MAX_BYTES, READ_TEXT_MAX_BYTES, readTextInFlight } from "../../worker/agent/files/file-routes.ts";
import { glob, grep, searchesRunning, SEARCH_THREADS_MAX } from "../../worker/agent/files/search.ts";
import { until } from "../support/waiters.ts";
import { parseGlobQuery, parseGrepQuery } from "../../shared/open-terminal.ts";

const home = mkdtempSync(join(tmpdir(), "edgetty-files-dos-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));
const app = openTerminalApp({ home, cwds: new CwdStore() });
const caller = { scope: "s", session: "" };

function call(path: string, init?: RequestInit, signal = new AbortController().signal): Promise<Response> {
  return app(new Request(`http://agent${path}`, init), caller, signal);
}

function fifo(name: string): string {
  const path = join(home, name);
  execFileSync("mkfifo", [path]);
  return path;
}

/** The names and contents of a zip's entries, read by Python's zipfile (which checks every CRC). */
function unzip(bytes: Buffer): Map<string, string> {
  const file = join(home, `check-${Math.random().toString(36).slice(2)}.zip`);
  writeFileSync(file, bytes);
  const script = "import json,sys,zipfile\nz=zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nprint(json.dumps({n: z.read(n).decode() for n in z.namelist()}))";
  return new Map(Object.entries(JSON.parse(execFileSync("python3", ["-c", script, file], { encoding: "utf8" })) as Record<string, string>));
}

describe("bounded reads", () => {
  it("reads no more than the limit plus one byte of a file whose size is 0 per stat", async () => {
    const read = await readRegularUpTo("/proc/self/pagemap", 1 << 20);
    expect(read).toEqual({ content: null });
    const status = await readRegularUpTo("/proc/self/status", 1 << 20);
    expect(status?.content?.toString("utf8")).toMatch(/^Name:/);
  });

  it("does not open a FIFO (nobody writes to it: an open would block)", async () => {
    expect(await readRegularUpTo(fifo("pipe-a"), 100)).toBeNull();
  });
});

describe("GET /files/read, /files/view and POST /files/replace, /files/write", () => {
  it("answers 413 for /proc/self/pagemap instead of reading it whole", async () => {
    const res = await call("/files/read?path=/proc/self/pagemap");
    expect(res.status).toBe(413);
    expect((await res.json()).detail).toContain(`more than ${READ_TEXT_MAX_BYTES} bytes`);
  });

  it("reads a small procfs file whole", async () => {
    const res = await call("/files/read?path=/proc/self/status");
    expect(res.status).toBe(200);
    expect((await res.json()).content).toMatch(/^Name:/);
  });

  it("answers 404 for a FIFO on read and view, and 400 on write and replace, without blocking", async () => {
    const path = fifo("pipe-b");
    expect((await call(`/files/read?path=${path}`)).status).toBe(404);
    expect((await call(`/files/view?path=${path}`)).status).toBe(404);
    const write = await call("/files/write", { method: "POST", body: JSON.stringify({ path, content: "x" }) });
    expect(write.status).toBe(400);
    const replace = await call("/files/replace", { method: "POST", body: JSON.stringify({ path, replacements: [{ target: "a", replacement: "b" }] }) });
    expect(replace.status).toBe(404);
  });

  it("answers the oversize 400 for replace in a procfs file larger than its limit", async () => {
    const res = await call("/files/replace", { method: "POST", body: JSON.stringify({ path: "/proc/self/pagemap", replacements: [{ target: "a", replacement: "b" }] }) });
    expect(res.status).toBe(400);
    expect((await res.json()).detail).toContain("too large");
  });

  it("views a procfs file as its real bytes, without a Content-Length of 0", async () => {
    const res = await call("/files/view?path=/proc/self/status");
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Length")).toBeNull();
    expect(await res.text()).toMatch(/^Name:/);
  });
});

describe("GET /files/read, many large reads at once", () => {
  it("holds at most READ_TEXT_IN_FLIGHT_MAX_BYTES: the reads past it answer 429, the others their text", async () => {
    const file = join(home, "large.txt");
    const size = 40 << 20;
    writeFileSync(file, `${"x".repeat(99)}\n`.repeat(size / 100));
    const fits = Math.floor(READ_TEXT_IN_FLIGHT_MAX_BYTES / size);
    const answers = await Promise.all(Array.from({ length: fits + 3 }, () => call(`/files/read?path=${file}&start_line=2&end_line=2`)));
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(fits);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(1);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    const refused = answers[statuses.indexOf(429)]!;
    expect(await refused.json()).toMatchObject({ code: "TOO_MANY_REQUESTS" });
    expect(readTextInFlight()).toBe(0);
    // Once they are done, a read goes through again.
    const again = await call(`/files/read?path=${file}&start_line=2&end_line=2`);
    expect(again.status).toBe(200);
    expect((await again.json()).content).toContain("x".repeat(99));
  });
});

describe("POST /files/archive", () => {
  const archive = (paths: string[]) => call("/files/archive", { method: "POST", body: JSON.stringify({ paths }) });

  it("zips a procfs file with its real content (a valid zip)", async () => {
    const res = await archive(["/proc/self/status"]);
    expect(res.status).toBe(200);
    const entries = unzip(Buffer.from(await res.arrayBuffer()));
    expect(entries.get("status")).toMatch(/^Name:/);
  });

  it("refuses a procfs file larger than its limit (413) and a FIFO (400)", async () => {
    expect((await archive(["/proc/self/pagemap"])).status).toBe(413);
    const res = await archive([fifo("pipe-c")]);
    expect(res.status).toBe(400);
    expect((await res.json()).detail).toContain("Not a regular file");
  });

  it("leaves FIFOs out of a folder and zips the rest", async () => {
    const dir = join(home, "tree");
    mkdirSync(dir);
    writeFileSync(join(dir, "a.txt"), "alpha");
    execFileSync("mkfifo", [join(dir, "pipe")]);
    const res = await archive([dir]);
    expect(res.status).toBe(200);
    const entries = unzip(Buffer.from(await res.arrayBuffer()));
    expect([...entries.keys()]).toEqual(["tree/a.txt"]);
    expect(entries.get("tree/a.txt")).toBe("alpha");
  });
});

describe("POST /files/archive of a tree, the caller gone", () => {
  it("stops listing the tree when the caller goes away", async () => {
    const dir = join(home, "archive-tree");
    for (let i = 0; i < 50; i++) {
      mkdirSync(join(dir, `d${i}`), { recursive: true });
      writeFileSync(join(dir, `d${i}`, "f.txt"), "x");
    }
    const abort = new AbortController();
    const answer = call("/files/archive", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ paths: [dir] }) }, abort.signal);
    abort.abort();
    const res = await answer;
    expect(res.status).toBe(499);
    // Not gone, the same call answers its zip.
    const whole = await call("/files/archive", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ paths: [dir] }) });
    expect(whole.status).toBe(200);
    expect(Buffer.from(await whole.arrayBuffer()).subarray(0, 2).toString("latin1")).toBe("PK");
  });
});

describe("POST /files/archive, a file turned into a FIFO while the zip is sent", () => {
  it("cuts the download (no zip end record) and the process lives on", async () => {
    const dir = join(home, "swap");
    mkdirSync(dir);
    // Incompressible and far larger than the buffers between yazl and the reader: the zip is
    // still in it when the next file is swapped.
    writeFileSync(join(dir, "a-big.bin"), randomBytes(8 << 20));
    writeFileSync(join(dir, "b.txt"), "beta");
    const res = await call("/files/archive", { method: "POST", body: JSON.stringify({ paths: [dir] }) });
    expect(res.status).toBe(200);
    // b.txt was listed as a regular file; by the time the zip reaches it, it is a FIFO.
    rmSync(join(dir, "b.txt"));
    execFileSync("mkfifo", [join(dir, "b.txt")]);
    const got = await res.arrayBuffer().then((b) => Buffer.from(b), () => Buffer.alloc(0));
    expect(got.includes(Buffer.from([0x50, 0x4b, 0x05, 0x06]))).toBe(false);
    // Still answering (an unhandled stream error would have ended this process).
    expect((await call("/files/cwd")).status).toBe(200);
  });
});

describe("GET /files/grep", () => {
  it("finishes over /proc/self, skipping what it cannot or should not read", async () => {
    const res = await call("/files/grep?query=Name&path=/proc/self&max_results=3");
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.matches.length).toBeGreaterThan(0);
    expect(body.matches.length).toBeLessThanOrEqual(3);
  });

  it("skips FIFOs in a folder", async () => {
    const dir = join(home, "grep-fifo");
    mkdirSync(dir);
    writeFileSync(join(dir, "b.txt"), "needle\n");
    execFileSync("mkfifo", [join(dir, "a-pipe")]);
    const body = await (await call(`/files/grep?query=needle&path=${dir}`)).json();
    expect(body).toMatchObject({ matches: [{ file: join(dir, "b.txt"), line: 1 }], truncated: false });
  });

  it("stops a catastrophic regex at its time budget, answering what it found, truncated", async () => {
    const dir = join(home, "redos");
    mkdirSync(dir);
    writeFileSync(join(dir, "a-first.txt"), "aaaa\n");
    writeFileSync(join(dir, "b-evil.txt"), `${"a".repeat(34)}!\n`);
    const query = parseGrepQuery(new URLSearchParams({ query: "(a+)+$", path: dir }));
    if (!query.ok) throw new Error("query rejected");
    // A budget of 2 s: the regex alone would take 2^34 steps.
    const body = await (await grep(dir, query.value, undefined, 2000)).json();
    expect(body.truncated).toBe(true);
    // What it found before b-evil.txt (nothing, if the thread took the whole budget to load).
    expect([[], [{ file: join(dir, "a-first.txt"), line: 1, content: "aaaa" }]]).toContainEqual(body.matches);
  });

  it("stops the grep thread when the caller goes away", async () => {
    const dir = join(home, "redos-cancel");
    mkdirSync(dir);
    writeFileSync(join(dir, "evil.txt"), `${"a".repeat(40)}!\n`);
    const abort = new AbortController();
    const answer = call(`/files/grep?query=${encodeURIComponent("(a+)+$")}&path=${dir}`, undefined, abort.signal);
    abort.abort();
    // Within the test's timeout, far under the 2^40 steps the regex would take.
    expect((await (await answer).json()).truncated).toBe(true);
  });

  it("runs at most SEARCH_THREADS_MAX at once: one more answers 429 until one ends", async () => {
    const dir = join(home, "redos-many");
    mkdirSync(dir);
    writeFileSync(join(dir, "evil.txt"), `${"a".repeat(40)}!\n`);
    const url = `/files/grep?query=${encodeURIComponent("(a+)+$")}&path=${dir}`;
    const aborts = Array.from({ length: SEARCH_THREADS_MAX }, () => new AbortController());
    const running = aborts.map((a) => call(url, undefined, a.signal));
    await until("every grep to have its thread", () => searchesRunning() === SEARCH_THREADS_MAX);
    const refused = await call(url);
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({ code: "TOO_MANY_REQUESTS" });
    for (const a of aborts) a.abort();
    for (const res of await Promise.all(running)) expect((await res.json()).truncated).toBe(true);
    expect(searchesRunning()).toBe(0);
  });
});

describe("GET /files/glob", () => {
  /** A pattern picomatch turns into an expression that backtracks exponentially in the name's length. */
  const EVIL_PATTERN = "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";

  it("matches in a search thread: a catastrophic pattern ends at its time budget, truncated, and the main thread stays free", async () => {
    const dir = join(home, "glob-redos");
    mkdirSync(dir);
    writeFileSync(join(dir, "a".repeat(40)), "");
    const query = parseGlobQuery(new URLSearchParams({ pattern: EVIL_PATTERN, path: dir }));
    if (!query.ok) throw new Error("query rejected");
    // The main thread's timers keep firing while the search runs (on it, they would not for hours).
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 50);
    try {
      const body = await (await glob(dir, query.value, undefined, 2000)).json();
      expect(body).toMatchObject({ matches: [], truncated: true });
      expect(ticks).toBeGreaterThan(10);
    } finally {
      clearInterval(ticker);
    }
  });

  it("stops the search thread when the caller goes away, and shares the search threads' limit", async () => {
    const dir = join(home, "glob-redos-cancel");
    mkdirSync(dir);
    writeFileSync(join(dir, "a".repeat(40)), "");
    const url = `/files/glob?pattern=${encodeURIComponent(EVIL_PATTERN)}&path=${dir}`;
    const aborts = Array.from({ length: SEARCH_THREADS_MAX }, () => new AbortController());
    const running = aborts.map((a) => call(url, undefined, a.signal));
    await until("every glob to have its thread", () => searchesRunning() === SEARCH_THREADS_MAX);
    expect((await call(`/files/grep?query=x&path=${dir}`)).status).toBe(429);
    for (const a of aborts) a.abort();
    for (const res of await Promise.all(running)) expect((await res.json()).truncated).toBe(true);
    expect(searchesRunning()).toBe(0);
  });

  it("still finds what a glob names", async () => {
    const dir = join(home, "glob-plain");
    mkdirSync(join(dir, "sub"), { recursive: true });
    writeFileSync(join(dir, "one.txt"), "1");
    writeFileSync(join(dir, "sub", "two.txt"), "22");
    writeFileSync(join(dir, "three.md"), "");
    const body = await (await call(`/files/glob?pattern=${encodeURIComponent("*.txt")}&path=${dir}`)).json();
    expect(body).toMatchObject({ pattern: "*.txt", truncated: false, matches: [{ path: "one.txt", type: "file", size: 1 }, { path: "sub/two.txt", type: "file", size: 2 }] });
  });
});

