import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { ShellName } from "../../worker/agent/shell/launch.ts";
import { startShell, type ShellUnderTest, type StartOptions } from "./shell-harness.ts";

let running: ShellUnderTest[] = [];
async function start(shell: ShellName, opts?: StartOptions): Promise<ShellUnderTest> {
  const s = await startShell(shell, opts);
  running.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(running.map((s) => s.close()));
  running = [];
});

/** What each shell's user files look like when they install their own prompt hook. */
const USER_HOOKS: Record<"bash" | "zsh" | "fish", { files: Record<string, string>; marker: (status: number) => string }> = {
  bash: {
    files: { ".bashrc": `PS1='userprompt> '\nPROMPT_COMMAND='echo "[user-hook:$?]"'\n` },
    marker: (s) => `[user-hook:${s}]`,
  },
  zsh: {
    files: { ".zshrc": `PS1='userprompt> '\nprecmd() { echo "[user-hook:$?]" }\n` },
    marker: (s) => `[user-hook:${s}]`,
  },
  fish: {
    files: {
      ".config/fish/config.fish":
        "function fish_prompt; echo -n 'userprompt> '; end\n" +
        "function user_hook --on-event fish_postexec; echo \"[user-hook:$status]\"; end\n",
    },
    marker: (s) => `[user-hook:${s}]`,
  },
};

describe.each(["bash", "zsh", "fish"] as const)("%s with edgetty's integration", (shell) => {
  it("records `false` with exit code 1 and `true` with exit code 0", async () => {
    const s = await start(shell);
    s.type("false");
    s.type("true");
    const [a, b] = await s.finished(2);
    expect(a).toMatchObject({ id: 1, command: "false", exit_code: 1, status: "done", cwd: s.home });
    expect(b).toMatchObject({ id: 2, command: "true", exit_code: 0, status: "done" });
    expect(Date.parse(a!.started_at)).toBeLessThanOrEqual(Date.parse(a!.finished_at!));
    expect(a!.duration_ms).toBeGreaterThanOrEqual(0);
    // Each record was first reported running, then done.
    expect(s.events.map((r) => `${r.id}:${r.status}`)).toEqual(["1:running", "1:done", "2:running", "2:done"]);
  });

  it("reports `cd /tmp` as the new working directory", async () => {
    const s = await start(shell);
    s.type("cd /tmp");
    s.type("true");
    const [cd, next] = await s.finished(2);
    expect(cd!.cwd).toBe(s.home);
    expect(next!.cwd).toBe("/tmp");
    expect(s.tracker.cwd).toBe("/tmp");
  });

  it("reports a working directory with a space and non-ASCII letters exactly", async () => {
    const s = await start(shell);
    s.type(`mkdir -p 'dir with space/é' && cd 'dir with space/é'`);
    await s.finished(1);
    await s.until("the new cwd", () => s.tracker.cwd === join(s.home, "dir with space/é"));
  });

  it("keeps the command line as typed, with `;`, `\\` and quotes", async () => {
    const s = await start(shell);
    const line = `echo 'semi;colon' "back\\\\slash" done`;
    s.type(line);
    const [r] = await s.finished(1);
    expect(r!.command).toBe(line);
  });

  it("does not record markers that a program prints", async () => {
    const s = await start(shell);
    const fake = String.raw`printf '\033]633;E;rm -rf /\007\033]633;E;rm -rf /;0123456789abcdef0123456789abcdef\007\033]633;D;0\007'`;
    s.type(fake);
    s.type("false");
    const done = await s.finished(2);
    expect(done.map((r) => [r.command, r.exit_code])).toEqual([[fake, 0], ["false", 1]]);
    expect(s.events.some((r) => r.command.includes("rm -rf /") && r.command !== fake)).toBe(false);
  });

  it("keeps the user's prompt and prompt hook, which still sees the command's status", async () => {
    const hooks = USER_HOOKS[shell];
    const s = await start(shell, { homeFiles: hooks.files });
    s.type("false");
    await s.finished(1);
    await s.until("the user's hook output", () => s.output().includes(hooks.marker(1)));
    await s.until("the user's prompt", () => s.output().split(hooks.marker(1))[1]!.includes("userprompt> "));
  });

  it("sources the startup script after the hooks, then prints the welcome text and debug lines", async () => {
    const assign = shell === "fish" ? "set -g STARTUP_VAR from-startup" : "STARTUP_VAR=from-startup";
    const s = await start(shell, { startupContent: `echo startup-ran\n${assign}\n`, welcome: "Welcome to edgetty!", debug: true });
    const out = s.output();
    expect(out).toContain(`[edgetty] ${shell}`);
    expect(out.indexOf("[edgetty] command hooks")).toBeLessThan(out.indexOf("startup-ran"));
    expect(out.indexOf("startup-ran")).toBeLessThan(out.indexOf("Welcome to edgetty!"));
    // The script ran in the shell itself: its variables are there, and the hooks still work.
    s.type("echo var=$STARTUP_VAR");
    await s.finished(1);
    expect(s.output()).toContain("var=from-startup");
  });

  it("prints nothing of its own without welcome text or debug", async () => {
    const s = await start(shell);
    expect(s.output()).not.toContain("[edgetty]");
  });

  it("removes its generated files on cleanup", async () => {
    const s = await start(shell);
    expect(readdirSync(s.runtimeDir)).toHaveLength(1);
    await s.close();
    running = running.filter((x) => x !== s);
    expect(existsSync(s.runtimeDir)).toBe(false);
  });
});

describe("bash specifics", () => {
  it("runs every entry of an array PROMPT_COMMAND, each with the command's status", async () => {
    const s = await start("bash", { homeFiles: { ".bashrc": `PROMPT_COMMAND=('echo "[a:$?]"' 'echo "[b:$?]"')\n` } });
    s.type("false");
    await s.finished(1);
    await s.until("both prompt commands", () => s.output().includes("[a:1]") && s.output().includes("[b:1]"));
  });

  it("keeps the user's DEBUG trap", async () => {
    const s = await start("bash", { homeFiles: { ".bashrc": "trap 'user_traps=$((user_traps+1))' DEBUG\n" } });
    s.type("true");
    s.type(`echo "traps=$user_traps"`);
    await s.finished(2);
    const n = Number(/traps=(\d+)/.exec(s.output())?.[1]);
    expect(n).toBeGreaterThan(0);
  });

  it("keeps the user's PS0 and works under set -u", async () => {
    const s = await start("bash", { homeFiles: { ".bashrc": "set -u\nPS0='[user-ps0]\\n'\n" } });
    s.type("false");
    s.type("true");
    const [a, b] = await s.finished(2);
    expect([a!.exit_code, b!.exit_code]).toEqual([1, 0]);
    expect(s.output()).toContain("[user-ps0]");
    expect(s.output()).not.toContain("unbound variable");
  });

  it("records a command that history leaves out (ignorespace) by the command bash runs", async () => {
    const s = await start("bash", { homeFiles: { ".bashrc": "HISTCONTROL=ignoreboth\n" } });
    s.type("echo first");
    s.type(" echo hidden");
    const [, hidden] = await s.finished(2);
    expect(hidden!.command).toBe("echo hidden");
  });

  it("records a multi-line command as one record", async () => {
    const s = await start("bash");
    s.type("for i in 1 2; do\necho n$i\ndone");
    const [r] = await s.finished(1);
    expect(r!.command).toMatch(/^for i in 1 2; do\s+echo n\$i\s*;?\s*done$/);
  });

  it("reads the login files instead of ~/.bashrc for a login shell", async () => {
    const s = await start("bash", { login: true, homeFiles: { ".profile": "echo read-profile\n", ".bashrc": "echo read-bashrc\n" } });
    expect(s.output()).toContain("read-profile");
    expect(s.output()).not.toContain("read-bashrc");
  });
});

describe("zsh specifics", () => {
  it("reads the user's files from the ZDOTDIR it was started with and hands it back", async () => {
    const s = await start("zsh", {
      homeFiles: { "zdot/.zshenv": "echo read-zdot-zshenv\n", "zdot/.zshrc": "echo read-zdot-zshrc\n", ".zshrc": "echo wrong-zshrc\n" },
      extraEnv: { ZDOTDIR: "<home>/zdot" },
    });
    expect(s.output()).toContain("read-zdot-zshenv");
    expect(s.output()).toContain("read-zdot-zshrc");
    expect(s.output()).not.toContain("wrong-zshrc");
    s.type('echo "zd=$ZDOTDIR"');
    await s.finished(1);
    expect(s.output()).toContain(`zd=${join(s.home, "zdot")}`);
  });

  it("follows a ZDOTDIR that the user's ~/.zshenv sets", async () => {
    const s = await start("zsh", {
      homeFiles: {
        ".zshenv": 'ZDOTDIR="$HOME/zdot"\necho read-home-zshenv\n',
        "zdot/.zshrc": "echo read-zdot-zshrc\n",
        ".zshrc": "echo wrong-zshrc\n",
      },
    });
    expect(s.output()).toContain("read-home-zshenv");
    expect(s.output()).toContain("read-zdot-zshrc");
    expect(s.output()).not.toContain("wrong-zshrc");
    s.type('echo "zd=$ZDOTDIR"');
    await s.finished(1);
    expect(s.output()).toContain(`zd=${join(s.home, "zdot")}`);
  });

  it("leaves ZDOTDIR unset when the user had none", async () => {
    const s = await start("zsh");
    s.type('echo "zd=${ZDOTDIR-unset}"');
    await s.finished(1);
    expect(s.output()).toContain("zd=unset");
  });

  it("runs the user's .zprofile and .zlogin in a login shell", async () => {
    const s = await start("zsh", { login: true, homeFiles: { ".zprofile": "echo read-zprofile\n", ".zlogin": "echo read-zlogin\n" } });
    await s.until("the login files", () => s.output().includes("read-zlogin"));
    expect(s.output()).toContain("read-zprofile");
    s.type("true");
    await s.finished(1);
  });
});

describe("sh (best effort)", () => {
  it("reports the working directory but records no commands", async () => {
    const s = await start("sh");
    s.type("cd /tmp");
    await s.until("the new cwd", () => s.tracker.cwd === "/tmp");
    expect(s.events).toEqual([]);
  });

  it("reads the user's $ENV file and hands $ENV back", async () => {
    const s = await start("sh", { homeFiles: { ".shrc": "echo read-shrc\n" }, extraEnv: { ENV: "$HOME/.shrc" } });
    expect(s.output()).toContain("read-shrc");
    s.type("echo \"env=$ENV\"");
    await s.until("the echo", () => s.output().includes("env=$HOME/.shrc"));
  });
});

describe("planShellLaunch", () => {
  it("refuses a nonce that could not be embedded safely", async () => {
    const { planShellLaunch } = await import("../../worker/agent/shell/launch.ts");
    expect(() => planShellLaunch({ shell: "bash", shellPath: "/bin/bash", nonce: "x'; rm -rf /", runtimeDir: "/nonexistent" })).toThrow(/nonce/);
  });
});
