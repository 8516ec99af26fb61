/**
 * `edgetty agent install|uninstall` into a temporary staging root (`--root`), run as a real
 * command: the unit file, the token file's mode and owner, the enable symlink, --dry-run writing
 * nothing and never printing the token, and the token-file checks of the running agent.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AGENT_NODE_FLAGS } from "../../worker/cli/agent-node-flags.ts";
import { readTokenFile, UsageError } from "../../worker/cli/agent-cli.ts";
import { renderUnit, systemdQuote } from "../../worker/cli/agent-service.ts";
import { createAgentLogger, redact } from "../../worker/agent/log.ts";
import { REPO_ROOT } from "../../worker/cli/local-stack.ts";

const dir = mkdtempSync(join(tmpdir(), "edgetty-install-"));
const TOKEN = "agent-token-0123456789abcdef";
const tokenFile = join(dir, "token");
writeFileSync(tokenFile, TOKEN + "\n", { mode: 0o600 });

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function edgetty(...args: string[]) {
  const result = spawnSync(process.execPath, [join(REPO_ROOT, "bin", "edgetty.js"), "agent", ...args], { encoding: "utf8" });
  return { status: result.status, out: result.stdout + result.stderr };
}

describe("edgetty agent install --root", () => {
  const root = join(dir, "root");
  const unit = join(root, "etc/systemd/system/edgetty-agent-web-01.service");
  const token = join(root, "etc/edgetty/web-01.token");
  const wants = join(root, "etc/systemd/system/multi-user.target.wants/edgetty-agent-web-01.service");

  it("starts every agent with AGENT_NODE_FLAGS: the shebangs of bin/edgetty.js and the agent bundle say the same", () => {
    const shebang = `#!/usr/bin/env -S node ${AGENT_NODE_FLAGS.join(" ")}`;
    expect(readFileSync(join(REPO_ROOT, "bin", "edgetty.js"), "utf8").split("\n")[0]).toBe(shebang);
    expect(readFileSync(join(REPO_ROOT, "scripts", "build-agent.mjs"), "utf8")).toContain(`"${shebang}",`);
  });

  it("writes the unit, a root-only token file and the enable symlink", () => {
    const { status, out } = edgetty("install", "--edge", "https://edge.example.com", "--server", "web-01", "--token-file", tokenFile, "--root", root);
    expect(status, out).toBe(0);
    expect(out).not.toContain(TOKEN);

    const text = readFileSync(unit, "utf8");
    const execStart = text.split("\n").find((l) => l.startsWith("ExecStart="))!;
    expect(execStart).toContain(`${process.execPath} ${AGENT_NODE_FLAGS.join(" ")} ${join(REPO_ROOT, "bin", "edgetty.js")} agent`);
    expect(execStart).toContain("--edge https://edge.example.com --server web-01 --token-file /etc/edgetty/web-01.token --data-dir /var/lib/edgetty/web-01 --log-format json");
    expect(text).toContain("\nRestart=on-failure\n");
    expect(text).toContain("\nStateDirectory=edgetty/web-01\n");
    expect(text).toContain("\nWantedBy=multi-user.target\n");
    expect(text).not.toContain(TOKEN);
    expect(statSync(unit).mode & 0o777).toBe(0o644);

    const st = statSync(token);
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.uid).toBe(process.getuid!());
    if (process.getuid!() === 0) expect([st.uid, st.gid]).toEqual([0, 0]);
    expect(readFileSync(token, "utf8")).toBe(TOKEN + "\n");
    expect(statSync(join(root, "etc/edgetty")).mode & 0o777).toBe(0o700);

    expect(lstatSync(wants).isSymbolicLink()).toBe(true);
    expect(readlinkSync(wants)).toBe("/etc/systemd/system/edgetty-agent-web-01.service");
  });

  it("uninstall --dry-run changes nothing; uninstall removes unit, link and token", () => {
    const dry = edgetty("uninstall", "--server", "web-01", "--root", root, "--dry-run");
    expect(dry.status, dry.out).toBe(0);
    expect(dry.out).toContain(`would remove ${unit}`);
    expect(existsSync(unit) && existsSync(token)).toBe(true);

    const real = edgetty("uninstall", "--server", "web-01", "--root", root);
    expect(real.status, real.out).toBe(0);
    expect(existsSync(unit) || existsSync(token) || existsSync(wants)).toBe(false);
  });

  it("--dry-run shows the unit and writes nothing, the token masked", () => {
    const dryRoot = join(dir, "dry");
    const { status, out } = edgetty("install", "--edge", "https://edge.example.com", "--server", "db-2", "--token-file", tokenFile, "--root", dryRoot, "--dry-run");
    expect(status, out).toBe(0);
    expect(out).toContain("ExecStart=");
    expect(out).toContain("[redacted]");
    expect(out).not.toContain(TOKEN);
    expect(existsSync(dryRoot)).toBe(false);
  });

  it("refuses bad server ids, bad edge URLs and readable token files", () => {
    expect(edgetty("install", "--edge", "https://e.example", "--server", "../etc", "--token-file", tokenFile, "--root", root).status).toBe(2);
    expect(edgetty("install", "--edge", "ftp://e.example", "--server", "ok", "--token-file", tokenFile, "--root", root).status).toBe(2);
    const loose = join(dir, "loose");
    writeFileSync(loose, TOKEN);
    chmodSync(loose, 0o644);
    const { status, out } = edgetty("install", "--edge", "https://e.example", "--server", "ok", "--token-file", loose, "--root", root);
    expect(status).toBe(2);
    expect(out).toContain("chmod 600");
    expect(() => readTokenFile(loose)).toThrow(UsageError);
    expect(readTokenFile(tokenFile)).toBe(TOKEN);
  });
});

describe("the unit's command line", () => {
  it("quotes words with spaces and escapes systemd's specifiers", () => {
    expect(systemdQuote("/usr/bin/node")).toBe("/usr/bin/node");
    expect(systemdQuote("/opt/my agent/a.mjs")).toBe('"/opt/my agent/a.mjs"');
    expect(systemdQuote("100%$HOME")).toBe('"100%%$$HOME"');
    expect(() => systemdQuote("a\nb")).toThrow();
    const unit = renderUnit({ edge: "https://e.example", server: "s1", program: { node: "/n", nodeArgs: [], script: "/x y/a.mjs", scriptArgs: ["agent"] } });
    expect(unit).toContain('ExecStart=/n "/x y/a.mjs" agent --edge https://e.example --server s1 ');
  });
});

describe("agent log lines", () => {
  it("are JSON objects with the token and bearer credentials masked", () => {
    const lines: string[] = [];
    const log = createAgentLogger({ format: "json", server: "s1", secrets: [TOKEN], write: (l) => lines.push(l) });
    log(`dialing with ${TOKEN} and Authorization: Bearer other-secret-value`);
    log("spawn failed for terminal 3: ENOENT");
    const [first, second] = lines.map((l) => JSON.parse(l) as Record<string, string>);
    expect(first).toMatchObject({ level: "info", component: "agent", server: "s1" });
    expect(first!.msg).toBe("dialing with [redacted] and Authorization: Bearer [redacted]");
    expect(second!.level).toBe("error");
    expect(lines.join("\n")).not.toContain(TOKEN);
    expect(redact("x", [])).toBe("x");
  });
});
