/**
 * Identities through the real local stack: the `edgetty user|group|grant|token|audit` commands
 * run as child processes against the edge, and what they make is what the edge enforces.
 */
import { execFile } from "node:child_process";
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
    expect((await cli("grant", "list", "--server", "local")).stdout).toMatch(/^local\s+0\s+group\s+team-a\s+read$/m);

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
    expect(added.stdout).toContain(`EDGETTY_AGENT_TOKEN='${token}' edgetty agent --edge ${stack.url} --server web-1`);
    expect((await cli("server", "disable", "web-1")).stdout).toContain("disabled server web-1");
    expect((await cli("server", "list")).stdout).toMatch(/^web-1\s+Web one\s+false\s+false\s+false$/m);
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
  });
});
