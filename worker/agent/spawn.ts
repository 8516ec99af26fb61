/**
 * Turns validated create parameters into a concrete spawn plan on this host: which shell binary,
 * which user, which working directory, which environment. Every refusal is an ApiError with the
 * seed's code, so the edge can answer the caller precisely.
 */
import { spawnSync } from "node:child_process";
import { accessSync, constants, readFileSync, statSync, chownSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { delimiter, join, resolve } from "node:path";
import type { CreateSessionParams } from "../../shared/links/control.ts";
import { ApiError } from "../../shared/errors.ts";
import { SHELLS, isUserName, type ShellName } from "../../shared/validation.ts";
import { loginEnv } from "./kinds/user.ts";
import { launchCommand, type LaunchCommand } from "./launch.ts";
import { makeDirectoriesSync } from "./make-directories.ts";

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
  /** The comment (GECOS) field, when looked up in the user database. */
  gecos?: string;
}

export interface SpawnPlan {
  shell: ShellName;
  shellPath: string;
  account: Account;
  /** Set when the PTY must run as another user than the agent. */
  switchUser: boolean;
  /** setpriv's path, which performs that switch (groups included). */
  setpriv: string | null;
  cwd: string;
  env: Record<string, string>;
}

/** Environment variables the agent never passes on to a shell. */
const STRIPPED_ENV = [/^EDGETTY_/, /^npm_/, /^NODE_OPTIONS$/, /^INIT_CWD$/];
/**
 * Variables a caller may not set for a shell of another user: the dynamic loader (and glibc)
 * acts on them in the programs that still run as root before the switch (the launch wrapper and
 * setpriv), so they would run the caller's code as root (glibc's unsecure set, less TMPDIR/TZDIR).
 */
const ROOT_LOADER_ENV = /^(LD_\w*|GCONV_PATH|GETCONF_DIR|HOSTALIASES|LOCALDOMAIN|LOCPATH|MALLOC_\w*|NIS_PATH|NLSPATH|RESOLV_HOST_CONF|RES_OPTIONS|GLIBC_TUNABLES)$/;
/** Longest an NSS look-up (`getent passwd`) may take, in milliseconds. */
export const ACCOUNT_LOOKUP_TIMEOUT_MS = 5_000;
/** Largest `getent passwd NAME` answer read, in bytes (one passwd line). */
const ACCOUNT_LOOKUP_MAX_BYTES = 64 << 10; // 64 KiB

export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/** Finds an executable on PATH. */
export function which(name: string, path = process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin"): string | null {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      /* not here */
    }
  }
  return null;
}

function parsePasswdLine(name: string, text: string): Account | null {
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f.length >= 7 && /^\d+$/.test(f[2]!) && /^\d+$/.test(f[3]!)) {
      return { name, uid: Number(f[2]), gid: Number(f[3]), gecos: f[4] ?? "", home: f[5] || "/", shell: f[6] || "/bin/sh" };
    }
  }
  return null;
}

/**
 * Looks a user up through NSS (`getent passwd`, so LDAP/sssd accounts count), falling back to
 * /etc/passwd where getent is missing. Null when there is no such user or `name` is not a valid
 * user name (it is never passed on unchecked).
 */
export function lookupAccount(name: string): Account | null {
  if (!isUserName(name)) return null;
  const getent = which("getent", "/usr/bin:/bin:/usr/sbin:/sbin");
  if (getent) {
    const cmd = launchCommand(getent, ["passwd", name], { PATH: "/usr/bin:/bin" }, null);
    const result = spawnSync(cmd.file, cmd.args, {
      env: cmd.env,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      timeout: ACCOUNT_LOOKUP_TIMEOUT_MS,
      maxBuffer: ACCOUNT_LOOKUP_MAX_BYTES,
    });
    // getent exits 2 for "no such key"; anything else unexpected falls back to the file.
    if (result.status === 2) return null;
    if (result.status === 0 && typeof result.stdout === "string") return parsePasswdLine(name, result.stdout);
  }
  try {
    return parsePasswdLine(name, readFileSync("/etc/passwd", "utf8"));
  } catch {
    return null;
  }
}

function currentAccount(): Account {
  const info = userInfo();
  return { name: info.username, uid: info.uid, gid: info.gid, home: process.env.HOME || info.homedir || homedir(), shell: info.shell ?? "/bin/sh" };
}

function resolveShell(requested: ShellName | undefined, account: Account): { shell: ShellName; shellPath: string } {
  if (requested) {
    const path = which(requested);
    if (!path) throw new ApiError(400, "SHELL_NOT_AVAILABLE", `Shell "${requested}" is not installed on this host`);
    return { shell: requested, shellPath: path };
  }
  const base = account.shell.split("/").pop() ?? "";
  if ((SHELLS as readonly string[]).includes(base)) {
    try {
      accessSync(account.shell, constants.X_OK);
      return { shell: base as ShellName, shellPath: account.shell };
    } catch {
      /* fall through to the first available */
    }
  }
  for (const shell of SHELLS) {
    const path = which(shell);
    if (path) return { shell, shellPath: path };
  }
  throw new ApiError(500, "SPAWN_FAILED", "No supported shell (bash, zsh, fish, sh) is installed on this host");
}

/** True when `account` may enter `dir` (owner/group/other execute bits; root always may). */
function canEnter(dir: string, account: Account): boolean {
  const st = statSync(dir);
  if (!st.isDirectory()) return false;
  if (account.uid === 0) return true;
  if (st.uid === account.uid) return (st.mode & 0o100) !== 0;
  if (st.gid === account.gid) return (st.mode & 0o010) !== 0;
  return (st.mode & 0o001) !== 0;
}

/**
 * Expands a leading `~` as a shell does: `~` and `~/x` are the shell's account's home ($HOME for
 * the agent's own account), `~name` and `~name/x` are name's home in the user database (an NSS
 * look-up, as getpwnam). Refuses an unknown name with 400 INVALID_CWD.
 */
export function expandHome(path: string, account: Account): string {
  if (!path.startsWith("~")) return path;
  const slash = path.indexOf("/");
  const name = slash === -1 ? path.slice(1) : path.slice(1, slash);
  const rest = slash === -1 ? "" : path.slice(slash);
  if (name === "") return account.home + rest;
  const owner = lookupAccount(name);
  if (!owner) throw new ApiError(400, "INVALID_CWD", `Working directory ${path.slice(0, 64)}: no user "${name.slice(0, 32)}" on this host`);
  return owner.home + rest;
}

function resolveCwd(requested: string | undefined, autoCreate: boolean, account: Account, switchUser: boolean): string {
  if (!requested) {
    // Some accounts' homes don't exist (nobody's is /nonexistent): start at / then.
    try {
      if (statSync(account.home).isDirectory() && canEnter(account.home, account)) return account.home;
    } catch {
      /* fall through */
    }
    return "/";
  }
  const cwd = resolve(expandHome(requested, account));
  let exists = false;
  try {
    exists = statSync(cwd).isDirectory();
    if (!exists) throw new ApiError(400, "INVALID_CWD", `Working directory ${cwd} is not a directory`);
  } catch (error) {
    if (error instanceof ApiError) throw error;
  }
  if (!exists) {
    if (!autoCreate) throw new ApiError(400, "CWD_NOT_FOUND", `Working directory ${cwd} does not exist (set cwd_auto_create to create it)`);
    try {
      makeDirectoriesSync(cwd, 0o755);
      if (switchUser) chownSync(cwd, account.uid, account.gid);
    } catch {
      throw new ApiError(403, "CWD_PERMISSION_DENIED", "Cannot create requested working directory");
    }
  }
  try {
    if (!canEnter(cwd, account)) throw new Error("no access");
  } catch {
    throw new ApiError(403, "CWD_PERMISSION_DENIED", `Working directory ${cwd} cannot be used by ${account.name}`);
  }
  return cwd;
}

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !STRIPPED_ENV.some((re) => re.test(key))) env[key] = value;
  }
  return env;
}

export function planSpawn(params: CreateSessionParams): SpawnPlan {
  const me = currentAccount();
  let account = me;
  let switchUser = false;
  if (params.user && params.user !== me.name) {
    const target = lookupAccount(params.user);
    if (!target) throw new ApiError(400, "INVALID_USER", `No user "${params.user}" on this host`);
    if (!isRoot()) {
      throw new ApiError(403, "USER_SWITCH_FORBIDDEN", `The agent runs as ${me.name}, not root, so it cannot start a shell as ${params.user}`);
    }
    account = target;
    switchUser = true;
  }
  const { shell, shellPath } = resolveShell(params.shell as ShellName | undefined, account);
  const cwd = resolveCwd(params.cwd, params.cwd_auto_create, account, switchUser);
  // Another user gets a login's environment, never the agent's (kinds/user.ts).
  const env = switchUser ? loginEnv(account, shellPath) : baseEnv();
  Object.assign(env, {
    TERM: "xterm-256color",
    COLORTERM: "truecolor",
    HOME: account.home,
    USER: account.name,
    LOGNAME: account.name,
    SHELL: shellPath,
    PWD: cwd,
    EDGETTY_TERMINAL_ID: String(params.terminal_id),
  });
  if (params.ephemeral) delete env.DISPLAY;
  if (params.display && !params.ephemeral) env.DISPLAY = params.display;
  if (switchUser) {
    const refused = rootLoaderVariable(params.env);
    if (refused) {
      throw new ApiError(400, "INVALID_PARAMETERS", `env ${refused} cannot be set for a shell of another user (it would act on the programs that switch user, as root)`);
    }
  }
  Object.assign(env, params.env);
  const setpriv = switchUser ? which("setpriv", "/usr/bin:/bin:/usr/sbin:/sbin") : null;
  if (switchUser && !setpriv) throw new ApiError(500, "SPAWN_FAILED", "setpriv (util-linux) is needed to start shells as another user");
  return { shell, shellPath, account, switchUser, setpriv, cwd, env };
}

/**
 * The command that starts `file args` as the plan's account, through the descriptor-closing
 * launcher (launch.ts) with `tag` in its environment. node-pty's own uid/gid switch keeps the
 * agent's supplementary groups (root's among them), so the switch goes through setpriv, which sets
 * the target user's groups too, then execs the program under the same pid. Every child that runs
 * as a plan's account (PTY shells today; ssh and other session kinds later) starts here.
 */
export function launchAs(plan: SpawnPlan, file: string, args: readonly string[], env: Record<string, string>, tag: string): LaunchCommand {
  if (!plan.switchUser) return launchCommand(file, args, env, tag);
  if (!plan.setpriv) throw new Error("setpriv (util-linux) is needed to start shells as another user");
  return launchAsAccount(plan.account, plan.setpriv, file, args, env, tag);
}

/**
 * `file args` started as `account` (uid, gid and the account's own groups) through `setpriv` at
 * `setpriv`, via the descriptor-closing launcher. `env` is seen by the launcher and setpriv, which
 * still run as root: it must hold nothing the dynamic loader acts on (see ROOT_LOADER_ENV).
 */
export function launchAsAccount(account: Account, setpriv: string, file: string, args: readonly string[], env: Record<string, string>, tag: string | null): LaunchCommand {
  return launchCommand(setpriv, [`--reuid=${account.uid}`, `--regid=${account.gid}`, "--init-groups", "--", file, ...args], env, tag);
}

/** The first variable of `env` a caller may not set for a process of another user (ROOT_LOADER_ENV), or undefined. */
export function rootLoaderVariable(env: Record<string, unknown> | null | undefined): string | undefined {
  return Object.keys(env ?? {}).find((key) => ROOT_LOADER_ENV.test(key));
}
