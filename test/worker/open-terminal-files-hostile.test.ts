/**
 * The file routes against hostile names and paths, called on the app directly (no transport):
 * what is on disk (a name that is not UTF-8) or what a caller sends (a malformed escape, a path
 * that reaches the home through a symlink) gets an answer, never a crash of the agent.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openTerminalApp } from "../../worker/agent/files/app.ts";
import { CwdStore } from "../../worker/agent/files/cwd-store.ts";
import { until } from "../support/waiters.ts";

const root = mkdtempSync(join(tmpdir(), "edgetty-files-hostile-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const home = join(root, "home");
mkdirSync(home);
const app = openTerminalApp({ home, cwds: new CwdStore() });
const caller = { scope: "s", session: "" };

/**
 * True while process `pid` is blocked opening a FIFO with no reader (`wait_for_partner`): the
 * moment anything opens the FIFO to read, the kernel wakes it, so a false here after a call means
 * the call opened it.
 */
function waitsForFifoReader(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/wchan`, "utf8") === "wait_for_partner";
  } catch {
    return false;
  }
}

/** A writer that blocks opening `pipe` until something opens it to read; resolves once it is blocked there. */
async function fifoWriter(pipe: string): Promise<ChildProcess> {
  const writer = spawn("sh", ["-c", `exec 3>'${pipe}'`], { stdio: "ignore" });
  await until("the writer to block opening the FIFO", () => waitsForFifoReader(writer.pid!));
  return writer;
}

function call(path: string, init?: RequestInit): Promise<Response> {
  return app(new Request(`http://agent${path}`, init), caller, new AbortController().signal);
}

describe("POST /files/archive of a folder holding a name that is not UTF-8", () => {
  it("answers (the download cut, as for any file it cannot open) and the process lives on", async () => {
    const dir = join(root, "badname");
    mkdirSync(dir);
    // Node reads this name back as "bad\uFFFD.txt", which names no file: its open fails.
    writeFileSync(Buffer.from(`${dir}/bad\xff.txt`, "latin1"), "x");
    writeFileSync(join(dir, "good.txt"), "good");
    const res = await call("/files/archive", { method: "POST", body: JSON.stringify({ paths: [dir] }) });
    const got = await res.arrayBuffer().then((b) => Buffer.from(b), () => Buffer.alloc(0));
    // Never a complete zip that silently lacks the file.
    expect(got.includes(Buffer.from([0x50, 0x4b, 0x05, 0x06]))).toBe(false);
    // A destroyed stream emits its error on the next tick: one turn of the loop lets an unheard
    // one surface (it would end the process; vitest fails the run on it).
    await new Promise((r) => setImmediate(r));
    expect((await call("/files/cwd")).status).toBe(200);
  });
});

describe("DELETE /files/delete of the home by another name", () => {
  it("refuses the home reached through /proc/self/root or a symlinked parent, and deletes a symlink to it as a link", async () => {
    writeFileSync(join(home, "precious"), "x");
    const del = (path: string) => call(`/files/delete?path=${encodeURIComponent(path)}`, { method: "DELETE" });
    symlinkSync("/", join(root, "to-root"));
    symlinkSync(root, join(root, "to-parent"));
    symlinkSync(home, join(root, "to-home"));
    for (const path of [home, `/proc/self/root${home}`, `/proc/self/root${root}`, join(root, "to-root", home), join(root, "to-parent", "home")]) {
      const res = await del(path);
      expect(res.status, path).toBe(400);
      expect((await res.json()).detail).toBe("Refusing to delete the home directory or a folder that holds it");
    }
    expect(existsSync(join(home, "precious"))).toBe(true);
    // A symlink that points at the home is itself removed, the home kept.
    expect((await del(join(root, "to-home"))).status).toBe(200);
    expect(existsSync(join(root, "to-home"))).toBe(false);
    expect(existsSync(join(home, "precious"))).toBe(true);
  });
});

describe("ANY /proxy/{port}/… with a header fetch would refuse", () => {
  it("forwards a body sent with Expect: 100-continue (curl's way with bodies over 1 MB), not a 502", async () => {
    const server = createServer((req, res) => {
      let size = 0;
      req.on("data", (chunk: Buffer) => (size += chunk.length));
      req.on("end", () => res.end(JSON.stringify({ size, expect: req.headers.expect ?? null })));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const { port } = server.address() as AddressInfo;
      const res = await call(`/proxy/${port}/upload`, { method: "POST", headers: { Expect: "100-continue" }, body: "x".repeat(2_000_000) });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ size: 2_000_000, expect: null });
    } finally {
      server.close();
    }
  });
});

describe("GET /files/serve/{path} with a malformed percent escape", () => {
  it("answers 404 File not found, not a 500", async () => {
    for (const path of ["/files/serve/%ff", "/files/serve/tmp/%E0%A4%A"]) {
      const res = await call(path);
      expect(res.status, path).toBe(404);
      expect(await res.json()).toEqual({ detail: "File not found", code: "NOT_FOUND" });
    }
    writeFileSync(join(home, "100% sure.txt"), "yes");
    const served = await call(`/files/serve/${encodeURIComponent(join(home, "100% sure.txt"))}`);
    expect(await served.text()).toBe("yes");
  });
});

describe("POST /files/upload with a file name that is not ASCII", () => {
  function multipart(filename: Buffer): RequestInit {
    const body = Buffer.concat([
      Buffer.from('--XX\r\nContent-Disposition: form-data; name="file"; filename="'),
      filename,
      Buffer.from('"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX--\r\n'),
    ]);
    return { method: "POST", headers: { "Content-Type": "multipart/form-data; boundary=XX" }, body };
  }

  it("keeps a raw UTF-8 name (as browsers send it) as sent", async () => {
    const dir = join(root, "uploads");
    const res = await call(`/files/upload?directory=${encodeURIComponent(dir)}`, multipart(Buffer.from("é日本.txt", "utf8")));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ path: join(dir, "é日本.txt"), size: 5 });
    expect(existsSync(join(dir, "é日本.txt"))).toBe(true);
  });

  it("saves a name of 255 bytes, the longest a file name may be", async () => {
    const dir = join(root, "uploads");
    const name = `${"n".repeat(251)}.txt`;
    const res = await call(`/files/upload?directory=${encodeURIComponent(dir)}`, multipart(Buffer.from(name)));
    expect(res.status).toBe(200);
    expect(existsSync(join(dir, name))).toBe(true);
  });
});

describe("POST /files/replace whose result would be huge", () => {
  const replace = (path: string, target: string, replacement: string) =>
    call("/files/replace", { method: "POST", body: JSON.stringify({ path, replacements: [{ target, replacement, allow_multiple: true }] }) });

  it("answers 400 before building it (a 600 kB file, each byte made 1000: not a 500 past V8's longest string)", async () => {
    const path = join(root, "amplify.txt");
    writeFileSync(path, "a".repeat(600_000));
    const res = await replace(path, "a", "b".repeat(1000));
    expect(res.status).toBe(400);
    expect((await res.json()).detail).toMatch(/^File too large to edit/);
  });

  it("replaces an empty target at every position, the ends too, as Python's str.replace", async () => {
    const path = join(root, "empty-target.txt");
    writeFileSync(path, "abc");
    const res = await replace(path, "", "-");
    expect(res.status).toBe(200);
    expect((await call(`/files/read?path=${encodeURIComponent(path)}`).then((r) => r.json())).content).toBe("-a-b-c-");
  });
});

describe("POST /files/archive left before its end", () => {
  /** Descriptors this process holds open on `path`. */
  function openOn(path: string): number {
    let n = 0;
    for (const fd of readdirSync("/proc/self/fd")) {
      try {
        if (readlinkSync(`/proc/self/fd/${fd}`) === path) n++;
      } catch {
        /* closed meanwhile */
      }
    }
    return n;
  }

  const big = join(root, "archive-big", "big.bin");
  mkdirSync(join(root, "archive-big"));
  writeFileSync(big, randomBytes(8 << 20));
  const archive = (paths: string[]) => call("/files/archive", { method: "POST", body: JSON.stringify({ paths }) });

  it("closes the file it was reading when the client cancels the download", async () => {
    const res = await archive([join(root, "archive-big")]);
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read();
    await until("the zip to read the file", () => openOn(big) === 1);
    await reader.cancel();
    await until("the file to be closed", () => openOn(big) === 0, { timeoutMs: 2000 });
  });

  it("closes the file it had started when the listing is stopped (the caller left before the answer)", async () => {
    const tree = join(root, "archive-tree");
    for (let i = 0; i < 300; i++) {
      mkdirSync(join(tree, `d${i}`), { recursive: true });
      writeFileSync(join(tree, `d${i}`, "f.txt"), "x");
    }
    const abort = new AbortController();
    const answer = app(new Request("http://agent/files/archive", { method: "POST", body: JSON.stringify({ paths: [join(root, "archive-big"), tree] }) }), caller, abort.signal);
    // yazl starts reading the first file while the tree is still being listed.
    await until("the zip to read the file", () => openOn(big) === 1);
    abort.abort();
    expect((await answer).status).toBe(499);
    await until("the file to be closed", () => openOn(big) === 0, { timeoutMs: 2000 });
  });
});

describe("GET /files/grep over a folder holding what is not a regular file", () => {
  it("never opens it (a device's open alone can act: a watchdog arms, a serial line resets)", async () => {
    const dir = join(root, "grep-special");
    mkdirSync(dir);
    writeFileSync(join(dir, "b.txt"), "needle\n");
    const pipe = join(dir, "a-pipe");
    execFileSync("mkfifo", [pipe]);
    // A writer whose open blocks until someone opens the FIFO to read: it says if the grep did.
    const writer = await fifoWriter(pipe);
    try {
      const body = await (await call(`/files/grep?query=needle&path=${encodeURIComponent(dir)}`)).json();
      expect(body).toMatchObject({ matches: [{ file: join(dir, "b.txt"), line: 1 }], truncated: false });
      expect(waitsForFifoReader(writer.pid!)).toBe(true);
    } finally {
      writer.kill("SIGKILL");
    }
  });
});

describe("POST /files/move of the home", () => {
  it("refuses to move the home away (an empty source is the home), by any name", async () => {
    for (const source of ["", "~", home, `/proc/self/root${home}`, root]) {
      const res = await call("/files/move", { method: "POST", body: JSON.stringify({ source, destination: join(root, "moved-away") }) });
      expect(res.status, source).toBe(400);
      expect((await res.json()).detail).toBe("Refusing to move the home directory or a folder that holds it");
    }
    expect(existsSync(home)).toBe(true);
    // What is in it still moves.
    writeFileSync(join(home, "movable.txt"), "m");
    const res = await call("/files/move", { method: "POST", body: JSON.stringify({ source: "movable.txt", destination: "moved.txt" }) });
    expect(res.status).toBe(200);
    expect(existsSync(join(home, "moved.txt"))).toBe(true);
  });
});

describe("POST /files/archive of named paths that are links or special files", () => {
  it("zips a symlink to a folder as the folder (as list and glob see it)", async () => {
    mkdirSync(join(root, "linked-dir"));
    writeFileSync(join(root, "linked-dir", "in.txt"), "inside");
    symlinkSync(join(root, "linked-dir"), join(root, "dir-link"));
    const res = await call("/files/archive", { method: "POST", body: JSON.stringify({ paths: [join(root, "dir-link")] }) });
    expect(res.status).toBe(200);
    const zip = Buffer.from(await res.arrayBuffer());
    expect(zip.includes(Buffer.from("dir-link/in.txt"))).toBe(true);
  });

  it("refuses a named FIFO without opening it", async () => {
    const pipe = join(root, "named-pipe");
    execFileSync("mkfifo", [pipe]);
    const writer = await fifoWriter(pipe);
    try {
      const res = await call("/files/archive", { method: "POST", body: JSON.stringify({ paths: [pipe] }) });
      expect(res.status).toBe(400);
      expect((await res.json()).detail).toBe(`Not a regular file or directory: ${pipe}`);
      expect(waitsForFifoReader(writer.pid!)).toBe(true);
    } finally {
      writer.kill("SIGKILL");
    }
  });
});
