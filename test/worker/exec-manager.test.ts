/** ExecManager with real processes: seed 004's synchronous runs and streams, the background model on a PTY. */
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ExecSpec, ProcessView } from "../../shared/open-terminal.ts";
import { ExecError } from "../../worker/agent/exec/exec-caller.ts";
import { ExecManager } from "../../worker/agent/exec/exec-manager.ts";
import { PROCESS_OUTPUT_MAX_BYTES } from "../../worker/agent/exec/process-output-log.ts";
import { uniqueSize, untilBlocked } from "../support/ndjson.ts";
import { ShellGate } from "../support/shell-gate.ts";
import { until } from "../support/waiters.ts";
import { alive, collectTimed, pidsIn } from "./exec-helpers.ts";

const spec = (command: string, extra: Partial<ExecSpec> = {}): ExecSpec => ({ command, cwd: null, env: null, ...extra });
const noWait = { wait: null, tail: null };
/** The output of a background process as one text (PTY chunks do not follow lines). */
const text = (v: ProcessView) => v.output.map((e) => e.data).join("");
const as = (scope: string) => ({ scope, session: "" });

let dir: string;
let managers: ExecManager[] = [];
function manager(opts: ConstructorParameters<typeof ExecManager>[0] = {}): ExecManager {
  const m = new ExecManager({ defaultCwd: dir, logDir: join(dir, "logs"), ...opts });
  managers.push(m);
  return m;
}

beforeAll(() => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), "edgetty-exec-")));
});
afterEach(async () => {
  await Promise.all(managers.map((m) => m.shutdown()));
  managers = [];
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function rejection(p: Promise<unknown>): Promise<{ status: number; body: { detail: string; code: string } }> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ExecError);
  return (e as ExecError).reply as { status: number; body: { detail: string; code: string } };
}

describe("a synchronous run (v0.1.4)", () => {
  it("answers exactly exit_code, stdout and stderr, as seed 004 shows", async () => {
    const r = await manager().run(spec("echo hello; echo oops >&2; exit 3"), 30);
    expect(r).toEqual({ exit_code: 3, stdout: "hello\n", stderr: "oops\n" });
  });

  it("runs in cwd with env merged into the agent's environment", async () => {
    const r = await manager({ baseEnv: { PATH: process.env.PATH, KEEP: "kept" } }).run(spec("pwd; echo $KEEP $EXTRA", { cwd: "/tmp", env: { EXTRA: "x y" } }), 30);
    expect(r.stdout).toBe("/tmp\nkept x y\n");
  });

  it("resolves a relative cwd against the default one and refuses a missing one", async () => {
    const m = manager();
    expect((await m.run(spec("pwd", { cwd: "." }), 30)).stdout).toBe(`${dir}\n`);
    const reply = await rejection(m.run(spec("pwd", { cwd: "no/such/dir" }), 30));
    expect(reply).toEqual({ status: 400, body: { detail: "Working directory not found: no/such/dir", code: "CWD_NOT_FOUND" } });
  });

  it("reports a signal as minus its number, as Python does", async () => {
    expect((await manager().run(spec("kill -TERM $$"), 30)).exit_code).toBe(-15);
  });

  it("kills the whole process group on timeout and answers exit_code -1", async () => {
    const pidFile = join(dir, "timeout-pids");
    const r = await manager().run(spec(`(echo $$; sleep 30 & echo $!; sh -c 'sleep 30' & echo $!) > ${pidFile}; wait`), 1);
    expect(r).toEqual({ exit_code: -1, stdout: "", stderr: "Command timed out after 1.0s" });
    const pids = pidsIn(readFileSync(pidFile, "utf8"));
    expect(pids).toHaveLength(3);
    await until("every process of the group to end", () => pids.every((pid) => !alive(pid)));
  });

  it("returns all of 100,000 short lines, past the background entry cap", async () => {
    const r = await manager().run(spec("seq 1 100000"), 30);
    expect(r.stdout.length).toBe(588_895);
    expect(r.stdout.endsWith("99999\n100000\n")).toBe(true);
  });

  it("gives commands /dev/null as stdin", async () => {
    expect((await manager().run(spec("cat; echo done"), 5)).stdout).toBe("done\n");
  });
});

describe("a stream", () => {
  it("delivers each line when it is printed, while the command still runs", async () => {
    const [g1, g2] = [new ShellGate(), new ShellGate()];
    const events = (await manager().stream(spec(`echo 1; ${g1.wait}; echo 2; ${g2.wait}; echo 3`), null))[Symbol.asyncIterator]();
    // Each line arrives while the command is held at the gate after it.
    expect((await events.next()).value).toEqual({ type: "stdout", data: "1\n" });
    g1.open();
    expect((await events.next()).value).toEqual({ type: "stdout", data: "2\n" });
    g2.open();
    expect((await events.next()).value).toEqual({ type: "stdout", data: "3\n" });
    expect((await events.next()).value).toEqual({ type: "exit", data: 0 });
    expect((await events.next()).done).toBe(true);
  });

  it("keeps stdout and stderr apart and ends with the exit code", async () => {
    const events = await collectTimed(await manager().stream(spec("echo a; echo b >&2; exit 7"), null));
    const values = events.map((e) => e.value);
    expect(values).toContainEqual({ type: "stdout", data: "a\n" });
    expect(values).toContainEqual({ type: "stderr", data: "b\n" });
    expect(values.at(-1)).toEqual({ type: "exit", data: 7 });
  });

  it("emits a prompt without a newline before the newline comes", async () => {
    const gate = new ShellGate();
    const events = (await manager().stream(spec(`printf 'Name: '; ${gate.wait}; echo Ada`), null))[Symbol.asyncIterator]();
    expect((await events.next()).value).toEqual({ type: "stdout", data: "Name: " });
    gate.open();
    expect((await events.next()).value).toEqual({ type: "stdout", data: "Ada\n" });
  });

  it("ends with the timeout message and exit -1 when an explicit timeout runs out", async () => {
    const events = await collectTimed(await manager().stream(spec("echo $$; sleep 30"), 0.5));
    const values = events.map((e) => e.value);
    expect(values.slice(-2)).toEqual([
      { type: "stderr", data: "Command timed out after 0.5s" },
      { type: "exit", data: -1 },
    ]);
    const [pid] = pidsIn(String(values[0]!.data));
    await until("the command to end", () => !alive(pid!));
  });

  it("kills the process group when the reader stops early", async () => {
    const stream = await manager().stream(spec("sleep 30 & echo $!; while true; do echo tick; sleep 0.1; done"), null);
    let pid = 0;
    for await (const e of stream) {
      pid = Number(e.data);
      break;
    }
    expect(pid).toBeGreaterThan(0);
    await until("the background job to end", () => !alive(pid));
  });

  it("pauses a command whose reader is slow instead of buffering 50 MB", async () => {
    const size = uniqueSize(50_000_000);
    const stream = await manager().stream(spec(`head -c ${size} /dev/zero | tr '\\0' x`), null);
    // Nobody reads: `head` must end up blocked on its pipe, far from done.
    expect(await untilBlocked(["head", "-c", String(size), "/dev/zero"])).toBeLessThan(size / 2);
    let chars = 0;
    let exit: unknown;
    for await (const e of stream) {
      if (e.type === "exit") exit = e.data;
      else chars += e.data.length;
    }
    expect(chars).toBe(size);
    expect(exit).toBe(0);
  });
});

describe("the background model (on a PTY)", () => {
  it("returns at once without wait; status waits for the end; output is merged, typed output, with \\r\\n", async () => {
    const m = manager();
    const started = await m.start(spec("echo a; sleep 0.5; echo b >&2; test -t 1 && echo tty"), noWait);
    expect(started).toMatchObject({ status: "running", exit_code: null, truncated: false, output: [], next_offset: 0 });
    expect(started.id).toMatch(/^\d{8}-\d{6}-[0-9a-f]{6}$/);
    // A wait far past the test's timeout: only an early return passes.
    const done = await m.status(started.id, { wait: 3600, offset: 0, tail: null });
    expect(done).toMatchObject({ id: started.id, status: "done", exit_code: 0, truncated: false, log_path: started.log_path });
    expect(text(done)).toBe("a\r\nb\r\ntty\r\n");
    expect(done.output.every((e) => e.type === "output")).toBe(true);
    const n = done.next_offset;
    expect(await m.status(started.id, { wait: null, offset: n, tail: null })).toMatchObject({ output: [], next_offset: n });
    expect((await m.status(started.id, { wait: null, offset: 0, tail: 1 })).output).toHaveLength(1);
  });

  it("keeps running a command that points every descriptor away from its terminal (no hang-up)", async () => {
    const m = manager();
    const gate = new ShellGate();
    const out = join(dir, "redirected.txt");
    const p = await m.start(spec(`echo start; exec </dev/null >${out} 2>&1; echo redirected; ${gate.wait}; echo finished`), noWait);
    await until("the command to redirect its descriptors", () => existsSync(out) && readFileSync(out, "utf8").includes("redirected"));
    // Its terminal's last slave descriptor is closed: hung up, it would end now (SIGHUP, exit -1).
    expect(await m.status(p.id, { wait: 0.5, offset: 0, tail: null })).toMatchObject({ status: "running", exit_code: null });
    gate.open();
    const done = await m.status(p.id, { wait: 3600, offset: 0, tail: null });
    expect(done).toMatchObject({ status: "done", exit_code: 0 });
    expect(text(done)).toBe("start\r\n");
    expect(readFileSync(out, "utf8")).toBe("redirected\nfinished\n");
  });

  it("runs with TERM=xterm-256color whatever the agent's TERM, unless the request sets its own", async () => {
    const m = manager({ baseEnv: { PATH: process.env.PATH, TERM: "dumb" } });
    const own = await m.start(spec("echo $TERM"), { wait: 10, tail: null });
    expect(text(own)).toBe("xterm-256color\r\n");
    const asked = await m.start(spec("echo $TERM", { env: { TERM: "vt100" } }), { wait: 10, tail: null });
    expect(text(asked)).toBe("vt100\r\n");
  });

  it("writes every entry to the JSONL file at log_path", async () => {
    const m = manager();
    const p = await m.start(spec("echo one; echo two"), { wait: 10, tail: null });
    expect(p.log_path).toBe(join(dir, "logs", `${p.id}.jsonl`));
    await until("the log file to exist", () => existsSync(p.log_path));
    const lines = readFileSync(p.log_path, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { type: string; data: string });
    expect(lines.map((l) => l.data).join("")).toBe("one\r\ntwo\r\n");
    expect(m.list()).toEqual([{ id: p.id, command: "echo one; echo two", status: "done", exit_code: 0, log_path: p.log_path }]);
  });

  it("POST wait returns early when the command ends, and after wait when it does not", async () => {
    const m = manager();
    // A wait far past the test's timeout: only an early return passes.
    const quick = await m.start(spec("sleep 0.2; echo x"), { wait: 3600, tail: null });
    expect(quick).toMatchObject({ status: "done", exit_code: 0 });
    expect(text(quick)).toBe("x\r\n");
    const t0 = performance.now();
    const slow = await m.start(spec("sleep 30"), { wait: 0.5, tail: null });
    expect(slow.status).toBe("running");
    // A lower bound only (timers never fire early): it did wait.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(490);
  });

  it("a status wait ends early when the caller goes away", async () => {
    const m = manager();
    const p = await m.start(spec("sleep 30"), noWait);
    const abort = new AbortController();
    // The caller leaves 200 ms into a wait far past the test's timeout: only an early end passes.
    setTimeout(() => abort.abort(), 200);
    expect((await m.status(p.id, { wait: 3600, offset: 0, tail: null }, "", abort.signal)).status).toBe("running");
  });

  it("feeds the terminal through input, with literal escape sequences decoded", async () => {
    const m = manager();
    const p = await m.start(spec('read a; echo "got $a"; read b; echo "then $b"'), noWait);
    expect(await m.input(p.id, "hello\n")).toEqual({ status: "ok" });
    // Type the second line once the first was answered, so the terminal's echo comes in order.
    for (let i = 0; i < 100 && !text(await m.status(p.id, { wait: null, offset: 0, tail: null })).includes("got hello"); i++) {
      await m.status(p.id, { wait: 0.05, offset: 0, tail: null });
    }
    expect(await m.input(p.id, "caf\u00e9\\n")).toEqual({ status: "ok" });
    const done = await m.status(p.id, { wait: 10, offset: 0, tail: null });
    // The terminal echoes what was typed, as a terminal does.
    expect(text(done)).toBe("hello\r\ngot hello\r\ncaf\u00e9\r\nthen caf\u00e9\r\n");
    const reply = await rejection(m.input(p.id, "late\n"));
    expect(reply).toEqual({ status: 400, body: { detail: "Process has already exited", code: "PROCESS_EXITED" } });
  });

  it("kill ends everything the command started and forgets the process (404 after)", async () => {
    const m = manager();
    const term = await m.start(spec("sleep 30 & echo $!; wait"), noWait);
    await m.status(term.id, { wait: 0.5, offset: 0, tail: null });
    const [child] = pidsIn(text(await m.status(term.id, { wait: null, offset: 0, tail: null })));
    expect(await m.kill(term.id, false)).toEqual({ status: "killed" });
    expect((await rejection(m.status(term.id, { wait: null, offset: 0, tail: null }))).status).toBe(404);
    await until("the group's child to end", () => !alive(child!));
    expect(m.list()).toEqual([]);

    const forced = await m.start(spec("sleep 30"), noWait);
    expect(await m.kill(forced.id, true)).toEqual({ status: "killed" });
    const done = await m.start(spec("true"), { wait: 5, tail: null });
    expect(await m.kill(done.id, false)).toEqual({ status: "killed" });
    expect((await rejection(m.kill(done.id, false))).status).toBe(404);
  });

  it("follows an ignored SIGTERM with SIGKILL", async () => {
    const m = manager({ limits: { killEscalateMs: 300 } });
    const p = await m.start(spec("trap '' TERM; echo ready; while :; do sleep 0.05; done"), { wait: 0.3, tail: null });
    expect(text(p)).toBe("ready\r\n");
    await m.kill(p.id, false);
    // Resolving at all is the check: kill waits for the escalated SIGKILL to end the group.
  });

  it("keeps 20 MB of output bounded in memory, offsets absolute, the log rotated to its cap", async () => {
    const m = manager();
    const p = await m.start(spec(`yes "$(printf '%0999d' 0)" | head -c 20000000`), { wait: 120, tail: null });
    expect(p).toMatchObject({ status: "done", exit_code: 0, truncated: true });
    const kept = p.output.reduce((n, e) => n + e.data.length, 0);
    expect(kept).toBeLessThanOrEqual(PROCESS_OUTPUT_MAX_BYTES);
    const recent: ProcessView = await m.status(p.id, { wait: null, offset: p.next_offset - 3, tail: null });
    expect(recent).toMatchObject({ truncated: false, next_offset: p.next_offset });
    expect(recent.output).toHaveLength(3);
    expect((await m.status(p.id, { wait: null, offset: 5, tail: null })).truncated).toBe(true);
  });

  it("scopes processes: another scope neither lists nor finds them", async () => {
    const m = manager();
    const p = await m.start(spec("true"), { wait: 5, tail: null }, as("user-a"));
    expect(m.list("user-a").map((x) => x.id)).toEqual([p.id]);
    expect(m.list("user-b")).toEqual([]);
    const reply = await rejection(m.status(p.id, { wait: null, offset: 0, tail: null }, "user-b"));
    expect(reply).toEqual({ status: 404, body: { detail: "Process not found", code: "PROCESS_NOT_FOUND" } });
  });

  it("runs in the session's working directory when one was set", async () => {
    const sub = join(dir, "sub");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(sub, { recursive: true });
    const m = manager({ sessionCwd: (scope, session) => (scope === "u" && session === "chat" ? sub : undefined) });
    const p = await m.start(spec("pwd"), { wait: 5, tail: null }, { scope: "u", session: "chat" });
    expect(text(p)).toBe(`${sub}\r\n`);
    expect(text(await m.start(spec("pwd"), { wait: 5, tail: null }, { scope: "other", session: "chat" }))).toBe(`${dir}\r\n`);
  });

  it("forgets finished processes after the TTL", async () => {
    const m = manager({ limits: { finishedTtlMs: 200 } });
    const p = await m.start(spec("true"), { wait: 5, tail: null });
    expect(m.list()).toHaveLength(1);
    await until("the finished process to be forgotten", () => m.list().length === 0);
    expect((await rejection(m.kill(p.id, false))).status).toBe(404);
  });

  it("caps tracked and running processes, evicting the oldest finished first", async () => {
    const m = manager({ limits: { maxTracked: 2, maxRunning: 2 } });
    const first = await m.start(spec("true"), { wait: 5, tail: null });
    const sleeper = await m.start(spec("sleep 30"), noWait);
    const second = await m.start(spec("true"), { wait: 5, tail: null }); // evicts `first`
    expect(m.list().map((p) => p.id)).toEqual([sleeper.id, second.id]);
    expect(first.id).not.toBe(second.id);
    await m.start(spec("sleep 30"), noWait); // evicts `second`
    const full = await rejection(m.run(spec("true"), 5));
    expect(full.status).toBe(429);
    expect(full.body.code).toBe("TOO_MANY_PROCESSES");
  });

  it("handle() answers every op in HTTP terms", async () => {
    const m = manager();
    const started = await m.handle({ op: "execute", call: { mode: "background", spec: spec("echo hi"), wait: 5, tail: null } });
    expect(started).toMatchObject({ status: 200, body: { status: "done", output: [{ type: "output", data: "hi\r\n" }] } });
    const id = (started.body as ProcessView).id;
    expect(await m.handle({ op: "list" })).toMatchObject({ status: 200, body: [{ id, status: "done", exit_code: 0 }] });
    expect(await m.handle({ op: "input", id, input: "x" })).toMatchObject({ status: 400 });
    expect(await m.handle({ op: "kill", id, force: false })).toEqual({ status: 200, body: { status: "killed" } });
    expect(await m.handle({ op: "status", id: "nope", query: { wait: null, offset: 0, tail: null } })).toEqual({
      status: 404,
      body: { detail: "Process not found", code: "PROCESS_NOT_FOUND" },
    });
    const sync = await m.handle({ op: "execute", call: { mode: "sync", spec: spec("echo s"), timeout: 30 } });
    expect(sync).toEqual({ status: 200, body: { exit_code: 0, stdout: "s\n", stderr: "" } });
  });

  it("shutdown kills every running command", async () => {
    const m = manager();
    const p = await m.start(spec("echo $$; sleep 30"), { wait: 0.3, tail: null });
    const [pid] = pidsIn(text(p));
    await m.shutdown();
    await until("the command to end", () => !alive(pid!));
  });
});
