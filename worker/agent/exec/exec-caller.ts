/**
 * Who calls the execute API and where their commands run: the caller ({@link ExecCaller}: the
 * scope its processes belong to, its `X-Session-Id` and asserted user), the account it runs as in
 * multi-user mode ({@link RunAs}, os-users.ts), and {@link placeCommand}, which resolves a call's
 * `cwd` (relative to the session's working directory or home, `~` expanded, guarded for another
 * account) and environment (the call's `env` over the agent's, or over the account's login
 * environment). Failures are {@link ExecError} values carrying the HTTP answer (exec-manager.ts).
 */
import { stat } from "node:fs/promises";
import { homedir } from "node:os";
import { resolve as resolvePath } from "node:path";
import { OtCode, otError } from "../../../shared/open-terminal.ts";
import type { ExecSpec, HttpReply } from "../../../shared/open-terminal.ts";
import type { Launcher } from "../launch.ts";

/** Who calls: the scope processes belong to, and the caller's `X-Session-Id` (for its cwd). */
export interface ExecCaller {
  scope: string;
  session: string;
  /** The caller's `X-User-Id` (multi-user mode picks the OS account by it); absent or "" without one. */
  user?: string;
}

/** Another account a caller's commands run as (multi-user mode, worker/agent/os-users.ts). */
export interface RunAs {
  /** The account's home: the default cwd, and `~`. */
  home: string;
  /** The command's environment: `extra` (the call's `env`) over the account's; throws an ExecError to refuse it. */
  env(extra: Record<string, string> | null): Record<string, string>;
  /** Throws an ExecError for a cwd the account may not be sent to. */
  guard(cwd: string): void;
  /** Starts the command as the account. */
  launch: Launcher;
}

/** A failure with the HTTP answer it stands for. */
export class ExecError extends Error {
  override name = "ExecError";
  constructor(readonly reply: HttpReply) {
    super(typeof (reply.body as { detail?: unknown }).detail === "string" ? (reply.body as { detail: string }).detail : "exec error");
  }
}

/** The environment commands inherit by default: this process's, without EDGETTY_* variables. */
export function defaultEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("EDGETTY_")));
}

/** `env` without its unset entries, as a spawn takes it. */
export function definedEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined) out[key] = value;
  return out;
}

/** Where and how one command runs. */
export interface Placement {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Starts it as another account (multi-user mode); absent: as the agent. */
  launch?: Launcher;
}

/** What {@link placeCommand} needs from its ExecManager (see ExecManagerOptions). */
export interface PlacementOptions {
  defaultCwd: string;
  baseEnv: NodeJS.ProcessEnv;
  sessionCwd: (scope: string, session: string) => string | undefined;
  runAs: ((caller: ExecCaller) => Promise<RunAs | null>) | undefined;
}

/**
 * Resolves the cwd and environment of `spec` for `caller`: `cwd` relative to the session's working
 * directory or home, `env` over the agent's (or, in multi-user mode, over the caller's account's
 * login environment, started as it). Throws an ExecError (400 CWD_NOT_FOUND, or the account's refusal).
 */
export async function placeCommand(spec: ExecSpec, caller: ExecCaller, opts: PlacementOptions): Promise<Placement> {
  const runAs = caller.user && opts.runAs ? await opts.runAs(caller) : null;
  const home = runAs?.home ?? homedir();
  const base = (caller.session && opts.sessionCwd(caller.scope, caller.session)) || (runAs ? home : opts.defaultCwd);
  const cwd = await resolveCwd(spec.cwd, base, home, runAs?.guard);
  if (runAs) {
    return { cwd, env: runAs.env(spec.env), launch: runAs.launch };
  }
  return { cwd, env: spec.env ? { ...opts.baseEnv, ...spec.env } : opts.baseEnv };
}

async function resolveCwd(cwd: string | null, base: string, home: string, guard?: (path: string) => void): Promise<string> {
  if (cwd === null || cwd === "") return base;
  const expanded = cwd === "~" ? home : cwd.startsWith("~/") ? resolvePath(home, cwd.slice(2)) : cwd;
  const full = resolvePath(base, expanded);
  guard?.(full);
  const info = await stat(full).catch(() => null);
  if (!info?.isDirectory()) throw new ExecError(otError(400, OtCode.CWD_NOT_FOUND, `Working directory not found: ${cwd}`));
  return full;
}
