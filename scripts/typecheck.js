#!/usr/bin/env node
// Type-checks every runtime folder against its own tsconfig (each extends tsconfig.base.json).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const projects = ["shared", "edge", "worker", "client", "bench", "web", "test", "test/edge"].filter((p) => existsSync(`${p}/tsconfig.json`));
let failed = false;
for (const project of projects) {
  const result = spawnSync(process.execPath, [tsc, "--noEmit", "-p", project], { stdio: "inherit" });
  console.log(`typecheck ${project}: ${result.status === 0 ? "ok" : "FAILED"}`);
  failed ||= result.status !== 0;
}
process.exit(failed ? 1 : 0);
