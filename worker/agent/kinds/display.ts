/**
 * X11 displays for local sessions: waiting until a display answers (`wait_until_display`), and
 * starting a desktop environment on it (`desktop` / `desktop_env`).
 *
 * A display `:N` counts as up when any of these accepts a connection: the Hoody Display port the
 * seed names (TCP 127.0.0.1:4000+N), the X server's own socket (/tmp/.X11-unix/XN), or its TCP
 * port (6000+N). Xvfb and Xorg create the socket; the seed's display service listens on 4000+N.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createConnection } from "node:net";
import type { DesktopEnv } from "../../../shared/links/control.ts";
import { ApiError } from "../../../shared/errors.ts";
import { launchAs, which, type SpawnPlan } from "../spawn.ts";

/** Time between two probes of a display that is not up yet, in milliseconds. */
export const DISPLAY_PROBE_INTERVAL_MS = 100;
/** Longest one probe connection may take, in milliseconds. */
export const DISPLAY_PROBE_TIMEOUT_MS = 1_000;
/** The seed's display readiness port is this plus the display number. */
export const HOODY_DISPLAY_PORT_BASE = 4000;
const X11_TCP_PORT_BASE = 6000;
const X11_SOCKET_DIR = "/tmp/.X11-unix";
/** Grace between SIGTERM and SIGKILL for a desktop when its session ends, in milliseconds. */
export const DESKTOP_KILL_GRACE_MS = 3_000;

/** ":5" or ":5.0" → 5. */
export function displayNumber(display: string): number {
  const m = /^:(\d+)/.exec(display);
  if (!m) throw new ApiError(400, "INVALID_PARAMETERS", "display must be a display number like 1 or :1");
  return Number(m[1]);
}

/** Where display `n` may answer. */
export function displayEndpoints(n: number): Array<{ path: string } | { host: string; port: number }> {
  return [
    { path: `${X11_SOCKET_DIR}/X${n}` },
    ...(HOODY_DISPLAY_PORT_BASE + n <= 65_535 ? [{ host: "127.0.0.1", port: HOODY_DISPLAY_PORT_BASE + n }] : []),
    ...(X11_TCP_PORT_BASE + n <= 65_535 ? [{ host: "127.0.0.1", port: X11_TCP_PORT_BASE + n }] : []),
  ];
}

function probe(endpoint: { path: string } | { host: string; port: number }): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = "path" in endpoint ? createConnection({ path: endpoint.path }) : createConnection({ host: endpoint.host, port: endpoint.port });
    const done = (up: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(up);
    };
    const timer = setTimeout(() => done(false), DISPLAY_PROBE_TIMEOUT_MS);
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** True when display `:n` accepts a connection at any of its endpoints now. */
export async function displayAnswers(n: number): Promise<boolean> {
  const results = await Promise.all(displayEndpoints(n).map(probe));
  return results.some(Boolean);
}

/**
 * Resolves once `display` answers; after `timeoutS` seconds throws 504 DISPLAY_NOT_READY.
 * A timeout of 0 checks once.
 */
export async function waitForDisplay(display: string, timeoutS: number): Promise<void> {
  const n = displayNumber(display);
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    if (await displayAnswers(n)) return;
    if (Date.now() >= deadline) {
      throw new ApiError(
        504,
        "DISPLAY_NOT_READY",
        `Display ${display} did not answer within ${timeoutS} s (tried ${X11_SOCKET_DIR}/X${n}, TCP ${HOODY_DISPLAY_PORT_BASE + n} and ${X11_TCP_PORT_BASE + n})`,
      );
    }
    await new Promise((r) => setTimeout(r, Math.min(DISPLAY_PROBE_INTERVAL_MS, Math.max(0, deadline - Date.now()))));
  }
}

/** The program that starts each desktop environment. */
export const DESKTOP_COMMANDS: Record<DesktopEnv, string> = { xfce: "startxfce4", mate: "mate-session" };

/** A desktop started for a session; stop() ends its whole process group. */
export interface Desktop {
  pid: number;
  stop(): void;
}

/** Refuses (400 DESKTOP_NOT_AVAILABLE) when the desktop's program is not installed. */
export function desktopProgram(env: DesktopEnv): string {
  const program = which(DESKTOP_COMMANDS[env]);
  if (!program) {
    throw new ApiError(400, "DESKTOP_NOT_AVAILABLE", `desktop_env "${env}" needs ${DESKTOP_COMMANDS[env]}, which is not installed on this host`);
  }
  return program;
}

/**
 * Starts `env` on the plan's display as the plan's account, in its own process group, with no
 * stdio of the agent's and the terminal's process `tag`. The caller stops it when the session ends.
 */
export function startDesktop(env: DesktopEnv, plan: SpawnPlan, tag: string, log: (line: string) => void): Desktop {
  const program = desktopProgram(env);
  // Through the launcher with the terminal's tag: the terminal's clean-up reaches the desktop too.
  const launch = launchAs(plan, program, [], plan.env, tag);
  const child: ChildProcess = spawn(launch.file, launch.args, { cwd: plan.cwd, env: launch.env, detached: true, stdio: "ignore" });
  child.on("error", (error) => log(`desktop ${env} failed to start: ${error.message}`));
  child.unref();
  const pid = child.pid ?? 0;
  return {
    pid,
    stop() {
      if (!pid || child.exitCode !== null) return;
      const kill = (sig: NodeJS.Signals) => {
        try {
          process.kill(-pid, sig);
        } catch {
          /* gone */
        }
      };
      kill("SIGTERM");
      setTimeout(() => kill("SIGKILL"), DESKTOP_KILL_GRACE_MS).unref();
    },
  };
}
