/**
 * The `edgetty` command line as a newcomer meets it, run as real processes with a private HOME:
 * each command's own usage on `--help` (exit 0) and on a usage error (exit 2), the hint when no
 * API key is found, `grant list` against a small real HTTP server, and the standalone agent
 * package's usage naming `edgetty-agent`.
 */
import { execFile } from "node:child_process";
import { createServer, type Server } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../worker/cli/local-stack.ts";

const home = mkdtempSync(join(tmpdir(), "edgetty-cli-usage-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

/** Each run compiles the CLI's TypeScript on start (tsx): about a second or two. */
const CLI_TEST_TIMEOUT_MS = 60_000;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `node …args` from a private HOME and working folder, with no EDGETTY_* variables. */
function run(args: string[]): Promise<Run> {
  const env: NodeJS.ProcessEnv = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: home };
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: home, env }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const edgetty = (...args: string[]) => run([join(REPO_ROOT, "bin", "edgetty.js"), ...args]);
/** The agent package's entry, as its bundle runs it (tsx instead of esbuild). */
const tsx = pathToFileURL(join(REPO_ROOT, "node_modules", "tsx", "dist", "loader.mjs")).href;
const edgettyAgent = (...args: string[]) => run(["--import", tsx, join(REPO_ROOT, "worker", "cli", "agent-bin.ts"), ...args]);

const ADMIN_COMMANDS = ["server", "user", "group", "grant", "token", "audit"];

describe("edgetty --help on one command", { timeout: CLI_TEST_TIMEOUT_MS }, () => {
  it("prints exec's own usage, its flags and an example, and exits 0", async () => {
    for (const flag of ["--help", "-h"]) {
      const r = await edgetty("exec", flag);
      expect(r.code, flag).toBe(0);
      expect(r.stdout).toMatch(/^usage: edgetty exec /);
      for (const text of ["--server ID", "--edge URL", "--api-key KEY", "--state-dir DIR", "example: edgetty exec"]) expect(r.stdout).toContain(text);
      expect(r.stdout).not.toContain("Administration");
    }
  });

  it("prints each admin command's own usage and exits 0", async () => {
    for (const command of ADMIN_COMMANDS) {
      const r = await edgetty(command, "--help");
      expect(r.code, command).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage: edgetty ${command} `));
      expect(r.stdout).toContain(`example: edgetty ${command} `);
      expect(r.stdout).toContain("--state-dir DIR");
      expect(r.stdout).not.toContain("Administration");
    }
    expect((await edgetty("grant", "list", "-h")).stdout).toContain("TERMINAL_ID * for such a grant");
  });

  it("leaves --help after -- to the command exec runs", async () => {
    const r = await edgetty("exec", "--edge", "http://127.0.0.1:9", "--api-key", "k", "--", "ls", "--help");
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("cannot reach http://127.0.0.1:9");
  });
});

describe("edgetty usage errors", { timeout: CLI_TEST_TIMEOUT_MS }, () => {
  it("print the command's own usage and exit 2", async () => {
    const unknown = await edgetty("user", "list", "--bogus");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^edgetty: Unknown option '--bogus'/);
    expect(unknown.stderr).toContain("usage: edgetty user ");

    // A flag of another command is refused too.
    const foreign = await edgetty("user", "add", "bob", "--server", "local");
    expect(foreign.code).toBe(2);
    expect(foreign.stderr).toContain("Unknown option '--server'");

    const noCommand = await edgetty("exec", "--api-key", "k");
    expect(noCommand.code).toBe(2);
    expect(noCommand.stderr).toContain("exec needs a command after --");
    expect(noCommand.stderr).toContain("usage: edgetty exec ");

    const noPrincipal = await edgetty("grant", "add", "--server", "local", "--edge", "http://127.0.0.1:9", "--api-key", "k");
    expect(noPrincipal.code).toBe(2);
    expect(noPrincipal.stderr).toContain("give exactly one of --user or --group");
    expect(noPrincipal.stderr).toContain("usage: edgetty grant ");
  });

  it("say how to give an API key when none is found", async () => {
    for (const args of [["exec", "--", "uname", "-a"], ["user", "list"], ["server", "list", "--state-dir", "elsewhere"]]) {
      const r = await edgetty(...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(/^edgetty: no API key: pass --api-key KEY, set EDGETTY_API_KEY, or pass --state-dir DIR/);
    }
    expect((await edgetty("server", "list", "--state-dir", "elsewhere")).stderr).toContain(join(home, "elsewhere", "secrets.json"));
  });
});

describe("edgetty grant list", { timeout: CLI_TEST_TIMEOUT_MS }, () => {
  let server: Server;
  let edge = "";
  beforeAll(async () => {
    // The edge's answer to GET /api/v1/admin/grants: one grant on a whole server, one on a terminal.
    server = createServer((req, res) => {
      if (req.url !== "/api/v1/admin/grants" || req.headers.authorization !== "Bearer k") {
        res.writeHead(404).end();
        return;
      }
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify([
          { server_id: "local", terminal_id: 0, principal_type: "group", principal_id: "team-a", access: "read" },
          { server_id: "local", terminal_id: 7, principal_type: "user", principal_id: "carol", access: "write" },
        ]),
      );
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    edge = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((done) => server.close(() => done())));

  it("shows a grant on the whole server as terminal *", async () => {
    const r = await edgetty("grant", "list", "--edge", edge, "--api-key", "k");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^local\s+\*\s+group\s+team-a\s+read$/m);
    expect(r.stdout).toMatch(/^local\s+7\s+user\s+carol\s+write$/m);
    // --json stays the API's answer.
    const json = await edgetty("grant", "list", "--edge", edge, "--api-key", "k", "--json");
    expect(JSON.parse(json.stdout)[0].terminal_id).toBe(0);
  });
});

describe("the agent's usage", { timeout: CLI_TEST_TIMEOUT_MS }, () => {
  it("names edgetty-agent in the standalone package", async () => {
    const help = await edgettyAgent("--help");
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^edgetty-agent — the host agent/);
    expect(help.stdout).toContain("  edgetty-agent install --edge URL");
    expect(help.stdout).not.toMatch(/^\s+agent /m);

    const bad = await edgettyAgent("--bogus");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^edgetty-agent: Unknown option '--bogus'/);
    expect(bad.stderr).toContain("  edgetty-agent --edge URL");
    expect(bad.stderr).not.toMatch(/^\s+agent /m);
    expect(bad.stderr).not.toMatch(/\n\s+at /);

    const missing = await edgettyAgent("install", "--server", "web-01");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("install needs --edge URL");
    expect(missing.stderr).toContain("  edgetty-agent install ");
  });

  it("names edgetty agent inside the CLI", async () => {
    const help = await edgetty("agent", "--help");
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^edgetty agent — the host agent/);
    expect(help.stdout).toContain("  edgetty agent install --edge URL");
    expect(help.stdout).not.toContain("edgetty-agent --");
  });
});
