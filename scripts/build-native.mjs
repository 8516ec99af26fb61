#!/usr/bin/env node
// Builds native/pty_spawn.c (posix_spawn onto a PTY, see its header) with node-gyp, as `npm
// install` builds node-pty. Run by the `install` script of this package and of the agent package.
// It is an optimisation: where it cannot build (not Linux, no compiler, an old glibc), it says so
// and exits 0, and the agent forks its PTYs with node-pty as before.
//
//   node scripts/build-native.mjs [--dir native]
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { dir: { type: "string" } } });
const dir = resolve(values.dir ?? join(here, "..", "native"));

if (process.platform !== "linux") process.exit(0);

/** node-gyp as npm runs it for install scripts, else npm's own copy beside this node. */
function nodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return [process.execPath, fromNpm];
  const bundled = join(dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js");
  if (existsSync(bundled)) return [process.execPath, bundled];
  return ["node-gyp"];
}

/** This node's own headers when npm does not name a folder (node-gyp would download them). */
function nodeDir() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = resolve(dirname(process.execPath), "..");
  return existsSync(join(prefix, "include", "node", "node_api.h")) ? [`--nodedir=${prefix}`] : [];
}

const [command, ...prefix] = nodeGyp();
const result = spawnSync(command, [...prefix, "rebuild", "--directory", dir, ...nodeDir()], { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
if (result.status !== 0) {
  // node-gyp ends with generic lines (its version, "not ok"): show the compiler's and gyp's errors first.
  const lines = (result.stderr ?? "").trim().split("\n");
  const errors = lines.filter((line) => /error|not found|No such file|cannot/i.test(line) && !/^gyp ERR! (node|node-gyp) -v|^gyp ERR! not ok/.test(line));
  const reason = result.error?.message ?? (errors.length > 0 ? errors : lines).slice(-4).join(" / ");
  process.stderr.write(`edgetty: the PTY spawn helper did not build (${reason}); PTYs are forked by node-pty instead\n`);
}
process.exit(0);
