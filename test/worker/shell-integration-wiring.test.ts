import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { CreateSessionParams } from "../../shared/links/control.ts";
import type { CommandRecord } from "../../shared/history.ts";
import { prepareRuntimeDir, startShellIntegration } from "../../worker/agent/shell-integration.ts";
import type { SpawnPlan } from "../../worker/agent/spawn.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "edgetty-wiring-"));
  dirs.push(d);
  return d;
}

const PARAMS: CreateSessionParams = {
  terminal_id: 3, ephemeral: false, cwd_auto_create: false, welcome: true, debug: false, cols: 80, rows: 24, env: {},
};

function plan(): SpawnPlan {
  return {
    shell: "bash",
    shellPath: "/bin/bash",
    account: { name: "u", uid: 1000, gid: 1000, home: "/home/u", shell: "/bin/bash" },
    switchUser: false,
    setpriv: null,
    cwd: "/home/u",
    env: { PATH: "/usr/bin:/bin" },
  };
}

function target() {
  const t = { titles: [] as string[], ready: 0, records: [] as CommandRecord[] };
  return {
    t,
    target: {
      setTitle: (title: string) => t.titles.push(title),
      shellReady: () => t.ready++,
      record: (r: CommandRecord) => t.records.push(r),
    },
  };
}

describe("startShellIntegration", () => {
  it("launches bash with a generated rcfile and removes it on dispose", () => {
    const runtimeDir = tempDir();
    const shell = startShellIntegration({ plan: plan(), params: PARAMS, runtimeDir, log: () => {} });
    expect(shell.file).toBe("/bin/bash");
    expect(shell.args[0]).toBe("--rcfile");
    const rcfile = shell.args[1]!;
    expect(rcfile.startsWith(runtimeDir)).toBe(true);
    expect(existsSync(rcfile)).toBe(true);
    shell.dispose();
    expect(readdirSync(runtimeDir)).toEqual([]);
  });

  it("routes titles and prompt marks, and ignores forged command marks", () => {
    const shell = startShellIntegration({ plan: plan(), params: PARAMS, runtimeDir: tempDir(), log: () => {} });
    const { t, target: tg } = target();
    shell.attach(tg);
    shell.onOutput(Buffer.from("\x1b]0;first\x07text\x1b]2;second\x1b\\\x1b]633;A\x07"));
    shell.onOutput(Buffer.from("\x1b]633;E;rm -rf /;0123456789abcdef0123456789abcdef\x07\x1b]633;D;0\x07"));
    expect(t.titles).toEqual(["first", "second"]);
    expect(t.ready).toBe(1);
    expect(t.records).toEqual([]);
    shell.dispose();
  });

  it("falls back to a plain shell when the runtime folder is unusable", () => {
    const lines: string[] = [];
    const shell = startShellIntegration({ plan: plan(), params: PARAMS, runtimeDir: "/nonexistent/edgetty-run", log: (l) => lines.push(l) });
    expect([shell.file, shell.args]).toEqual(["/bin/bash", []]);
    expect(lines[0]).toMatch(/shell integration unavailable/);
    shell.dispose();
  });
});

describe("prepareRuntimeDir", () => {
  it("makes a traversable per-process folder and removes those of dead agents", () => {
    const data = tempDir();
    chmodSync(data, 0o711); // other users may pass: the folder is made under it
    const stale = join(data, "run", "999999999");
    const first = prepareRuntimeDir(data, () => {});
    expect(first).toBe(join(data, "run", String(process.pid)));
    expect(statSync(first).mode & 0o777).toBe(0o711);
    rmSync(first, { recursive: true });
    // A folder left by an agent that is gone.
    mkdirSync(stale, { recursive: true });
    prepareRuntimeDir(data, () => {});
    expect(existsSync(stale)).toBe(false);
  });

  it.runIf(process.getuid?.() === 0)("as root under a folder other users cannot pass, makes a fresh one in the temp folder", () => {
    const data = tempDir(); // 0700
    const dir = prepareRuntimeDir(data, () => {});
    try {
      expect(dir.startsWith(join(tmpdir(), "edgetty-run-"))).toBe(true);
      expect(statSync(dir).mode & 0o777).toBe(0o711);
      expect(statSync(dir).uid).toBe(0);
      expect(existsSync(join(data, "run"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
