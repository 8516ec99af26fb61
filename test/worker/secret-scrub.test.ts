/**
 * Scrubbing a secret from what /proc shows of a process: run in a child Node process started
 * with the secret in its environment and command line, which then reads its own /proc files.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

const SECRET = "scrub-test-secret-0123456789";

/** Runs `script` (ESM, with `scrubEnvironValue`/`hideArgument` imported) in a child with SECRET in env and argv; answers its stdout. */
function child(script: string): string {
  const prelude = `import { scrubEnvironValue, hideArgument } from ${JSON.stringify(new URL("../../worker/agent/secret-scrub.ts", import.meta.url).pathname)};
import { readFileSync } from "node:fs";
const proc = (f) => readFileSync("/proc/self/" + f, "utf8");`;
  const result = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", `${prelude}\n${script}`, "--", "--token", SECRET], {
    env: { ...process.env, SCRUB_ME: SECRET, SCRUB_ME_NOT: "keep" },
    encoding: "utf8",
  });
  expect(result.status, result.stderr).toBe(0);
  return result.stdout;
}

describe("scrubEnvironValue", () => {
  it("overwrites the value in /proc/self/environ (which `delete process.env` alone leaves) and in process.env", () => {
    const out = child(`
      delete process.env.SCRUB_ME;
      console.log("after-delete:" + proc("environ").includes(${JSON.stringify(SECRET)}));
      console.log("found:" + scrubEnvironValue("SCRUB_ME"));
      console.log("after-scrub:" + proc("environ").includes(${JSON.stringify(SECRET)}));
      console.log("other:" + process.env.SCRUB_ME_NOT + ":" + proc("environ").includes("SCRUB_ME_NOT=keep"));
      console.log("again:" + scrubEnvironValue("ABSENT_VARIABLE"));
    `);
    expect(out.split("\n")).toEqual(["after-delete:true", "found:true", "after-scrub:false", "other:keep:true", "again:false", ""]);
  });
});

describe("hideArgument", () => {
  it("rewrites /proc/self/cmdline without the secret", () => {
    // The secret is read from the arguments: the script itself is part of the command line.
    const out = child(`
      const secret = process.argv.at(-1);
      hideArgument(secret);
      console.log(proc("cmdline").includes(secret) + ":" + proc("cmdline").includes("--token [hidden]"));
    `);
    expect(out).toBe("false:true\n");
  });

  it("keeps the whole line when the script was started by a relative path from a deep directory", () => {
    // process.argv holds the script's absolute path, longer than the block the kernel shows: a
    // title made from it was cut to the block's length, losing the line's end.
    const deep = join(mkdtempSync(join(tmpdir(), "edgetty-scrub-")), "a-directory-deep-enough-that-its-path-outgrows-the-secret", "and-then-some");
    mkdirSync(deep, { recursive: true });
    const module = new URL("../../worker/agent/secret-scrub.ts", import.meta.url).pathname;
    writeFileSync(join(deep, "agent.mjs"), `import { hideArgument } from ${JSON.stringify(module)};
import { readFileSync } from "node:fs";
hideArgument(${JSON.stringify(SECRET)});
console.log(JSON.stringify(readFileSync("/proc/self/cmdline", "utf8")));`);
    const loader = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
    try {
      const result = spawnSync(process.execPath, ["--import", loader, "agent.mjs", "agent", "--server", "named", "--token", SECRET], { cwd: deep, encoding: "utf8" });
      expect(result.status, result.stderr).toBe(0);
      const cmdline = JSON.parse(result.stdout) as string;
      expect(cmdline).not.toContain(SECRET);
      expect(cmdline.replace(/\0+$/, "")).toBe(`${process.execPath} --import ${loader} agent.mjs agent --server named --token [hidden]`);
    } finally {
      rmSync(dirname(dirname(deep)), { recursive: true, force: true });
    }
  });
});
