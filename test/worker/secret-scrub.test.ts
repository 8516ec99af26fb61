/**
 * Scrubbing a secret from what /proc shows of a process: run in a child Node process started
 * with the secret in its environment and command line, which then reads its own /proc files.
 */
import { spawnSync } from "node:child_process";
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
    const out = child(`
      hideArgument(${JSON.stringify(SECRET)});
      console.log(proc("cmdline").includes(${JSON.stringify(SECRET)}) + ":" + proc("cmdline").includes("--token [hidden]"));
    `);
    expect(out).toBe("false:true\n");
  });
});
