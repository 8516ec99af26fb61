/**
 * The Open Terminal execute API end to end: real workerd, real agent, real commands. Health,
 * auth, synchronous runs, NDJSON streams in real time, timeouts that leave no process behind,
 * 50 MB of output with bounded memory, the background model with stdin, the OpenAPI document,
 * and `edgetty exec`.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { OPEN_TERMINAL_ROUTES } from "../../shared/open-terminal.ts";
import { REPO_ROOT } from "../../worker/cli/local-stack.ts";
import { ndjsonLines, pidsRunning, uniqueSize, untilBlocked } from "../support/ndjson.ts";
import { useStack } from "../support/stack.ts";
import { ShellGate } from "../support/shell-gate.ts";
import { until, Waiters } from "../support/waiters.ts";

type Event = { type: string; data: string | number };

const stack = useStack();
const PREFIX = "/api/v1/terminals/local";

function post(path: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return stack.api(path, { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" }, ...init });
}

async function json<T = Record<string, unknown>>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

/** A marker no other process on this machine has in its command line. */
function marker(): string {
  return `${Math.floor(1e8 + Math.random() * 9e8)}`;
}

describe("health and auth", () => {
  it("answers /health without a key on both mounts", async () => {
    for (const path of ["/health", `${PREFIX}/health`]) {
      const res = await fetch(stack.url + path);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: "ok" });
    }
  });

  it("answers 401 {detail: Invalid API key} without a key or with a wrong one", async () => {
    for (const path of ["/execute", `${PREFIX}/execute`, "/api/terminals"]) {
      const variants: Record<string, string>[] = [{}, { Authorization: "Bearer wrong-key" }, { Authorization: `Bearer ${stack.apiKey}x` }];
      for (const headers of variants) {
        const res = await fetch(stack.url + path, { method: "POST", headers, body: JSON.stringify({ command: "true" }) });
        expect(res.status).toBe(401);
        expect(await res.json()).toMatchObject({ detail: "Invalid API key" });
      }
    }
  });

  it("serves /api/config without a key", async () => {
    const res = await fetch(`${stack.url}/api/config`);
    expect(await res.json()).toEqual({ features: { terminal: true, notebooks: false, system: true } });
  });
});

describe("POST /execute with a timeout (seed 004's synchronous run)", () => {
  it("answers seed 004's example exactly", async () => {
    const res = await post("/execute", { command: "echo hello", timeout: 30 });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('{"exit_code":0,"stdout":"hello\\n","stderr":""}');
  });

  it("runs a command on pipes and answers exit_code, stdout and stderr", async () => {
    const res = await post("/execute", { command: "echo hello; echo oops >&2; test -t 1 || echo notty; exit 3", timeout: 30 });
    expect(await json(res)).toEqual({ exit_code: 3, stdout: "hello\nnotty\n", stderr: "oops\n" });
  });

  it("honours cwd and env, on the per-server mount too", async () => {
    const res = await post(`${PREFIX}/execute`, { command: 'pwd; echo "$GREETING"', cwd: "/tmp", env: { GREETING: "hi there" }, timeout: 30 });
    expect(await json(res)).toMatchObject({ exit_code: 0, stdout: "/tmp\nhi there\n" });
  });

  it("answers 422 in FastAPI's shape for a bad body", async () => {
    const res = await post("/execute", { timeout: "soon" });
    expect(res.status).toBe(422);
    const body = await json<{ detail: { loc: string[] }[] }>(res);
    expect(body.detail.map((d) => d.loc.join("."))).toEqual(expect.arrayContaining(["body.command", "body.timeout"]));
  });

  it("kills the whole process group on timeout and says so", async () => {
    const m = marker();
    const res = await post("/execute", { command: `sleep ${m} & sleep ${m}; echo never`, timeout: 1 });
    expect(await json(res)).toMatchObject({ exit_code: -1, stdout: "", stderr: "Command timed out after 1.0s" });
    await until("both sleeps to end", () => pidsRunning(["sleep", m]).length === 0);
  });

  it("keeps a bounded tail of 50 MB of output", async () => {
    const res = await post("/execute", { command: "head -c 50000000 /dev/zero | tr '\\0' a | fold -w 99", timeout: 120 });
    const body = await json<{ exit_code: number; stdout: string }>(res);
    expect(body.exit_code).toBe(0);
    expect(body.stdout.length).toBeGreaterThan(0);
    expect(body.stdout.length).toBeLessThan(8 << 20);
    expect(body.stdout.endsWith("\n" + "a".repeat(50))).toBe(true); // fold leaves the last 50 unterminated
  });
});

describe("POST /execute?stream=true", () => {
  it("delivers each line as it happens, while the command still runs", async () => {
    const [g1, g2] = [new ShellGate(), new ShellGate()];
    const res = await post("/execute?stream=true", { command: `echo 1; ${g1.wait}; echo 2; ${g2.wait}; echo 3` });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe("application/x-ndjson");
    const lines = ndjsonLines<Event>(res);
    // Each line arrives while the command is held at the gate after it.
    expect((await lines.next()).value?.value).toEqual({ type: "stdout", data: "1\n" });
    g1.open();
    expect((await lines.next()).value?.value).toEqual({ type: "stdout", data: "2\n" });
    g2.open();
    const rest: Event[] = [];
    for await (const line of lines) rest.push(line.value);
    expect(rest).toEqual([
      { type: "stdout", data: "3\n" },
      { type: "exit", data: 0 },
    ]);
  });

  it("writes the reference's exact NDJSON bytes", async () => {
    const res = await post("/execute?stream=true", { command: "printf 'caf\\303\\251\\n'; exit 2" });
    expect(await res.text()).toBe('{"type": "stdout", "data": "caf\\u00e9\\n"}\n{"type": "exit", "data": 2}\n');
  });

  it("kills the command when the client goes away, even while it prints nothing", async () => {
    const m = marker();
    const abort = new AbortController();
    const res = await post("/execute?stream=true", { command: `echo started; sleep ${m}` }, { signal: abort.signal });
    const lines = ndjsonLines<Event>(res);
    expect((await lines.next()).value?.value).toEqual({ type: "stdout", data: "started\n" });
    await until("the sleep to start", () => pidsRunning(["sleep", m]).length === 1);
    abort.abort();
    await until("the sleep to end", () => pidsRunning(["sleep", m]).length === 0);
  });

  // The memory this takes at the agent and in workerd is a bench figure (bench/execute.ts).
  it("streams 50 MB, pausing the command for a stalled reader, then delivers every byte", async () => {
    const total = uniqueSize(50_000_000);
    {
      const res = await post("/execute?stream=true", { command: `head -c ${total} /dev/zero | tr '\\0' a | fold -w 999` });
      const reader = res.body!.getReader();
      let received = 0;
      // Read a little, then stop reading: the command must be held back, not buffered for.
      while (received < 1 << 20) received += (await reader.read()).value!.byteLength;
      const written = await untilBlocked(["head", "-c", String(total), "/dev/zero"], { timeoutMs: 30_000, everyMs: 500 });
      expect(written).toBeLessThan(total * 0.6);
      // Now read everything.
      let tail = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += value.byteLength;
        tail = (tail + new TextDecoder().decode(value)).slice(-200);
      }
      expect(tail.endsWith('{"type": "exit", "data": 0}\n')).toBe(true);
      // Every byte of output arrived: 50 MB of 'a' in lines of 999, each NDJSON-wrapped.
      expect(received).toBeGreaterThan(total);
    }
  });

  it("ends the stream and stops the command when the agent's link drops", async () => {
    const m = marker();
    const res = await post("/execute?stream=true", { command: `echo up; sleep ${m}` });
    const lines = ndjsonLines<Event>(res);
    expect((await lines.next()).value?.value).toEqual({ type: "stdout", data: "up\n" });
    stack.agent.kill("SIGUSR2"); // drops every link, as a network failure would
    const rest = (async () => {
      try {
        for await (const line of lines) void line;
        return "ended";
      } catch {
        return "aborted";
      }
    })();
    expect(["ended", "aborted"]).toContain(await rest);
    await until("the sleep to end", () => pidsRunning(["sleep", m]).length === 0);
    await stack.waitForAgent();
  });
});

describe("the background model (on a PTY)", () => {
  type View = { id: string; status: string; exit_code: number | null; output: { type: string; data: string }[]; truncated: boolean; next_offset: number; log_path: string };
  const text = (v: View) => v.output.map((o) => o.data).join("");

  it("is spawned by the agent itself (posix_spawn: no PTY host in between), with no descriptor of the agent's, and tagged as the agent's", async () => {
    const view = await json<View>(await post("/execute?wait=10", { command: 'tr "\\0" " " < /proc/$PPID/cmdline; echo; ls /proc/self/fd | tr "\\n" " "; echo; echo "tag=$EDGETTY_PROCESS"' }));
    expect(view.exit_code).toBe(0);
    const [parent, fds] = text(view).split("\r\n");
    expect(parent).toMatch(/edgetty\.js agent /);
    expect(parent).not.toContain("pty-host");
    // The PTY as 0-2, and the directory `ls` opened: none of the agent's links, logs or terminals.
    expect(fds!.trim().split(" ").map(Number)).toEqual([0, 1, 2, 3]);
    expect(text(view)).toMatch(/tag=[0-9a-f]{16}\.\d+-\d+\.xexec\r\n/);
  });

  it("returns at once without wait, then status pages with offset", async () => {
    const started = await json<View>(await post("/execute", { command: "sleep 0.3; echo one; echo two >&2; test -t 1 && echo tty" }));
    expect(started).toMatchObject({ status: "running", exit_code: null, output: [], truncated: false, next_offset: 0 });
    expect(started.log_path).toMatch(new RegExp(`${started.id}\\.jsonl$`));
    const done = await json<View>(await stack.api(`/execute/${started.id}/status?wait=10`));
    expect(done).toMatchObject({ status: "done", exit_code: 0, truncated: false });
    expect(text(done)).toBe("one\r\ntwo\r\ntty\r\n");
    expect(done.output.every((o) => o.type === "output")).toBe(true);
    const list = await json<{ id: string; log_path: string }[]>(await stack.api("/execute"));
    expect(list.find((p) => p.id === done.id)).toMatchObject({ status: "done", exit_code: 0, log_path: started.log_path });
    const rest = await json<View>(await stack.api(`/execute/${done.id}/status?offset=${done.next_offset}`));
    expect(rest).toMatchObject({ output: [], next_offset: done.next_offset });
    const tail = await json<View>(await stack.api(`/execute/${done.id}/status?tail=1&offset=0&wait=null`));
    expect(tail.output).toHaveLength(1);
  });

  it("keeps processes apart by X-User-Id, not by X-Session-Id", async () => {
    const res = await post("/execute?wait=0", { command: "true" }, { headers: { "Content-Type": "application/json", "X-User-Id": "u1", "X-Session-Id": "chat-a" } });
    const { id } = await json<{ id: string }>(res);
    expect((await stack.api(`/execute/${id}/status`)).status).toBe(404);
    expect((await stack.api(`/execute/${id}/status`, { headers: { "X-User-Id": "u2" } })).status).toBe(404);
    expect((await stack.api(`/execute/${id}/status`, { headers: { "X-User-Id": "u1" } })).status).toBe(200);
    expect((await stack.api(`/execute/${id}/status`, { headers: { "X-User-Id": "u1", "X-Session-Id": "chat-b" } })).status).toBe(200);
    expect((await json<{ id: string }[]>(await stack.api("/execute"))).map((p) => p.id)).not.toContain(id);
  });

  it("feeds stdin through /input and kills with DELETE", async () => {
    const m = marker();
    const started = await json<View>(await post("/execute", { command: `read line; echo got:$line; sleep ${m} & cat` }));
    expect(started.status).toBe("running");
    const input = await post(`/execute/${started.id}/input`, { input: "hello\n" });
    expect(await json(input)).toEqual({ status: "ok" });
    await until("the echo of the input, and the sleep running", async () => {
      const s = await json<View>(await stack.api(`/execute/${started.id}/status`));
      return text(s).includes("got:hello\r\n") && pidsRunning(["sleep", m]).length === 1;
    });
    const killed = await stack.api(`/execute/${started.id}`, { method: "DELETE" });
    expect(await json(killed)).toEqual({ status: "killed" });
    // The process is forgotten at once, as the reference: 404 after, and its children are gone too.
    const after = await stack.api(`/execute/${started.id}/status`);
    expect(after.status).toBe(404);
    await until("the command's children to end", () => pidsRunning(["sleep", m]).length === 0);
    const late = await post(`/execute/${started.id}/input`, { input: "x" });
    expect(late.status).toBe(404);
  });

  it("bounds what a process keeps and says it was truncated", async () => {
    const res = await post("/execute?wait=120", { command: "head -c 50000000 /dev/zero | tr '\\0' b | fold -w 999" });
    const text = await res.text();
    const body = JSON.parse(text) as { status: string; truncated: boolean; output: { data: string }[] };
    expect(body).toMatchObject({ status: "done", truncated: true });
    expect(text.length).toBeLessThan(4 << 20);
  });

  it("answers a short result uncompressed and a long one gzipped to a client that accepts gzip", async () => {
    const headers = { "Content-Type": "application/json", "Accept-Encoding": "gzip, deflate" };
    const short = await post("/execute?wait=5", { command: "echo hi" }, { headers });
    expect(short.headers.get("Content-Encoding")).toBe("identity");
    expect(await json(short)).toMatchObject({ status: "done", exit_code: 0, output: [{ type: "output", data: "hi\r\n" }] });
    const long = await post("/execute?wait=5", { command: "head -c 3000 /dev/zero | tr '\\0' x" }, { headers });
    expect(long.headers.get("Content-Encoding")).toBe("gzip");
    const view = await json<{ output: { data: string }[] }>(long);
    expect(view.output.map((o) => o.data).join("")).toBe("x".repeat(3000));
  });

  it("answers 404 in the family's shape for an unknown process", async () => {
    const res = await stack.api("/execute/nope/status");
    expect(res.status).toBe(404);
    expect(await json(res)).toMatchObject({ detail: "Process not found", code: "PROCESS_NOT_FOUND" });
  });
});

describe("GET /openapi.json", () => {
  it("offers the reference's model tools, relative to the mount, and every listed route is served", async () => {
    for (const base of ["", PREFIX]) {
      const doc = await json<{ paths: Record<string, Record<string, { operationId?: string }>>; servers: { url: string }[] }>(await fetch(`${stack.url}${base}/openapi.json`));
      expect(doc.servers).toEqual([{ url: stack.url + base }]);
      const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((op) => op.operationId));
      expect(ids).toHaveLength(12);
      // Each route of the family is really served: none answers 404 Not Found for its path.
      // `/info` is the reference's 404 until the agent is started to offer it (its own test).
      for (const route of OPEN_TERMINAL_ROUTES.filter((r) => !r.websocket && r.path !== "/info")) {
        const path = route.path.replace("{process_id}", "x").replace("{session_id}", "1").replace("{port}", "1").replace("{path}", "x");
        const method = route.method === "ANY" ? "GET" : route.method;
        const res = await stack.api(base + path, { method, ...(method === "POST" ? { body: "{}", headers: { "Content-Type": "application/json" } } : {}) });
        expect([404, 405].includes(res.status) ? await res.json() : null, `${route.method} ${path}`).not.toEqual({ detail: "Not Found", code: "NOT_FOUND" });
        if (method === "POST" && route.path === "/api/terminals") {
          const { id } = (await res.json()) as { id: string };
          await stack.api(`${base}/api/terminals/${id}`, { method: "DELETE" });
        }
      }
    }
  });
});

describe("edgetty exec", () => {
  interface CliRun {
    /** Resolves with the exit code and everything printed. */
    done: Promise<{ code: number | null; stdout: string; stderr: string }>;
    /** Resolves once stdout holds `text`. */
    printed(text: string): Promise<void>;
  }

  function startCli(args: string[]): CliRun {
    const child = spawn(process.execPath, [join(REPO_ROOT, "bin", "edgetty.js"), "exec", "--edge", stack.url, "--api-key", stack.apiKey, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out = { stdout: "", stderr: "" };
    const waiters = new Waiters();
    child.stdout.on("data", (d: Buffer) => {
      out.stdout += d.toString();
      waiters.notify();
    });
    child.stderr.on("data", (d: Buffer) => (out.stderr += d.toString()));
    return {
      done: new Promise((resolve) => child.on("close", (code) => resolve({ code, ...out }))),
      printed: (text) => waiters.until(() => out.stdout === text, `stdout ${JSON.stringify(text)}`),
    };
  }

  const runCli = (args: string[]) => startCli(args).done;

  it("streams output and exits with the command's exit code", async () => {
    const r = await runCli(["--", "sh", "-c", "echo hi; echo err >&2; exit 3"]);
    expect(r).toMatchObject({ code: 3, stdout: "hi\n", stderr: "err\n" });
  });

  it("prints lines as they come, on a named server", async () => {
    const gate = new ShellGate();
    const run = startCli(["--server", "local", "--", "sh", "-c", `echo a; ${gate.wait}; echo b`]);
    // "a" is printed while the command still waits at the gate.
    await run.printed("a\n");
    gate.open();
    const r = await run.done;
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("a\nb\n");
  });
});

describe("an offline agent", () => {
  it("answers 503 in the family's shape", async () => {
    await stack.stopAgent();
    await until("the server to go offline", async () => {
      const servers = await json<{ id: string; online: boolean }[]>(await stack.api("/api/v1/terminals/"));
      return servers.some((s) => s.id === "local" && !s.online);
    });
    const res = await post("/execute", { command: "true" });
    expect(res.status).toBe(503);
    expect(await json(res)).toMatchObject({ code: "AGENT_OFFLINE", detail: expect.any(String) });
    const terminals = await post("/api/terminals", {});
    expect(terminals.status).toBe(503);
  });
});
