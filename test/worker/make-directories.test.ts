/**
 * The agent's `mkdir -p`: it makes missing parents with their mode, and fails with the kernel's
 * error where Node's recursive mkdir would spin for ever (a path under /proc).
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { makeDirectories, makeDirectoriesSync } from "../../worker/agent/make-directories.ts";

const root = mkdtempSync(join(tmpdir(), "edgetty-mkdirs-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const variants = {
  async: (path: string, mode?: number) => makeDirectories(path, mode),
  sync: async (path: string, mode?: number) => makeDirectoriesSync(path, mode),
};

describe.each(Object.entries(variants))("makeDirectories (%s)", (name, make) => {
  it("makes every missing parent with the mode, and is a no-op on a directory", async () => {
    const path = join(root, name, "a", "b", "c");
    await make(path, 0o700);
    for (const dir of [join(root, name), join(root, name, "a"), path]) expect(statSync(dir).mode & 0o777).toBe(0o700);
    await expect(make(path)).resolves.toBeUndefined();
  });

  it("answers EEXIST for a file and ENOTDIR for a file as a parent", async () => {
    const file = join(root, `${name}-file`);
    writeFileSync(file, "x");
    await expect(make(file)).rejects.toMatchObject({ code: "EEXIST" });
    await expect(make(join(file, "below"))).rejects.toMatchObject({ code: "ENOTDIR" });
  });

  it("fails under /proc with the kernel's error instead of spinning", async () => {
    await expect(make(`/proc/${process.pid}/no-such-dir/deeper`)).rejects.toMatchObject({ code: "ENOENT" });
  });
});
