/**
 * `mkdir -p` for the agent, without Node's `{ recursive: true }` mkdir: on some paths that one
 * never returns and spins a thread at full CPU (seen under /proc, where mkdir answers ENOENT for a
 * parent that exists and Node retries the parent for ever). Here each missing ancestor is made in
 * turn, so the work is bounded by the path's depth and every failure is thrown as the kernel gave it.
 */
import { mkdirSync, statSync, type Stats } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";

const isMissing = (error: unknown) => (error as { code?: unknown }).code === "ENOENT";
const isExisting = (error: unknown) => (error as { code?: unknown }).code === "EEXIST";

/**
 * Makes `path` and any missing parents (`mode` applies to each one made, as with `mkdir -p -m`).
 * Resolves once `path` is a directory; rejects with the system error otherwise (EEXIST when `path`
 * is a file, ENOTDIR when a parent is, ENOENT/EACCES/EROFS as the kernel says).
 */
export async function makeDirectories(path: string, mode?: number): Promise<void> {
  const missing: string[] = [];
  let dir = resolve(path);
  let found: Stats | null = null;
  for (;;) {
    found = await stat(dir).catch((error: unknown) => {
      if (isMissing(error)) return null;
      throw error;
    });
    if (found || dirname(dir) === dir) break;
    missing.push(dir);
    dir = dirname(dir);
  }
  if (missing.length === 0 && found?.isDirectory()) return;
  if (missing.length === 0) await mkdir(dir); // a file: throws EEXIST, as mkdir -p does
  for (const each of missing.reverse()) {
    await mkdir(each, mode === undefined ? undefined : { mode }).catch((error: unknown) => {
      if (!isExisting(error)) throw error;
    });
  }
}

/** makeDirectories, synchronously (start-up paths and spawn preparation). */
export function makeDirectoriesSync(path: string, mode?: number): void {
  const missing: string[] = [];
  let dir = resolve(path);
  let found: Stats | null = null;
  for (;;) {
    try {
      found = statSync(dir);
    } catch (error) {
      if (!isMissing(error)) throw error;
      found = null;
    }
    if (found || dirname(dir) === dir) break;
    missing.push(dir);
    dir = dirname(dir);
  }
  if (missing.length === 0 && found?.isDirectory()) return;
  if (missing.length === 0) mkdirSync(dir);
  for (const each of missing.reverse()) {
    try {
      mkdirSync(each, mode === undefined ? undefined : { mode });
    } catch (error) {
      if (!isExisting(error)) throw error;
    }
  }
}
