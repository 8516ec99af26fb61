/**
 * Multi-user mode of the Open Terminal API (the reference's OPEN_TERMINAL_MULTI_USER): with the
 * agent running as root, each caller that asserts `X-User-Id` gets an OS account of its own,
 * created on first use with `useradd` (Debian's passwd package), home mode 0700. Commands,
 * terminals and file operations of that caller then run as the account (setpriv, so the
 * account's own groups and nothing of root's), and the kernel decides what it may reach.
 *
 * Names follow the reference's rule (open_terminal/utils/user_isolation.py): the configured
 * prefix, the user id's lowercase letters and digits, `_`, and the first 8 hex digits of the
 * SHA-256 of the user id (`h` + those 8 digits when fewer than 3 letters or digits are left), at
 * most 32 characters, never starting with a digit. So an account made by the reference keeps its
 * name here.
 *
 * What edgetty adds: every account it creates carries a marker in its comment (GECOS) field, a
 * hash of the caller's full scope (the edge's principal and the whole `X-User-Id`). An account
 * is used only when its marker matches, so an existing account with the same name (root, a system
 * account, the agent's own user, a person's account, another principal's user, or a 32-bit hash
 * collision) is never acted as: the call is refused with 403.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, lstat } from "node:fs/promises";
import { dirname } from "node:path";
import { ApiError } from "../../shared/errors.ts";
import { OtCode, otError } from "../../shared/open-terminal.ts";
import { ExecError, type RunAs } from "./exec/exec-caller.ts";
import { loginEnv } from "./kinds/user.ts";
import { launchCommand } from "./launch.ts";
import { isRoot, launchAsAccount, lookupAccount, rootLoaderVariable, which, type Account } from "./spawn.ts";

/** Longest account name (the usual Linux limit, as the reference). */
export const OS_USER_NAME_MAX_CHARS = 32;
/** Accounts below this uid are system accounts and never used (the reference's _MIN_PROVISIONED_UID). */
export const OS_USER_MIN_UID = 1000;
/** Resolved accounts remembered, at most (the oldest is looked up again when needed). */
export const OS_USER_CACHE_MAX = 4096;
/** Longest `useradd` may take, in milliseconds. */
export const PROVISION_TIMEOUT_MS = 30_000;
/** Longest name prefix accepted (EDGETTY_OT_USER_PREFIX). */
export const OS_USER_PREFIX_MAX_CHARS = 16;
const PREFIX_RE = /^[a-z_][a-z0-9_-]{0,15}$/;

/** Multi-user settings (agent environment: EDGETTY_OT_MULTI_USER, EDGETTY_OT_USER_PREFIX). */
export interface MultiUserOptions {
  /** Prefix of every account name; "" for none (the reference's default). */
  prefix: string;
}

/** True for a valid EDGETTY_OT_USER_PREFIX value (empty allowed). */
export function isUserPrefix(prefix: string): boolean {
  return prefix === "" || PREFIX_RE.test(prefix);
}

/**
 * The account name for `userId` (the raw `X-User-Id`), by the reference's rule. `userHash` is
 * the hex SHA-256 of the whole user id (the edge sends it as the last part of the scope, so a user
 * id cut short on the way still hashes whole).
 */
export function accountName(userId: string, userHash: string, prefix: string): string {
  const cleaned = userId.toLowerCase().replace(/[^a-z0-9]/g, "");
  const hash = userHash.slice(0, 8);
  let p = prefix;
  if (!p && (!cleaned || /^\d/.test(cleaned))) p = "u";
  else if (/^\d/.test(p)) p = `u${p}`;
  const room = OS_USER_NAME_MAX_CHARS - p.length - 1 - hash.length;
  let name = room >= 3 && cleaned.length >= 3 ? `${p}${cleaned.slice(0, room)}_${hash}` : `${p}h${hash}`;
  if (/^\d/.test(name)) name = `u${name}`;
  return name.slice(0, OS_USER_NAME_MAX_CHARS);
}

/** The comment (GECOS) an account made for `scope` carries. */
export function accountMarker(scope: string): string {
  return `edgetty open-terminal ${createHash("sha256").update(scope).digest("hex").slice(0, 32)}`;
}

/** The hex SHA-256 of the user id, as the edge folds it into the scope (`<principal>:<hash>`). */
function userHashOf(scope: string, userId: string): string {
  const tail = scope.slice(scope.lastIndexOf(":") + 1);
  return /^[0-9a-f]{64}$/.test(tail) ? tail : createHash("sha256").update(userId).digest("hex");
}

/**
 * True when `path` (absolute, normalised) lies in another account's home: under the folder that
 * holds `home` (usually /home), in an entry other than `home` itself. The reference refuses these
 * with 403 before touching the disk; the kernel refuses the rest (symlinks included), since the
 * operations run as the account.
 */
export function inOtherHome(path: string, home: string): boolean {
  const root = dirname(home);
  if (root === "/" || !path.startsWith(root + "/")) return false;
  const entry = path.slice(root.length + 1).split("/")[0]!;
  return entry !== "" && `${root}/${entry}` !== home;
}

/** The reference's refusal of a path in another user's home. */
export function otherHomeError(path: string): ApiError {
  return new ApiError(403, "FORBIDDEN", `Access denied: ${path} belongs to another user`);
}

function run(file: string, args: string[]): Promise<void> {
  const cmd = launchCommand(file, args, { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" }, null);
  return new Promise((resolve, reject) => {
    execFile(cmd.file, cmd.args, { env: cmd.env, timeout: PROVISION_TIMEOUT_MS, maxBuffer: 64 << 10 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`${file.split("/").pop()} failed: ${String(stderr).trim().slice(0, 300) || error.message}`));
      else resolve();
    });
  });
}

/** The OS accounts of multi-user mode: looked up, checked and created on demand. */
export class OsUsers {
  /** scope → account, least recently used first. */
  private readonly cache = new Map<string, Account>();
  /** Accounts being created, by name (two first calls of one user create it once). */
  private readonly creating = new Map<string, Promise<void>>();
  private readonly useradd: string;
  /** setpriv's path (util-linux), which starts processes as an account. */
  readonly setpriv: string;

  constructor(
    private readonly opts: MultiUserOptions,
    private readonly log: (line: string) => void = () => {},
  ) {
    if (process.platform !== "linux") throw new Error("multi-user mode needs Linux");
    if (!isRoot()) throw new Error("multi-user mode needs the agent to run as root");
    const useradd = which("useradd", "/usr/sbin:/usr/bin:/sbin:/bin");
    if (!useradd) throw new Error("multi-user mode needs useradd (Debian: apt-get install passwd)");
    const setpriv = which("setpriv", "/usr/bin:/bin:/usr/sbin:/sbin");
    if (!setpriv) throw new Error("multi-user mode needs setpriv (util-linux)");
    this.setpriv = setpriv;
    if (!isUserPrefix(opts.prefix)) throw new Error(`EDGETTY_OT_USER_PREFIX "${opts.prefix}" must match [a-z_][a-z0-9_-]{0,15}`);
    this.useradd = useradd;
  }

  /**
   * The account of the caller `scope` that asserted `userId`, created if it does not exist yet.
   * Throws ApiError 403 when the name is taken by an account edgetty did not make for this
   * caller, 500 when creating it failed.
   */
  async resolve(scope: string, userId: string): Promise<Account> {
    const cached = this.cache.get(scope);
    if (cached) {
      this.cache.delete(scope);
      this.cache.set(scope, cached);
      return cached;
    }
    const name = accountName(userId, userHashOf(scope, userId), this.opts.prefix);
    const marker = accountMarker(scope);
    let account = lookupAccount(name);
    if (!account) {
      let pending = this.creating.get(name);
      if (!pending) {
        pending = this.create(name, marker).finally(() => this.creating.delete(name));
        this.creating.set(name, pending);
      }
      await pending;
      account = lookupAccount(name);
      if (!account) throw new ApiError(500, "USER_PROVISION_FAILED", `Account ${name} was created but cannot be found`);
    }
    if (account.gecos !== marker || account.uid < OS_USER_MIN_UID || account.uid === process.getuid?.()) {
      throw new ApiError(403, "USER_ACCOUNT_TAKEN", `X-User-Id maps to the account ${name}, which was not made by edgetty for this user; refusing to act as it`);
    }
    // A home left by an older account of the same name (useradd keeps it) is not this one's.
    const home = await lstat(account.home).catch(() => null);
    if (!home?.isDirectory() || home.uid !== account.uid) {
      throw new ApiError(500, "USER_HOME_INVALID", `The home of account ${name} (${account.home}) is not a folder it owns; remove or chown it`);
    }
    this.cache.set(scope, account);
    while (this.cache.size > OS_USER_CACHE_MAX) this.cache.delete(this.cache.keys().next().value as string);
    return account;
  }

  private async create(name: string, marker: string): Promise<void> {
    const shell = which("bash", "/bin:/usr/bin") ?? "/bin/sh";
    this.log(`multi-user: creating account ${name}`);
    try {
      // -m: home from /etc/skel; -U: its own group; -c: the marker; no password (locked).
      await run(this.useradd, ["-m", "-U", "-s", shell, "-c", marker, "--", name]);
    } catch (error) {
      // Another agent (or a person) made it meanwhile: the marker check decides.
      if (lookupAccount(name)) return;
      throw new ApiError(500, "USER_PROVISION_FAILED", `Could not create account ${name}: ${(error as Error).message}`);
    }
    const account = lookupAccount(name);
    if (!account || account.gecos !== marker) return;
    // Only its owner may enter it (useradd follows the host's HOME_MODE/UMASK, often 0755). Not
    // through a symlink, and not a home left by an older account of the same name (useradd keeps
    // it): resolve() refuses those.
    const home = await lstat(account.home).catch(() => null);
    if (home?.isDirectory() && home.uid === account.uid) await chmod(account.home, 0o700);
  }
}

/**
 * How the execute API runs a caller's commands as `account` (exec-caller.ts RunAs): its login
 * environment with the call's `env` over it (never the loader variables that would act on the
 * launcher and setpriv, which still run as root), its home as default cwd, other homes refused,
 * started through setpriv at `setpriv`.
 */
export function runAsAccount(account: Account, setpriv: string): RunAs {
  return {
    home: account.home,
    env(extra) {
      const refused = rootLoaderVariable(extra);
      if (refused) throw new ExecError(otError(400, OtCode.BAD_REQUEST, `env ${refused} cannot be set in multi-user mode (it would act on the programs that switch user, as root)`));
      return { ...loginEnv(account, account.shell), ...(extra ?? {}) };
    },
    guard(cwd) {
      if (inOtherHome(cwd, account.home)) throw new ExecError(otError(403, OtCode.FORBIDDEN, `Access denied: ${cwd} belongs to another user`));
    },
    launch: (file, args, env, tag) => launchAsAccount(account, setpriv, file, args, env, tag),
  };
}
