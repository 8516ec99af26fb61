/**
 * How the client commands find the edge and its key (worker/cli/local-secrets.ts): flags, then
 * the environment, then the state folder of a stack `edgetty start` runs, whose URL it records
 * there while it runs.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ClientConfigError, forgetStack, loadSecrets, recordStack, resolveClient, runningStackUrl, stateDirOf } from "../../worker/cli/local-secrets.ts";

const dir = mkdtempSync(join(tmpdir(), "edgetty-client-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A state folder as `edgetty start --api-key KEY` leaves it while it runs at `url`. */
function runningState(name: string, key: string, url: string): string {
  const stateDir = join(dir, name);
  mkdirSync(stateDir);
  loadSecrets(stateDir, key);
  recordStack(stateDir, url);
  return stateDir;
}

/** A pid that no process has any more. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(child.stdout);
}

describe("the client commands' edge and key", () => {
  it("come from the state folder of a stack started with any --port and --state-dir", () => {
    const stateDir = runningState("running", "key-from-state", "http://127.0.0.1:9431");
    expect(resolveClient({ "state-dir": stateDir }, {})).toEqual({ edge: "http://127.0.0.1:9431", apiKey: "key-from-state" });
    // EDGETTY_STATE_DIR says the same as --state-dir; the flag wins.
    expect(resolveClient({}, { EDGETTY_STATE_DIR: stateDir })).toEqual({ edge: "http://127.0.0.1:9431", apiKey: "key-from-state" });
    expect(() => resolveClient({ "state-dir": join(dir, "nowhere") }, { EDGETTY_STATE_DIR: stateDir })).toThrow(ClientConfigError);
  });

  it("take flags over the environment, and the environment over the state folder", () => {
    const stateDir = runningState("precedence", "state-key", "http://127.0.0.1:9432");
    const env = { EDGETTY_STATE_DIR: stateDir, EDGETTY_EDGE: "http://env.example", EDGETTY_API_KEY: "env-key" };
    expect(resolveClient({}, env)).toEqual({ edge: "http://env.example", apiKey: "env-key" });
    expect(resolveClient({ edge: "http://flag.example", "api-key": "flag-key" }, env)).toEqual({ edge: "http://flag.example", apiKey: "flag-key" });
    // Each one on its own: a key from the environment, the URL from the state folder.
    expect(resolveClient({}, { EDGETTY_STATE_DIR: stateDir, EDGETTY_API_KEY: "env-key" })).toEqual({ edge: "http://127.0.0.1:9432", apiKey: "env-key" });
  });

  it("never send the state folder's key to an edge other than that stack's", () => {
    const stateDir = runningState("elsewhere", "local-key", "http://127.0.0.1:9434");
    for (const [flags, env] of [[{ edge: "https://edge.example" }, {}], [{}, { EDGETTY_EDGE: "https://edge.example" }]] as const) {
      expect(() => resolveClient({ ...flags, "state-dir": stateDir }, env)).toThrow(/no API key for https:\/\/edge\.example.*not sent to another edge/);
    }
    // The stack's own URL named explicitly still gets its key; a key given for the other edge goes there.
    expect(resolveClient({ edge: "http://127.0.0.1:9434/", "state-dir": stateDir }, {})).toEqual({ edge: "http://127.0.0.1:9434/", apiKey: "local-key" });
    expect(resolveClient({ edge: "https://edge.example", "state-dir": stateDir }, { EDGETTY_API_KEY: "theirs" })).toEqual({ edge: "https://edge.example", apiKey: "theirs" });
  });

  it("fall back to 127.0.0.1 on EDGETTY_PORT or 8787 when no running stack recorded its URL", () => {
    const stateDir = join(dir, "stopped");
    mkdirSync(stateDir);
    loadSecrets(stateDir, "stopped-key");
    // The URL is a guess then, and an error reaching it says why it was tried.
    expect(resolveClient({ "state-dir": stateDir }, {})).toEqual({
      edge: "http://127.0.0.1:8787",
      apiKey: "stopped-key",
      unreachableHint: `no stack is running from ${stateDir}: start it with \`edgetty start --state-dir ${stateDir}\`, or name the edge with --edge URL`,
    });
    expect(resolveClient({ "state-dir": stateDir }, { EDGETTY_PORT: "9433" }).edge).toBe("http://127.0.0.1:9433");
    expect(resolveClient({ "state-dir": stateDir, edge: "http://127.0.0.1:8787" }, {}).unreachableHint).toBeUndefined();
  });

  it("say how to give a key when there is none", () => {
    const error = (() => {
      try {
        resolveClient({ "state-dir": join(dir, "empty") }, {});
      } catch (e) {
        return e as Error;
      }
      throw new Error("no error");
    })();
    expect(error).toBeInstanceOf(ClientConfigError);
    for (const hint of ["--api-key", "EDGETTY_API_KEY", "--state-dir", join(dir, "empty", "secrets.json")]) expect(error.message).toContain(hint);
  });

  it("refuse a secrets.json that is not JSON only when its key is needed", () => {
    const stateDir = join(dir, "corrupt");
    mkdirSync(stateDir);
    writeFileSync(join(stateDir, "secrets.json"), "{not json");
    expect(() => resolveClient({ "state-dir": stateDir }, {})).toThrow(/cannot read .*secrets\.json/);
    expect(resolveClient({ "state-dir": stateDir, "api-key": "k" }, {}).apiKey).toBe("k");
  });

  it("default the state folder to .edgetty under the working folder", () => {
    expect(stateDirOf(undefined, {})).toBe(resolve(".edgetty"));
    expect(stateDirOf(undefined, { EDGETTY_STATE_DIR: "/srv/e" })).toBe("/srv/e");
    expect(stateDirOf("/x", { EDGETTY_STATE_DIR: "/srv/e" })).toBe("/x");
  });
});

describe("the running stack's record", () => {
  it("is owner-only, like secrets.json", () => {
    const stateDir = runningState("mode", "k", "http://127.0.0.1:9434");
    expect(statSync(join(stateDir, "stack.json")).mode & 0o777).toBe(0o600);
    expect(statSync(join(stateDir, "secrets.json")).mode & 0o777).toBe(0o600);
  });

  it("is ignored once the process that wrote it is gone (a SIGKILL leaves it behind)", () => {
    const stateDir = join(dir, "stale");
    mkdirSync(stateDir);
    recordStack(stateDir, "http://127.0.0.1:9435", deadPid());
    expect(runningStackUrl(stateDir)).toBeUndefined();
    writeFileSync(join(stateDir, "stack.json"), "not json");
    expect(runningStackUrl(stateDir)).toBeUndefined();
  });

  it("is ignored when its pid now belongs to a process started at another time (a reused pid)", () => {
    const stateDir = join(dir, "reused");
    mkdirSync(stateDir);
    recordStack(stateDir, "http://127.0.0.1:9437");
    const record = JSON.parse(readFileSync(join(stateDir, "stack.json"), "utf8")) as { pid: number; started: number };
    expect(record.pid).toBe(process.pid);
    expect(runningStackUrl(stateDir)).toBe("http://127.0.0.1:9437");
    writeFileSync(join(stateDir, "stack.json"), JSON.stringify({ ...record, started: record.started - 1 }));
    expect(runningStackUrl(stateDir)).toBeUndefined();
  });

  it("is removed by the run that wrote it, and only by that run", () => {
    const stateDir = runningState("forget", "k", "http://127.0.0.1:9436");
    forgetStack(stateDir, process.pid + 1_000_000);
    expect(runningStackUrl(stateDir)).toBe("http://127.0.0.1:9436");
    forgetStack(stateDir);
    expect(runningStackUrl(stateDir)).toBeUndefined();
  });
});
