/**
 * node-pty with posix_spawn: swaps node-pty's native `fork` for native/pty_spawn.c's, which takes
 * the same arguments and returns the same `{fd, pid, pty}`, so node-pty's UnixTerminal (its read
 * stream, write queue and exit ordering, and what pty-tail.ts and pty-input.ts read of them) drives
 * the PTY unchanged. Why: fork(2) from a Node process costs 8-14 ms per PTY on this project's VM
 * (page tables copied, the parent's heap faulting copy-on-write), posix_spawn 3-5 ms; the helper's
 * header has the figures.
 *
 * node-pty has no option for this; its native module is one object shared through Node's module
 * cache (node-pty's lib/utils.js loadNativeModule requires it once), and its `fork` property is what
 * lib/unixTerminal.js calls. A test (test/worker/pty-spawn.test.ts) fails if an upgrade changes that.
 * Spawns that need another uid or gid go to node-pty's own fork. {@link spawnOnPipes} starts a
 * program on pipes with the same helper, in place of child_process (which forks too).
 */
import { EventEmitter } from "node:events";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { Socket } from "node:net";
import { constants } from "node:os";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import * as pty from "node-pty";
import { launchCommand, taggedCommand, type Launcher } from "./launch.ts";

/** The built helper's file name (native/binding.gyp's target). */
const ADDON_FILE = "edgetty_pty_spawn.node";

/**
 * Where the helper was built: `native/build/Release` of the sources (two folders above this
 * module), or of the agent package (beside its bundle); null when it was not built there.
 */
export function ptySpawnAddonPath(): string | null {
  const here = import.meta.url;
  const path = fileURLToPath(new URL(`${here.endsWith(".ts") ? "../../" : "./"}native/build/Release/${ADDON_FILE}`, here));
  return existsSync(path) ? path : null;
}

/** The helper's exports (native/pty_spawn.c). */
interface PtySpawnAddon {
  fork: NativeFork;
  spawnPipes(file: string, args: string[], env: string[], cwd: string, onexit: (code: number, signal: number) => void): { pid: number; stdout: number; stderr: number };
  supported(): boolean;
  /** True when its children start with descriptors 0-2 only (absent in helpers built before it). */
  closesDescriptors?(): boolean;
}

/** node-pty 1.1's native `fork` (lib/unixTerminal.js calls it with these arguments). */
type NativeFork = (
  file: string,
  args: string[],
  env: string[],
  cwd: string,
  cols: number,
  rows: number,
  uid: number,
  gid: number,
  utf8: boolean,
  helperPath: string,
  onexit: (code: number, signal: number) => void,
) => { fd: number; pid: number; pty: string };

const require = createRequire(import.meta.url);

/** node-pty's native module, as its loader left it in the module cache, or null. */
function nodePtyNative(): { fork: NativeFork } | null {
  void pty.spawn; // node-pty is loaded (it requires its native module when it loads)
  for (const [path, module] of Object.entries(require.cache)) {
    if (!/[\\/]node-pty[\\/](build[\\/](Release|Debug)|prebuilds[\\/][^\\/]+)[\\/]pty\.node$/.test(path)) continue;
    const exports = module?.exports as { fork?: unknown } | undefined;
    if (typeof exports?.fork === "function") return exports as { fork: NativeFork };
  }
  return null;
}

/** How PTYs are being spawned in this process. */
export type PtySpawnMode = "posix_spawn" | "fork";
let mode: PtySpawnMode = "fork";
/** The helper, once usePosixSpawn() put it in force. */
let helper: PtySpawnAddon | null = null;
/** The helper in force closes every descriptor above 2 in its children (read once from it). */
let helperClosesDescriptors = false;

/** How this process spawns its PTYs now. */
export function ptySpawnMode(): PtySpawnMode {
  return mode;
}

/**
 * Makes node-pty spawn through the helper at `addonPath` in this process, when it loads, the kernel
 * has pidfds and node-pty's native module is where expected; otherwise leaves node-pty as it is.
 * Returns the mode in force and, when it stays "fork", why.
 */
export function usePosixSpawn(addonPath: string): { mode: PtySpawnMode; reason?: string } {
  if (mode === "posix_spawn") return { mode };
  let addon: PtySpawnAddon;
  try {
    addon = require(addonPath) as PtySpawnAddon;
  } catch (error) {
    return { mode, reason: `the helper did not load: ${(error as Error).message}` };
  }
  if (!addon.supported()) return { mode, reason: "this kernel has no pidfds (Linux 5.3 or later)" };
  const native = nodePtyNative();
  if (!native) return { mode, reason: "node-pty's native module was not found" };
  const fork = native.fork;
  native.fork = (file, args, env, cwd, cols, rows, uid, gid, utf8, helperPath, onexit) =>
    uid === -1 && gid === -1
      ? addon.fork(file, args, env, cwd, cols, rows, uid, gid, utf8, helperPath, onexit)
      : fork(file, args, env, cwd, cols, rows, uid, gid, utf8, helperPath, onexit);
  mode = "posix_spawn";
  helper = addon;
  helperClosesDescriptors = addon.closesDescriptors?.() === true;
  return { mode };
}

/**
 * True when this process's PTYs (node-pty without a uid or gid) and {@link spawnOnPipes} children
 * start with descriptors 0-2 only, whatever this process holds: the helper is in force and closes
 * the rest in the child. Then a spawn needs no descriptor check first (launch.ts guardLaunch).
 */
export function spawnsWithoutLeaks(): boolean {
  return helperClosesDescriptors;
}

/**
 * How this process prepares a command it spawns itself (a PTY, or {@link spawnOnPipes} with
 * child_process as the fallback): only tagged when nothing can leak ({@link spawnsWithoutLeaks}),
 * else checked and, when something would leak, wrapped in the descriptor closer (launch.ts).
 */
export function ownLauncher(): Launcher {
  return spawnsWithoutLeaks() ? taggedCommand : launchCommand;
}

/** What the PTY host uses of a child on pipes: child_process's ChildProcess has this shape too. */
export interface PipedChild extends EventEmitter {
  readonly pid?: number | undefined;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
}

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, number]) => [number as number, name as NodeJS.Signals]));

/**
 * A program on pipes started by the helper, with the events of child_process's ChildProcess
 * that the PTY host listens to: "spawn" (next tick), "exit" (code, signal name), then "close"
 * (code, signal name) once both pipes have closed too. It never emits "error": a spawn that
 * fails throws instead.
 */
class SpawnedOnPipes extends EventEmitter implements PipedChild {
  readonly pid: number;
  readonly stdout: Socket;
  readonly stderr: Socket;

  constructor(addon: PtySpawnAddon, file: string, args: string[], env: Record<string, string>, cwd: string) {
    super();
    let exit: [number | null, NodeJS.Signals | null] | null = null;
    let open = 2;
    const closeWhenDone = () => {
      if (exit && open === 0) this.emit("close", ...exit);
    };
    const spawned = addon.spawnPipes(file, args, Object.entries(env).map(([k, v]) => `${k}=${v}`), cwd, (code, signal) => {
      exit = signal ? [null, SIGNAL_NAMES.get(signal) ?? null] : [code, null];
      this.emit("exit", ...exit);
      closeWhenDone();
    });
    this.pid = spawned.pid;
    this.stdout = new Socket({ fd: spawned.stdout, readable: true, writable: false });
    this.stderr = new Socket({ fd: spawned.stderr, readable: true, writable: false });
    for (const stream of [this.stdout, this.stderr]) {
      stream.once("close", () => {
        open--;
        closeWhenDone();
      });
    }
    process.nextTick(() => this.emit("spawn"));
  }
}

/**
 * Starts `file` on pipes with the helper (stdin /dev/null, stdout and stderr piped, a session of
 * its own: child_process.spawn with `detached` and ignore/pipe/pipe), or returns null when the
 * helper is not in force. Throws when the program cannot start (a missing cwd or program).
 */
export function spawnOnPipes(file: string, args: string[], env: Record<string, string>, cwd: string): PipedChild | null {
  return helper ? new SpawnedOnPipes(helper, file, args, env, cwd) : null;
}
