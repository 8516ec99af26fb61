/**
 * Shell integration for one PTY session, wired end to end: the shell is launched through
 * planShellLaunch (prompt hooks that report each command with a per-session nonce, the working
 * directory, the `startup_script`, `welcome` and `debug` create options), and every output chunk
 * is scanned for OSC sequences on the output path:
 *
 *   OSC 0 / 2       window title      → session.setTitle
 *   OSC 633;A       prompt start      → session.shellReady (releases typeahead before the quiet-time fallback)
 *   OSC 633 E/D, 7  command, exit, cwd → CommandTracker → session.record (HISTORY frames to the TerminalDO)
 *
 * The generated init files live in the agent's runtime folder until the shell exits.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { CreateSessionParams } from "../../shared/links/control.ts";
import type { CommandRecord } from "../../shared/history.ts";
import { OscScanner } from "./osc.ts";
import { CommandTracker } from "./shell/command-tracker.ts";
import { createNonce, planShellLaunch, type ShellLaunch } from "./shell/launch.ts";
import type { SpawnPlan } from "./spawn.ts";
import { makeDirectoriesSync } from "./make-directories.ts";

/** What the integration drives in its PtySession. */
export interface IntegrationTarget {
  setTitle(title: string): void;
  shellReady(): void;
  record(record: CommandRecord): void;
}

export interface ShellIntegrationOptions {
  plan: SpawnPlan;
  params: CreateSessionParams;
  /** The agent's runtime folder (see prepareRuntimeDir). */
  runtimeDir: string;
  log(line: string): void;
}

export interface ShellIntegration {
  /** What to spawn. */
  file: string;
  args: string[];
  env: Record<string, string>;
  /** Every output chunk, in order (the output path: an indexOf per chunk when there is no ESC). */
  onOutput(chunk: Buffer): void;
  /** Acts on the shell's marks from now on (output seen before this only updates the tracker). */
  attach(target: IntegrationTarget): void;
  /** Removes the generated init files; call once the shell has exited. */
  dispose(): void;
}

/** The line a `welcome: true` session prints before its first prompt. */
export function welcomeText(params: CreateSessionParams, plan: SpawnPlan): string {
  return `Welcome to edgetty: terminal ${params.terminal_id} (${plan.shell}) on ${hostname()}`;
}

/** Plans the shell's launch with integration; falls back to a plain shell if that fails. */
export function startShellIntegration(opts: ShellIntegrationOptions): ShellIntegration {
  const { plan, params } = opts;
  const nonce = createNonce();
  let launch: ShellLaunch | null = null;
  try {
    launch = planShellLaunch({
      shell: plan.shell,
      shellPath: plan.shellPath,
      nonce,
      runtimeDir: opts.runtimeDir,
      env: plan.env,
      debug: params.debug,
      ...(params.startup_script ? { startupScript: params.startup_script } : {}),
      ...(params.welcome ? { welcome: welcomeText(params, plan) } : {}),
      ...(plan.switchUser ? { owner: { uid: plan.account.uid, gid: plan.account.gid } } : {}),
    });
  } catch (error) {
    opts.log(`terminal ${params.terminal_id}: shell integration unavailable, starting a plain shell: ${(error as Error).message}`);
  }

  let target: IntegrationTarget | null = null;
  const tracker = new CommandTracker(nonce, (record) => target?.record(record), { cwd: plan.cwd });
  const scanner = new OscScanner((code, data) => {
    if (code === "0" || code === "2") target?.setTitle(data);
    else if (code === "633" && (data === "A" || data.startsWith("A;"))) target?.shellReady();
    else tracker.feed(code, data);
  });
  let disposed = false;

  return {
    file: launch?.file ?? plan.shellPath,
    args: launch?.args ?? [],
    env: launch ? { ...plan.env, ...launch.env } : plan.env,
    onOutput(chunk) {
      try {
        scanner.push(chunk);
      } catch (error) {
        // A handler failed; the scanner's state is settled, so the next chunk scans normally.
        opts.log(`terminal ${params.terminal_id}: OSC handling failed: ${(error as Error).message}`);
      }
    },
    attach(t) {
      target = t;
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      target = null;
      launch?.cleanup();
    },
  };
}

/**
 * A private runtime folder for this agent process under `dataDir` (`run/<pid>`), with the
 * leftovers of agents that are no longer running removed. Mode 0711: shells started as another
 * user reach their own (chowned, randomly named) folder inside without being able to list it.
 * That needs every folder above it to let other users pass: when the agent runs as root (the only
 * case where it starts shells as other users) under a data folder that does not (`npm start`'s
 * `.edgetty/` is 0700), the folder is a fresh one in the temp folder instead (random name, made by
 * this process, so no other user can have prepared it). Never throws: when the folder cannot be
 * made, shells start without integration (and say so).
 */
export function prepareRuntimeDir(dataDir: string, log: (line: string) => void): string {
  if (process.getuid?.() === 0 && !passableByOthers(dataDir)) {
    try {
      const dir = mkdtempSync(join(tmpdir(), `edgetty-run-${process.pid}-`));
      chmodSync(dir, 0o711);
      return dir;
    } catch (error) {
      log(`cannot prepare a runtime folder in ${tmpdir()}: ${(error as Error).message}`);
    }
  }
  const root = join(dataDir, "run");
  const dir = join(root, String(process.pid));
  try {
    makeDirectoriesSync(root, 0o711);
    chmodSync(root, 0o711);
    for (const name of readdirSync(root)) {
      const pid = Number(name);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !isAlive(pid)) {
        rmSync(join(root, name), { recursive: true, force: true });
      }
    }
    if (!existsSync(dir)) mkdirSync(dir, { mode: 0o711 });
    chmodSync(dir, 0o711);
  } catch (error) {
    log(`cannot prepare the runtime folder ${dir}: ${(error as Error).message}`);
  }
  return dir;
}

/** True when other users may pass through every existing folder from `/` down to `dir` (o+x). */
function passableByOthers(dir: string): boolean {
  for (let d = resolve(dir); ; d = dirname(d)) {
    const s = statSync(d, { throwIfNoEntry: false });
    if (s && (s.mode & 0o001) === 0) return false;
    if (d === dirname(d)) return true;
  }
}

/** Removes this agent's runtime folder (the agent is stopping). */
export function removeRuntimeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
