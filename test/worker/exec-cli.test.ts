/**
 * `edgetty exec` (runExecCli) against a real HTTP server on port 0 that serves the stream route as
 * the edge does (same validation, same NDJSON), backed by a real ExecManager.
 */
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseExecHttp } from "../../shared/links/exec.ts";
import { NDJSON_CONTENT_TYPE, ndjsonLine } from "../../shared/open-terminal.ts";
import { execUrl, exitStatus, runExecCli, shellJoin } from "../../worker/cli/exec.ts";
import { ExecManager } from "../../worker/agent/exec/exec-manager.ts";
import { ShellGate } from "../support/shell-gate.ts";
import { until, Waiters } from "../support/waiters.ts";
import { alive, pidsIn } from "./exec-helpers.ts";

const KEY = "test-key";
const USER_TOKEN = "ett_user-token";
const manager = new ExecManager({ defaultCwd: "/tmp" });
const seenPaths: string[] = [];
let server: Server;
let edge: string;

async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url!, "http://x");
  seenPaths.push(url.pathname);
  const json = (status: number, body: unknown): void => void res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  const path = url.pathname.replace(/^\/api\/v1\/terminals\/[^/]+/, "");
  // A user's token, as the edge answers it at the top level.
  if (req.headers.authorization === `Bearer ${USER_TOKEN}` && path === url.pathname) {
    return json(403, { detail: "This route is for admins; users reach their servers under /api/v1/terminals/", code: "ADMIN_ONLY" });
  }
  if (req.headers.authorization !== `Bearer ${KEY}` && req.headers.authorization !== `Bearer ${USER_TOKEN}`) return json(401, { detail: "Invalid API key" });
  let text = "";
  for await (const chunk of req) text += String(chunk);
  const parsed = parseExecHttp(req.method!, path, url.searchParams, text);
  if (!parsed) return json(404, { detail: "Not Found" });
  if (!parsed.ok) return json(parsed.reply.status, parsed.reply.body);
  const op = parsed.value;
  if (op.op !== "execute" || op.call.mode !== "stream") return json(400, { detail: "this stand-in serves streams only" });
  const stream = await manager.stream(op.call.spec, op.call.timeout);
  res.writeHead(200, { "content-type": NDJSON_CONTENT_TYPE });
  res.on("close", () => stream.cancel());
  for await (const event of stream) {
    if (!res.write(ndjsonLine(event))) await new Promise((r) => res.once("drain", r));
  }
  res.end();
}

beforeAll(async () => {
  server = createServer((req, res) => void serve(req, res));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  edge = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await manager.shutdown();
});

type Sink = Writable & { text: string; until(predicate: (text: string) => boolean, what: string): Promise<void> };

/** A Writable that remembers what was written; `until` waits for what it has seen. */
function sink(): Sink {
  const waiters = new Waiters();
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      w.text += chunk.toString();
      waiters.notify();
      cb();
    },
  }) as Sink;
  w.text = "";
  w.until = (predicate, what) => waiters.until(() => predicate(w.text), what);
  return w;
}

describe("edgetty exec", () => {
  it("quotes argv into one shell line and maps exit codes to statuses", () => {
    expect(shellJoin(["ls", "-la", "my file", "it's", "$HOME", "a=b"])).toBe(`ls -la 'my file' 'it'\\''s' '$HOME' a=b`);
    expect([exitStatus(0), exitStatus(3), exitStatus(-15), exitStatus(-1), exitStatus(300)]).toEqual([0, 3, 143, 129, 44]);
    expect(execUrl("http://e/", "web 1")).toBe("http://e/api/v1/terminals/web%201/execute?stream=true");
  });

  it("streams stdout and stderr live and resolves with the command's exit status", async () => {
    const out = sink();
    const err = sink();
    const gate = new ShellGate();
    const run = runExecCli({ edge, apiKey: KEY, command: ["sh", "-c", `echo 1; ${gate.wait}; echo 2; echo bad >&2; exit 4`], stdout: out, stderr: err });
    // "1" is printed while the command still waits at the gate.
    await out.until((t) => t === "1\n", "the first line");
    gate.open();
    expect(await run).toBe(4);
    expect(out.text).toBe("1\n2\n");
    expect(err.text).toBe("bad\n");
  });

  it("passes arguments through the shell unchanged", async () => {
    const out = sink();
    expect(await runExecCli({ edge, apiKey: KEY, command: ["printf", "%s|", "a b", "it's", "$HOME", "*"], stdout: out, stderr: sink() })).toBe(0);
    expect(out.text).toBe("a b|it's|$HOME|*|");
  });

  it("reaches a named server through the Open WebUI terminals mount", async () => {
    seenPaths.length = 0;
    expect(await runExecCli({ edge, apiKey: KEY, server: "web-1", command: ["true"], stdout: sink(), stderr: sink() })).toBe(0);
    expect(seenPaths).toEqual(["/api/v1/terminals/web-1/execute"]);
  });

  it("reports API errors and unreachable edges with status 255", async () => {
    const err = sink();
    expect(await runExecCli({ edge, apiKey: "wrong", command: ["true"], stdout: sink(), stderr: err })).toBe(255);
    expect(err.text).toBe("edgetty exec: 401 Invalid API key\n");
    const err2 = sink();
    expect(await runExecCli({ edge: "http://127.0.0.1:1", apiKey: KEY, command: ["true"], stdout: sink(), stderr: err2 })).toBe(255);
    expect(err2.text).toMatch(/^edgetty exec: cannot reach/);
  });

  it("tells a user's token without --server to name a server", async () => {
    const err = sink();
    expect(await runExecCli({ edge, apiKey: USER_TOKEN, command: ["true"], stdout: sink(), stderr: err })).toBe(255);
    expect(err.text).toBe("edgetty exec: 403 This route is for admins; users reach their servers under /api/v1/terminals/ (with a user's token, name a server granted to you: --server ID)\n");
    expect(await runExecCli({ edge, apiKey: USER_TOKEN, server: "local", command: ["true"], stdout: sink(), stderr: sink() })).toBe(0);
  });

  it("stops the remote command when aborted", async () => {
    const abort = new AbortController();
    const out = sink();
    const run = runExecCli({ edge, apiKey: KEY, command: ["sh", "-c", "echo $$; exec sleep 30"], stdout: out, stderr: sink(), signal: abort.signal });
    await out.until((t) => pidsIn(t).length > 0, "the command's pid");
    abort.abort();
    expect(await run).toBe(130);
    const [pid] = pidsIn(out.text);
    await until("the remote command to end", () => !alive(pid!));
  });
});
