/**
 * How to start each shell with edgetty's integration (command records, working directory) without
 * touching the user's files on disk: the agent spawns `file args` with `env` merged into the
 * shell's environment, and the shell reads a generated init file that runs the user's usual
 * startup files first, then installs the hooks in scripts/ (one per shell).
 *
 *   bash  --rcfile <file>: ~/.bashrc (or the login files), then hooks
 *   zsh   ZDOTDIR=<dir>: each of its files runs the user's own from their ZDOTDIR, then hooks
 *   fish  --init-command 'source <file>': fish reads the user's config first
 *   sh    ENV=<file>: the user's $ENV first; cwd only, sh has no pre-command hook
 *
 * Generated files live in a fresh folder under the caller's private `runtimeDir`; `cleanup()`
 * removes it once the shell has exited.
 */
import { randomBytes } from "node:crypto";
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export type ShellName = "bash" | "zsh" | "fish" | "sh";

export interface ShellLaunchOptions {
  shell: ShellName;
  /** The shell's executable, e.g. `/bin/bash`. */
  shellPath: string;
  /** Secret that marks this shell's command reports (give the same to CommandTracker); see createNonce. */
  nonce: string;
  /** A private folder (mode 0700) for generated files. */
  runtimeDir: string;
  /** A script the shell sources after its startup files and the hooks. */
  startupScript?: string;
  /** Text printed before the first prompt. */
  welcome?: string;
  /** Print `[edgetty] …` lines about the launch. */
  debug?: boolean;
  /** Start as a login shell (profile files instead of rc files where the shell distinguishes). */
  login?: boolean;
  /** The environment the shell will start with (for the user's ZDOTDIR / ENV); default process.env. */
  env?: Record<string, string | undefined>;
  /** Owner to give the generated files when the shell runs as another user. */
  owner?: { uid: number; gid: number };
}

export interface ShellLaunch {
  /** Executable to spawn. */
  file: string;
  args: string[];
  /** Variables to add to the shell's environment. */
  env: Record<string, string>;
  /** Removes the generated files; call after the shell has exited. Safe to call twice. */
  cleanup(): void;
}

/** Nonces are embedded in shell scripts unquoted-safe: letters, digits, `_` and `-` only. */
const NONCE_PATTERN = /^[A-Za-z0-9_-]{16,128}$/;

/** A fresh random nonce for one shell. */
export function createNonce(): string {
  return randomBytes(16).toString("hex");
}

/** Plans the spawn of one shell with edgetty's integration; writes its init files. */
export function planShellLaunch(opts: ShellLaunchOptions): ShellLaunch {
  if (!NONCE_PATTERN.test(opts.nonce)) throw new Error("planShellLaunch: nonce must be 16-128 of [A-Za-z0-9_-]");
  const dir = mkdtempSync(join(opts.runtimeDir, `${opts.shell}-`));
  const written: string[] = [dir];
  const write = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: 0o600 });
    written.push(path);
    return path;
  };
  let plan: Omit<ShellLaunch, "cleanup">;
  try {
    plan = PLANNERS[opts.shell](opts, dir, write);
    if (opts.owner) for (const p of written) chownSync(p, opts.owner.uid, opts.owner.gid);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return { ...plan, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

type Writer = (name: string, text: string) => string;
type Planner = (opts: ShellLaunchOptions, dir: string, write: Writer) => Omit<ShellLaunch, "cleanup">;

const PLANNERS: Record<ShellName, Planner> = {
  bash(opts, dir, write) {
    const path = join(dir, "bashrc");
    write("bashrc", header(opts, { __edgetty_rcfile: path, __edgetty_login: opts.login ? "1" : "0" }) + script("edgetty.bash"));
    return { file: opts.shellPath, args: ["--rcfile", path, "-i"], env: {} };
  },

  zsh(opts, dir, write) {
    const userZdotdir = (opts.env ?? process.env).ZDOTDIR;
    const vars = `__edgetty_zd=${sq(dir)}\n__edgetty_uzd=${sq(userZdotdir ?? "")} __edgetty_uzd_set=${userZdotdir === undefined ? 0 : 1}\n`;
    write(".zshenv", "# edgetty (generated)\n" + vars + zshStage(".zshenv", true));
    write(".zprofile", "# edgetty (generated)\n" + zshStage(".zprofile", true));
    write(".zshrc", "# edgetty (generated)\n" + zshStage(".zshrc", false) + header(opts, {}) + script("edgetty.zsh") +
      // A login shell reads .zlogin next (from our folder); otherwise hand ZDOTDIR back now.
      `if [[ -o login ]]; then ZDOTDIR=$__edgetty_zd; else ${ZSH_RESTORE}; fi\n`);
    write(".zlogin", "# edgetty (generated)\n" + zshStage(".zlogin", false));
    return { file: opts.shellPath, args: opts.login ? ["-l", "-i"] : ["-i"], env: { ZDOTDIR: dir } };
  },

  fish(opts, dir, write) {
    const path = join(dir, "init.fish");
    write("init.fish", fishHeader(opts, path) + script("edgetty.fish"));
    return { file: opts.shellPath, args: [...(opts.login ? ["-l"] : []), "-i", "--init-command", `source ${fq(path)}`], env: {} };
  },

  sh(opts, dir, write) {
    const path = join(dir, "env.sh");
    const userEnv = (opts.env ?? process.env).ENV ?? "";
    write("env.sh", header(opts, { __edgetty_envfile: path, __edgetty_user_env: userEnv }) + script("edgetty.sh"));
    return { file: opts.shellPath, args: opts.login ? ["-l", "-i"] : ["-i"], env: { ENV: path } };
  },
};

/** zsh: put the user's ZDOTDIR back (or unset it when they had none). */
const ZSH_RESTORE = "if (( __edgetty_uzd_set )); then ZDOTDIR=$__edgetty_uzd; else builtin unset ZDOTDIR; fi";

/**
 * One zsh startup file: run the user's file of the same name from their ZDOTDIR at top level (not
 * in a function, so its `typeset`s stay global), note where they moved ZDOTDIR, then point it back
 * at our folder when zsh reads another file after this one.
 */
function zshStage(name: string, continues: boolean): string {
  return [
    ZSH_RESTORE,
    `if [[ -r \${ZDOTDIR:-$HOME}/${name} ]]; then builtin source \${ZDOTDIR:-$HOME}/${name}; fi`,
    "if [[ -n ${ZDOTDIR+x} ]]; then __edgetty_uzd=$ZDOTDIR __edgetty_uzd_set=1; else __edgetty_uzd_set=0; fi",
    continues ? "ZDOTDIR=$__edgetty_zd" : "",
    "",
  ].join("\n");
}

/** Variable assignments for bash, zsh and sh (single-quoted). */
function header(opts: ShellLaunchOptions, extra: Record<string, string>): string {
  const vars: Record<string, string> = {
    __edgetty_nonce: opts.nonce,
    __edgetty_startup: opts.startupScript ?? "",
    __edgetty_welcome: opts.welcome ?? "",
    __edgetty_debug: opts.debug ? "1" : "0",
    ...extra,
  };
  return "# edgetty (generated for one terminal; removed when it closes)\n" +
    Object.entries(vars).map(([k, v]) => `${k}=${sq(v)}\n`).join("");
}

function fishHeader(opts: ShellLaunchOptions, path: string): string {
  const vars: Record<string, string> = {
    __edgetty_nonce: opts.nonce,
    __edgetty_startup: opts.startupScript ?? "",
    __edgetty_welcome: opts.welcome ?? "",
    __edgetty_debug: opts.debug ? "1" : "0",
    __edgetty_initfile: path,
  };
  return "# edgetty (generated for one terminal; removed when it closes)\n" +
    Object.entries(vars).map(([k, v]) => `set -g ${k} ${fq(v)}\n`).join("");
}

const scripts = new Map<string, string>();

/** The integration script shipped beside this module. */
function script(name: string): string {
  let text = scripts.get(name);
  if (text === undefined) {
    text = readFileSync(new URL(`./scripts/${name}`, import.meta.url), "utf8");
    scripts.set(name, text);
  }
  return text;
}

/** Single-quotes for bash, zsh and sh. */
function sq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** Single-quotes for fish, where `\` and `'` are escaped inside single quotes. */
function fq(s: string): string {
  return `'${s.replace(/[\\']/g, "\\$&")}'`;
}
