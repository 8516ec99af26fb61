// @ts-check
/**
 * The guardian each child of the local stack runs under (started only by guarded-process.ts as
 * `node guardian.js -- COMMAND ARGS…`, in a new process group). It runs the command in its own
 * process group, reports the command's pid and exit over the IPC channel, and ends the whole group
 * once that channel disconnects, which the kernel does when the stack's process dies, however it
 * dies: SIGTERM, then SIGKILL after GROUP_STOP_GRACE_MS.
 *
 * Plain JavaScript, loaded without tsx: a guardian costs a bare Node (about 40 MB) instead of
 * Node with the TypeScript loader (about 75 MB). Messages: guarded-process.ts `GuardianMessage`.
 */
import { spawn } from "node:child_process";
import { constants } from "node:os";

/** How long the group gets after SIGTERM before SIGKILL, in milliseconds (as GROUP_STOP_GRACE_MS). */
const GROUP_STOP_GRACE_MS = 5_000;

/** @param {number} pid @param {NodeJS.Signals} signal */
function sendSignal(pid, signal) {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

const argv = process.argv.slice(2);
const [command, ...args] = argv[0] === "--" ? argv.slice(1) : argv;
if (!command || !process.send) {
  process.stderr.write("guardian: internal to the local stack (started by guarded-process.ts)\n");
  process.exit(2);
}

/** @param {object} message @param {() => void} then */
const send = (message, then = () => {}) => {
  if (process.connected && process.send) process.send(message, undefined, {}, then);
  else then();
};

const child = spawn(command, args, { stdio: ["ignore", "inherit", "inherit"] });
let orphaned = false;
child.once("spawn", () => send({ t: "spawned", pid: child.pid }));
child.once("error", (e) => send({ t: "error", message: e.message }, () => process.exit(127)));
child.once("exit", (code, signal) => {
  // Orphaned: whatever the child left in the group goes now, this process with it.
  if (orphaned) sendSignal(-process.pid, "SIGKILL");
  // The exit code carries the status too (128 + signal number, as shells do).
  const exitCode = signal ? 128 + (constants.signals[signal] ?? 0) : (code ?? 1);
  send({ t: "exit", status: { code, signal } }, () => process.exit(exitCode));
});
// The stack stops the group with SIGTERM: the child got it too; wait for its exit to report it.
for (const sig of /** @type {const} */ (["SIGTERM", "SIGINT", "SIGHUP"])) process.on(sig, () => {});
process.once("disconnect", () => {
  orphaned = true;
  sendSignal(-process.pid, "SIGTERM");
  setTimeout(() => sendSignal(-process.pid, "SIGKILL"), GROUP_STOP_GRACE_MS).unref();
});
