/**
 * Test harness: a real shell in a real PTY (node-pty), launched through planShellLaunch, its
 * output fed to an OscScanner and a CommandTracker as the agent does, with a private HOME.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import pty from "node-pty";
import { OscScanner } from "../../worker/agent/osc.ts";
import { CommandTracker, type CommandRecord } from "../../worker/agent/shell/command-tracker.ts";
import { createNonce, planShellLaunch, type ShellLaunchOptions, type ShellName } from "../../worker/agent/shell/launch.ts";
import { Waiters } from "../support/waiters.ts";

/** Longest a test waits for a shell to show something, in milliseconds. */
export const WAIT_TIMEOUT_MS = 10_000;

export interface ShellUnderTest {
  /** Everything the shell printed, as text. */
  output(): string;
  /** Every record change reported, in order. */
  events: CommandRecord[];
  tracker: CommandTracker;
  home: string;
  runtimeDir: string;
  /** Types a line and presses Enter. */
  type(line: string): void;
  /** Resolves once `check()` holds, re-checked after each output chunk; rejects after the timeout. */
  until(what: string, check: () => boolean, timeoutMs?: number): Promise<void>;
  /** Resolves once `n` records have finished. */
  finished(n: number): Promise<CommandRecord[]>;
  close(): Promise<void>;
}

export interface StartOptions extends Partial<ShellLaunchOptions> {
  /** Files to create under the private HOME, path → content. */
  homeFiles?: Record<string, string>;
  /** Extra environment for the shell; `<home>` in a value stands for the private HOME. */
  extraEnv?: Record<string, string>;
  /** Content of a startup script, written under HOME and passed as `startupScript`. */
  startupContent?: string;
}

/** Where a program is on PATH; throws saying what to install when it is missing. */
export function which(program: string): string {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(":")) {
    const path = join(dir, program);
    if (existsSync(path)) return path;
  }
  throw new Error(`${program} is not installed; these tests need it (Debian: apt-get install -y ${program})`);
}

/** Starts `shell` and waits for its first prompt mark (or, for sh, its first cwd report). */
export async function startShell(shell: ShellName, opts: StartOptions = {}): Promise<ShellUnderTest> {
  const home = mkdtempSync(join(tmpdir(), "edgetty-home-"));
  const runtimeDir = mkdtempSync(join(tmpdir(), "edgetty-run-"));
  for (const [path, content] of Object.entries(opts.homeFiles ?? {})) {
    mkdirSync(dirname(join(home, path)), { recursive: true });
    writeFileSync(join(home, path), content);
  }
  const startupScript = opts.startupContent === undefined ? opts.startupScript : join(home, "startup-script");
  if (opts.startupContent !== undefined) writeFileSync(join(home, "startup-script"), opts.startupContent);
  const nonce = createNonce();
  const baseEnv: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    TERM: "xterm-256color",
    LANG: "C.UTF-8",
    XDG_CONFIG_HOME: join(home, ".config"),
    XDG_DATA_HOME: join(home, ".local/share"),
    ...Object.fromEntries(Object.entries(opts.extraEnv ?? {}).map(([k, v]) => [k, v.replaceAll("<home>", home)])),
  };
  const { homeFiles: _h, extraEnv: _e, startupContent: _s, ...launchOpts } = opts;
  const launch = planShellLaunch({ shell, shellPath: which(shell), nonce, runtimeDir, env: baseEnv, ...launchOpts, startupScript });
  const events: CommandRecord[] = [];
  const tracker = new CommandTracker(nonce, (r) => events.push(r), { cwd: home });
  const scanner = new OscScanner((code, data) => tracker.feed(code, data));
  const decoder = new TextDecoder();
  let text = "";
  const waiters = new Waiters();
  const proc = pty.spawn(launch.file, launch.args, {
    name: "xterm-256color",
    cols: 120,
    rows: 30,
    cwd: home,
    env: { ...baseEnv, ...launch.env },
    encoding: null,
  } as pty.IPtyForkOptions);
  let exited = false;
  const exit = new Promise<void>((resolve) => proc.onExit(() => { exited = true; resolve(); }));
  proc.onData((d: string | Buffer) => {
    const bytes = typeof d === "string" ? new TextEncoder().encode(d) : d;
    scanner.push(bytes);
    text += decoder.decode(bytes, { stream: true });
    waiters.notify();
  });

  const until = (what: string, check: () => boolean, timeoutMs = WAIT_TIMEOUT_MS): Promise<void> =>
    waiters.until(check, what, timeoutMs, () => `; output so far:\n${JSON.stringify(text.slice(-3000))}`);

  const sut: ShellUnderTest = {
    output: () => text,
    events,
    tracker,
    home,
    runtimeDir,
    type: (line) => proc.write(line + "\r"),
    until,
    async finished(n) {
      await until(`${n} finished commands`, () => tracker.list().filter((r) => r.status === "done").length >= n);
      return tracker.list().filter((r) => r.status === "done");
    },
    async close() {
      if (!exited) proc.kill("SIGKILL");
      await exit;
      launch.cleanup();
      rmSync(home, { recursive: true, force: true });
      rmSync(runtimeDir, { recursive: true, force: true });
    },
  };
  const firstPrompt = shell === "sh" ? () => text.includes("\x1b]7;") : () => text.includes("\x1b]633;A");
  try {
    await until("the first prompt", firstPrompt);
  } catch (err) {
    await sut.close();
    throw err;
  }
  return sut;
}
