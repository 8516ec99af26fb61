/**
 * Takes the agent's token out of what other processes can read of this one.
 *
 * `/proc/<pid>/environ` is not the live environment: the kernel answers it from the block the
 * process was started with (`env_start`..`env_end` in `/proc/<pid>/stat`), and `unsetenv` —
 * which is all `delete process.env.X` does in Node — only drops the pointer from `environ`,
 * leaving the bytes where they were. So a token passed as `EDGETTY_AGENT_TOKEN` stays readable
 * there (by the agent's own user and root) for the agent's lifetime unless those bytes are
 * overwritten. Node has no API for that; a process may write its own memory through
 * `/proc/self/mem`, which is what {@link scrubEnvironValue} does. Likewise `/proc/<pid>/cmdline`
 * (readable by every user) shows `--token T`: assigning `process.title` makes libuv rewrite that
 * block, which {@link hideArgument} uses.
 *
 * Best effort by nature (a kernel without `/proc/self/mem` write access refuses it): callers log
 * the failure and the docs recommend `--token-file`, which puts the token in neither block.
 */
import { closeSync, openSync, readFileSync, readSync, writeSync } from "node:fs";

/** Largest environment block read back to find the variable, in bytes (Linux caps argv+env far lower in practice). */
export const ENVIRON_SCAN_MAX_BYTES = 1 << 22; // 4 MiB
/** What an overwritten secret byte becomes. */
const MASK = 0x2a; // "*"

/** `env_start` and `env_end` of this process (fields 50 and 51 of `/proc/self/stat`), or null. */
function environRange(): { start: number; end: number } | null {
  const stat = readFileSync("/proc/self/stat", "utf8");
  // Fields after the command name, which is in parentheses and may itself hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).trim().split(" ");
  const field = (n: number) => Number(fields[n - 3]);
  const start = field(50);
  const end = field(51);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start <= 0 || end <= start) return null;
  return { start, end };
}

/**
 * Overwrites the value of `name` (with `*`s, keeping the length) in this process's original
 * environment block, so `/proc/<pid>/environ` no longer shows it; also removes it from
 * `process.env`, so no child started from `process.env` inherits it. Answers true when the
 * variable was found in the block and overwritten, false when it was not there; throws when
 * `/proc` cannot be read or written (the value may still be visible: tell the operator).
 */
export function scrubEnvironValue(name: string): boolean {
  delete process.env[name];
  const range = environRange();
  if (range === null) throw new Error("no environment range in /proc/self/stat");
  const length = Math.min(range.end - range.start, ENVIRON_SCAN_MAX_BYTES);
  const fd = openSync("/proc/self/mem", "r+");
  try {
    const block = Buffer.alloc(length);
    const read = readSync(fd, block, 0, length, range.start);
    const prefix = Buffer.from(`${name}=`);
    let found = false;
    // Every entry `NAME=value\0` of that name (a duplicated variable appears twice).
    for (let at = block.indexOf(prefix); at !== -1 && at < read; at = block.indexOf(prefix, at + 1)) {
      if (at > 0 && block[at - 1] !== 0) continue; // inside another entry's value
      const from = at + prefix.length;
      let to = block.indexOf(0, from);
      if (to === -1 || to > read) to = read;
      if (to > from) writeSync(fd, Buffer.alloc(to - from, MASK), 0, to - from, range.start + from);
      found = true;
    }
    return found;
  } finally {
    closeSync(fd);
  }
}

/**
 * This process's command line as it was started: the arguments of `/proc/self/cmdline` (the
 * original argv block, node's own flags and the script path as typed included), or
 * `process.argv` where /proc cannot be read.
 */
function startedArgv(): readonly string[] {
  try {
    const block = readFileSync("/proc/self/cmdline", "utf8");
    const args = block.split("\0");
    if (args.at(-1) === "") args.pop();
    return args.length > 0 ? args : process.argv;
  } catch {
    return process.argv;
  }
}

/**
 * Rewrites this process's command line (`/proc/<pid>/cmdline`, `ps`) with every argument equal
 * to `secret` (or `--token=<secret>`) shown as `[hidden]`. No-op when it is not there.
 *
 * The new line is the original one with the secret replaced, never longer: libuv writes a title
 * over the original argv block and cuts it to that block's length. (`process.argv` would not do:
 * it holds the script's resolved absolute path, longer than a relative one as typed, so from a
 * deep working directory the end of the line, `--token [hidden]` and all, was cut off.)
 */
export function hideArgument(secret: string, argv: readonly string[] = startedArgv()): void {
  if (!argv.some((a) => a === secret || a.endsWith(`=${secret}`))) return;
  const shown = argv.map((a) => (a === secret ? "[hidden]" : a.endsWith(`=${secret}`) ? `${a.slice(0, a.length - secret.length)}[hidden]` : a));
  process.title = shown.join(" ");
}
