/**
 * Turns validated create parameters into a concrete spawn plan on this host: which shell binary,
 * which user, which working directory, which environment. Every refusal is an ApiError with the
 * seed's code, so the edge can answer the caller precisely.
 */
import { accessSync, constants, mkdirSync, readFileSync, statSync, chownSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { delimiter, join, resolve } from "node:path";
import type { CreateSessionParams } from "../../shared/agent-protocol.ts";
import { ApiError } from "../../shared/errors.ts";
import { SHELLS, type ShellName } from "../../shared/validation.ts";

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
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

/** Looks a user up in /etc/passwd (no shelling out). */
export function lookupAccount(name: string): Account | null {
  let passwd: string;
  try {
    passwd = readFileSync("/etc/passwd", "utf8");
  } catch {
    return null;
  }
  for (const line of passwd.split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f.length >= 7) {
      return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5] || "/", shell: f[6] || "/bin/sh" };
    }
  }
  return null;
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
  const cwd = resolve(requested.startsWith("~") ? account.home + requested.slice(1) : requested);
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
      mkdirSync(cwd, { recursive: true, mode: 0o755 });
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
  const env = baseEnv();
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
  Object.assign(env, params.env);
  const setpriv = switchUser ? which("setpriv", "/usr/bin:/bin:/usr/sbin:/sbin") : null;
  if (switchUser && !setpriv) throw new ApiError(500, "SPAWN_FAILED", "setpriv (util-linux) is needed to start shells as another user");
  return { shell, shellPath, account, switchUser, setpriv, cwd, env };
}
