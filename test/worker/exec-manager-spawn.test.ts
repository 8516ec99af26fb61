/**
 * ExecManager's suite (exec-manager.test.ts) again with the posix_spawn helper in force, as the
 * agent runs it wherever the helper was built: background commands on PTYs and seed 004's runs on
 * pipes are then spawned by the agent itself with posix_spawn, without the PTY host
 * (worker/agent/agent.ts). The suite file alone covers node-pty's fork and child_process.
 */
import { expect } from "vitest";
import { ptySpawnAddonPath, spawnsWithoutLeaks, usePosixSpawn } from "../../worker/agent/pty-spawn.ts";

const addon = ptySpawnAddonPath();
expect(addon, "native/build/Release/edgetty_pty_spawn.node (scripts/build-native.mjs)").not.toBeNull();
expect(usePosixSpawn(addon!)).toEqual({ mode: "posix_spawn" });
expect(spawnsWithoutLeaks()).toBe(true);

await import("./exec-manager.test.ts");
