/**
 * `GET /files/grep` and `GET /files/glob` on the agent, walking as Python's `os.walk` does
 * (top-down, symlinked directories not followed, names sorted within a directory) with glob
 * matching by a kept library (picomatch, `fnmatch`-like: `*` may cross `/` on relative paths).
 * Every walk is bounded in files visited and bytes read, so a search of `/` ends.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import picomatch from "picomatch";
import type { GlobQuery, GrepQuery } from "../../../shared/open-terminal.ts";
import { fail } from "./paths.ts";
import { fromPythonRegex } from "./python-regex.ts";

/** Directory entries a search looks at, at most. */
export const SEARCH_MAX_ENTRIES = 200_000;
/** Files larger than this are skipped by grep, in bytes. */
export const GREP_FILE_MAX_BYTES = 16 << 20; // 16 MiB
/** Longest line content returned by grep, in characters. */
export const GREP_LINE_MAX_CHARS = 4096;

const utf8 = new TextDecoder("utf-8", { fatal: true });

interface Walked {
  dir: string;
  dirs: string[];
  files: string[];
}

/** os.walk, bounded by SEARCH_MAX_ENTRIES entries in total. */
async function* walk(root: string, budget = { left: SEARCH_MAX_ENTRIES }): AsyncGenerator<Walked> {
  const stack = [root];
  while (stack.length > 0 && budget.left > 0) {
    const dir = stack.pop()!;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    budget.left -= entries.length;
    const dirs: string[] = [];
    const files: string[] = [];
    for (const e of entries) (e.isDirectory() ? dirs : files).push(e.name);
    yield { dir, dirs, files };
    for (const d of [...dirs].reverse()) stack.push(join(dir, d));
  }
}

function matcher(patterns: string[]): (s: string) => boolean {
  const m = patterns.map((p) => picomatch(p, { dot: true, bash: true }));
  return (s) => m.some((f) => f(s));
}

/** `GET /files/grep`: `{query, path, matches, truncated}`; binary and unreadable files are skipped. */
export async function grep(target: string, q: GrepQuery): Promise<Response> {
  const s = await stat(target).catch(() => null);
  if (!s) fail(404, "Search path not found");
  let re: RegExp;
  try {
    // The query is a Python pattern, as the reference compiles it (python-regex.ts).
    const { source, flags } = q.regex ? fromPythonRegex(q.query) : { source: q.query.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), flags: "u" };
    re = new RegExp(source, q.case_insensitive && !flags.includes("i") ? `${flags}i` : flags);
  } catch (e) {
    fail(400, `Invalid regex: ${(e as Error).message}`);
  }
  const include = q.include.length ? matcher(q.include) : () => true;
  const matches: ({ file: string; line: number; content: string } | { file: string })[] = [];
  let truncated = false;

  const searchFile = async (file: string): Promise<void> => {
    let text: string;
    try {
      const info = await stat(file);
      if (!info.isFile() || info.size > GREP_FILE_MAX_BYTES) return;
      text = utf8.decode(await readFile(file));
    } catch {
      return;
    }
    let line = 0;
    for (const content of text.split(/\r?\n/)) {
      line++;
      if (!re.test(content)) continue;
      if (q.match_per_line) matches.push({ file, line, content: content.slice(0, GREP_LINE_MAX_CHARS) });
      else matches.push({ file });
      if (matches.length >= q.max_results) truncated = true;
      if (truncated || !q.match_per_line) return;
    }
  };

  if (s.isFile()) await searchFile(target);
  else
    for await (const { dir, files } of walk(target)) {
      if (truncated) break;
      for (const name of files.sort()) {
        if (truncated) break;
        if (include(name)) await searchFile(join(dir, name));
      }
    }
  return Response.json({ query: q.query, path: target, matches, truncated });
}

/** `GET /files/glob`: `{pattern, path, matches:[{path (relative), type, size, modified}], truncated}`. */
export async function glob(target: string, q: GlobQuery): Promise<Response> {
  if (!(await stat(target).catch(() => null))?.isDirectory()) fail(404, "Search directory not found");
  const match = matcher([q.pattern]);
  const excluded = q.exclude.length ? matcher(q.exclude) : () => false;
  const matches: { path: string; type: string; size: number; modified: number }[] = [];
  let truncated = false;
  for await (const { dir, dirs, files } of walk(target)) {
    if (truncated) break;
    const entries: [string, "file" | "directory"][] = [];
    if (q.type !== "file") for (const d of dirs) entries.push([d, "directory"]);
    if (q.type !== "directory") for (const f of files) entries.push([f, "file"]);
    entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const [name, type] of entries) {
      const full = join(dir, name);
      const rel = relative(target, full);
      if (!match(name) && !match(rel)) continue;
      if (excluded(name) || excluded(rel)) continue;
      const info = await stat(full).catch(() => null);
      if (!info) continue;
      matches.push({ path: rel, type, size: info.size, modified: info.mtimeMs / 1000 });
      if (matches.length >= q.max_results) {
        truncated = true;
        break;
      }
    }
  }
  return Response.json({ pattern: q.pattern, path: target, matches, truncated });
}
