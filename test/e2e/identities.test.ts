/**
 * Identities through the real local stack: the `edgetty user|group|grant|token|audit` commands
 * run as child processes against the edge, and what they make is what the edge enforces.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve as resolve_ } from "node:path";
import { describe, expect, it } from "vitest";
import { useStack } from "../support/stack.ts";

const stack = useStack();

/** Runs `edgetty …` against the stack with its admin key; answers the exit code and output. */
function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["bin/edgetty.js", ...args, "--edge", stack.url, "--api-key", stack.apiKey], (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** The CLI, from the repository's root (the tests' working folder). */
const BIN = "bin/edgetty.js";

/** Each test runs about a dozen CLI processes, each compiling the CLI's TypeScript on start (tsx). */
const CLI_TEST_TIMEOUT_MS = 180_000;

describe("edgetty identity commands", { timeout: CLI_TEST_TIMEOUT_MS }, () => {
  it("make users, groups, grants and tokens that the edge then knows", async () => {
    expect((await cli("user", "add", "alice", "--email", "alice@example.com")).stdout).toContain("created user alice");
    expect((await cli("group", "add", "team-a")).code).toBe(0);
    expect((await cli("group", "member", "add", "team-a", "alice")).stdout).toContain("added alice to team-a");
    expect((await cli("grant", "add", "--server", "local", "--group", "team-a", "--access", "read")).stdout).toContain("granted read on local to group team-a");

    const users = await cli("user", "list");
    expect(users.stdout).toMatch(/^ID\s+NAME\s+EMAIL/m);
    expect(users.stdout).toMatch(/^alice\s+alice\s+alice@example\.com\s+user\s+false$/m);
    // A grant on the whole server shows its terminal as *.
    expect((await cli("grant", "list", "--server", "local")).stdout).toMatch(/^local\s+\*\s+group\s+team-a\s+read$/m);

    const created = await cli("token", "create", "--user", "alice", "--name", "laptop", "--ttl", "1d", "--json");
    expect(created.code).toBe(0);
    const token = JSON.parse(created.stdout) as { id: string; token: string };
    expect(token.token).toMatch(/^ett_/);
    const listed = await cli("token", "list", "--user", "alice");
    expect(listed.stdout).toContain(token.id);
    expect(listed.stdout).not.toContain(token.token);

    // A user's token is not an admin token.
    const asAlice = await fetch(`${stack.url}/api/v1/admin/users`, { headers: { Authorization: `Bearer ${token.token}` } });
    expect(asAlice.status).toBe(403);

    expect((await cli("token", "revoke", token.id)).stdout).toContain(`revoked token ${token.id}`);
    const audit = await cli("audit", "--limit", "10");
    for (const action of ["user.create", "group.create", "group.member", "grant.put", "token.create", "token.revoke"]) expect(audit.stdout).toContain(action);
    expect(audit.stdout).toContain("admin-key");
  });

  it("add, list, disable and remove servers; add prints the agent command", async () => {
    const added = await cli("server", "add", "web-1", "--name", "Web one");
    expect(added.code).toBe(0);
    const token = /agent token \(shown only now\): (\S+)/.exec(added.stdout)?.[1];
    expect(token).toBeTruthy();
    expect(added.stdout).toContain(`EDGETTY_AGENT_TOKEN='${token}' edgetty-agent --edge ${stack.url} --server web-1`);
    expect((await cli("server", "disable", "web-1")).stdout).toContain("disabled server web-1");
    expect((await cli("server", "list")).stdout).toMatch(/^web-1\s+Web one\s+agent\s+false\s+false\s+false$/m);
    // A URL server has no agent to be online: its ONLINE is "-", not a "false" that looks like a fault.
    expect((await cli("server", "add", "ot-1", "--url", "http://127.0.0.1:9/", "--key", "k")).code).toBe(0);
    expect((await cli("server", "list")).stdout).toMatch(/^ot-1\s+ot-1\s+url\s+true\s+-\s+false$/m);
    expect((await cli("server", "remove", "ot-1")).code).toBe(0);
    // A disabled server answers 403 through the proxy, even to the admin.
    const res = await stack.api("/api/v1/terminals/web-1/api/v1/terminal/sessions");
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: "Terminal server disabled" });
    expect((await cli("server", "remove", "web-1")).stdout).toContain("removed server web-1");
    expect((await cli("server", "list")).stdout).not.toContain("web-1");
  });

  it("exit 1 with the edge's message when refused, 2 on usage errors", async () => {
    const dup = await cli("user", "add", "bob");
    expect(dup.code).toBe(0);
    const again = await cli("user", "add", "bob");
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("409");
    const usage = await cli("grant", "add", "--server", "local");
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("exactly one of --user or --group");
    expect((await cli("token", "create", "--user", "bob", "--ttl", "soon")).code).toBe(2);
    // An edge that is not there: exit 1 and one line saying so, not fetch's stack trace.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const gone = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [BIN, "user", "list", "--edge", `http://127.0.0.1:${port}`, "--api-key", "k"], (error, _stdout, stderr) => {
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stderr });
      });
    });
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe(`edgetty: cannot reach http://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}\n`);
  });

  it("refuse a --terminal that is not a terminal id instead of granting the whole server", async () => {
    expect((await cli("user", "add", "carol")).code).toBe(0);
    for (const terminal of ["#5", "5x", "1e1", "0x10", "0", "70000"]) {
      const bad = await cli("grant", "add", "--server", "local", "--user", "carol", "--access", "write", "--terminal", terminal);
      expect(bad.code, terminal).toBe(2);
      expect(bad.stderr).toContain("--terminal must be a terminal id");
    }
    const grants = await cli("grant", "list", "--json");
    expect(JSON.parse(grants.stdout).filter((g: { principal_id: string }) => g.principal_id === "carol")).toEqual([]);
    const one = await cli("grant", "add", "--server", "local", "--user", "carol", "--access", "read", "--terminal", "7");
    expect(one.code).toBe(0);
    expect(one.stdout).toContain("granted read on local/7 to user carol");
    // A name with control characters is shown escaped, never written to the reader's terminal.
    expect((await cli("user", "add", "dave", "--name", "\u001b]0;PWNED\u0007")).code).toBe(0);
    const users = await cli("user", "list");
    expect(users.stdout).toContain("\\x1b]0;PWNED\\x07");
    expect(users.stdout).not.toContain("\u001b");
  });

  it("answer bad agent options and a corrupt secrets file with a usage line, not a stack trace", async () => {
    // Run bare (no --edge/--api-key added), from a folder whose .edgetty/secrets.json is not JSON.
    const dir = mkdtempSync(join(tmpdir(), "edgetty-cli-"));
    mkdirSync(join(dir, ".edgetty"));
    writeFileSync(join(dir, ".edgetty", "secrets.json"), "{not json");
    const bare = (...args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        const env: NodeJS.ProcessEnv = { ...process.env, HOME: dir };
        delete env["EDGETTY_API_KEY"];
        delete env["EDGETTY_EDGE"];
        execFile(process.execPath, [resolve_(BIN), ...args], { cwd: dir, env }, (error, stdout, stderr) => {
          resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
        });
      });
    try {
      for (const args of [["agent", "--bogus"], ["agent", "install", "--bogus"], ["agent"], ["user", "list"]]) {
        const r = await bare(...args);
        expect(r.code, args.join(" ")).toBe(2);
        expect(r.stderr).toMatch(/^edgetty: /);
        expect(r.stderr).not.toMatch(/\n\s+at /);
      }
      expect((await bare("user", "list")).stderr).toContain("secrets.json");
      expect((await bare("agent")).stderr).toContain("agent needs --edge URL");
      const help = await bare("agent", "install", "--help");
      expect(help.code).toBe(0);
      expect(help.stdout).toContain("edgetty agent install");
      expect((await bare("user", "--help")).stdout).toMatch(/^usage: edgetty user add ID/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
