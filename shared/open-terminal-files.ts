/**
 * `/files/*` of the Open Terminal family: request validation in FastAPI's shapes (query
 * parameters and JSON bodies as the reference's models read them). The agent runs these on the
 * requests the edge tunnels to it; the shapes of the answers are documented in docs/open-terminal.md.
 */
import { bodyInt, done, hasNul, nulIssue, parseJsonBody, queryBool, queryInt, queryView, str } from "./open-terminal-fields.ts";
import type { Issues } from "./open-terminal-fields.ts";
import type { Parsed } from "./open-terminal-errors.ts";

/** Largest `max_results` of grep and glob (the reference's limit). */
export const GREP_MAX_RESULTS_LIMIT = 500;
/** Default `max_results` of grep and glob. */
export const SEARCH_DEFAULT_RESULTS = 50;
/** Longest path accepted, in characters (Linux's PATH_MAX). */
export const FILE_PATH_MAX_CHARS = 4096;
/** Most replacements in one `POST /files/replace`. */
export const REPLACEMENTS_MAX = 1000;
/** Most paths in one `POST /files/archive`. */
export const ARCHIVE_PATHS_MAX = 1000;
/** Most `include`/`exclude` patterns per search. */
export const SEARCH_PATTERNS_MAX = 64;

export interface ReadQuery {
  path: string;
  start_line: number | null;
  end_line: number | null;
}

export interface GrepQuery {
  query: string;
  path: string;
  regex: boolean;
  case_insensitive: boolean;
  include: string[];
  match_per_line: boolean;
  max_results: number;
}

export interface GlobQuery {
  pattern: string;
  path: string;
  exclude: string[];
  type: "file" | "directory" | "any";
  max_results: number;
}

export interface Replacement {
  target: string;
  replacement: string;
  start_line: number | null;
  end_line: number | null;
  allow_multiple: boolean;
}

function pathIssue(value: string | null, loc: (string | number)[], issues: Issues): void {
  if (value === null) return;
  if (hasNul(value)) issues.push(nulIssue(loc, value));
  else if (value.length > FILE_PATH_MAX_CHARS) issues.push({ type: "string_too_long", loc, msg: `String should have at most ${FILE_PATH_MAX_CHARS} characters`, input: value.slice(0, 64), ctx: { max_length: FILE_PATH_MAX_CHARS } });
}

/** A string query parameter; `fallback` undefined makes it required. */
function qStr(q: Map<string, string>, name: string, issues: Issues, fallback?: string): string | null {
  const v = q.get(name);
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    issues.push({ type: "missing", loc: ["query", name], msg: "Field required", input: null });
    return null;
  }
  return v;
}

/** A query path parameter (required unless `fallback`). */
function qPath(q: Map<string, string>, name: string, issues: Issues, fallback?: string): string | null {
  const v = qStr(q, name, issues, fallback);
  pathIssue(v, ["query", name], issues);
  return v;
}

/** A body path field. */
function bPath(body: Record<string, unknown>, name: string, issues: Issues): string | null {
  const v = str(body, name, issues, true);
  pathIssue(v, ["body", name], issues);
  return v;
}

/** Query `path` (required): display, view, delete. */
export function parsePathQuery(params: URLSearchParams): Parsed<{ path: string }> {
  const issues: Issues = [];
  const path = qPath(queryView(params), "path", issues);
  return done(issues, () => ({ path: path! }));
}

/** Query `directory` (default `.`): list, upload. */
export function parseDirectoryQuery(params: URLSearchParams): Parsed<{ directory: string }> {
  const issues: Issues = [];
  const directory = qPath(queryView(params), "directory", issues, ".");
  return done(issues, () => ({ directory: directory! }));
}

/** `GET /files/read`: `path`, `start_line` ≥ 1, `end_line` ≥ 1. */
export function parseReadQuery(params: URLSearchParams): Parsed<ReadQuery> {
  const issues: Issues = [];
  const q = queryView(params);
  const path = qPath(q, "path", issues);
  const start = queryInt(q.get("start_line"), ["query", "start_line"], issues, 1);
  const end = queryInt(q.get("end_line"), ["query", "end_line"], issues, 1);
  return done(issues, () => ({ path: path!, start_line: start, end_line: end }));
}

function patterns(params: URLSearchParams, name: string, issues: Issues): string[] {
  const all = params.getAll(name).filter((v) => v.toLowerCase() !== "null" && v !== "");
  if (all.length > SEARCH_PATTERNS_MAX) issues.push({ type: "too_long", loc: ["query", name], msg: `List should have at most ${SEARCH_PATTERNS_MAX} items`, input: all.length });
  return all.slice(0, SEARCH_PATTERNS_MAX);
}

function maxResults(q: Map<string, string>, issues: Issues): number {
  return queryInt(q.get("max_results"), ["query", "max_results"], issues, 1, GREP_MAX_RESULTS_LIMIT) ?? SEARCH_DEFAULT_RESULTS;
}

/** `GET /files/grep`. */
export function parseGrepQuery(params: URLSearchParams): Parsed<GrepQuery> {
  const issues: Issues = [];
  const q = queryView(params);
  const query = qStr(q, "query", issues);
  const path = qPath(q, "path", issues, ".");
  const regex = queryBool(q, "regex", issues, true);
  const caseInsensitive = queryBool(q, "case_insensitive", issues, false);
  const include = patterns(params, "include", issues);
  const perLine = queryBool(q, "match_per_line", issues, true);
  const max = maxResults(q, issues);
  return done(issues, () => ({ query: query!, path: path!, regex, case_insensitive: caseInsensitive, include, match_per_line: perLine, max_results: max }));
}

/** What `/files/glob`'s `type` must match (the reference declares it as a pattern, not an enum). */
export const GLOB_TYPE_PATTERN = "^(file|directory|any)$";

/** `GET /files/glob`. */
export function parseGlobQuery(params: URLSearchParams): Parsed<GlobQuery> {
  const issues: Issues = [];
  const q = queryView(params);
  const pattern = qStr(q, "pattern", issues);
  const path = qPath(q, "path", issues, ".");
  const exclude = patterns(params, "exclude", issues);
  const type = q.get("type") ?? "any";
  if (!new RegExp(GLOB_TYPE_PATTERN).test(type)) {
    issues.push({ type: "string_pattern_mismatch", loc: ["query", "type"], msg: `String should match pattern '${GLOB_TYPE_PATTERN}'`, input: type, ctx: { pattern: GLOB_TYPE_PATTERN } });
  }
  const max = maxResults(q, issues);
  return done(issues, () => ({ pattern: pattern!, path: path!, exclude, type: type as GlobQuery["type"], max_results: max }));
}

/** A JSON body with the given required path fields: cwd (`path`), mkdir (`path`), move (`source`, `destination`). */
export function parsePathsBody<K extends string>(text: string | null, keys: readonly K[]): Parsed<Record<K, string>> {
  const issues: Issues = [];
  const body = parseJsonBody(text, issues);
  const out = {} as Record<K, string>;
  if (body) for (const k of keys) out[k] = bPath(body, k, issues)!;
  return done(issues, () => out);
}

/** `POST /files/write`: `{path, content}`. */
export function parseWriteBody(text: string | null): Parsed<{ path: string; content: string }> {
  const issues: Issues = [];
  const body = parseJsonBody(text, issues);
  const path = body ? bPath(body, "path", issues) : null;
  const content = body ? str(body, "content", issues, true) : null;
  return done(issues, () => ({ path: path!, content: content! }));
}

/** `POST /files/replace`: `{path, replacements: [{target, replacement, start_line?, end_line?, allow_multiple?}]}`. */
export function parseReplaceBody(text: string | null): Parsed<{ path: string; replacements: Replacement[] }> {
  const issues: Issues = [];
  const body = parseJsonBody(text, issues);
  const path = body ? bPath(body, "path", issues) : null;
  const replacements: Replacement[] = [];
  if (body) {
    const raw = body.replacements;
    if (raw === undefined) issues.push({ type: "missing", loc: ["body", "replacements"], msg: "Field required", input: body });
    else if (!Array.isArray(raw)) issues.push({ type: "list_type", loc: ["body", "replacements"], msg: "Input should be a valid list", input: raw });
    else if (raw.length > REPLACEMENTS_MAX) issues.push({ type: "too_long", loc: ["body", "replacements"], msg: `List should have at most ${REPLACEMENTS_MAX} items`, input: raw.length });
    else {
      raw.forEach((item: unknown, i) => {
        const loc = ["body", "replacements", i];
        if (typeof item !== "object" || item === null || Array.isArray(item)) {
          issues.push({ type: "model_attributes_type", loc, msg: "Input should be a valid dictionary or object to extract fields from", input: item });
          return;
        }
        const o = item as Record<string, unknown>;
        const field = (k: string) => {
          const before = issues.length;
          const v = str(o, k, issues, true);
          for (const issue of issues.slice(before)) issue.loc = [...loc, k];
          return v;
        };
        const target = field("target");
        const replacement = field("replacement");
        const start = bodyInt(o.start_line, [...loc, "start_line"], issues, 1);
        const end = bodyInt(o.end_line, [...loc, "end_line"], issues, 1);
        const multiple = o.allow_multiple ?? false;
        if (typeof multiple !== "boolean") issues.push({ type: "bool_type", loc: [...loc, "allow_multiple"], msg: "Input should be a valid boolean", input: multiple });
        if (target !== null && replacement !== null) replacements.push({ target, replacement, start_line: start, end_line: end, allow_multiple: multiple === true });
      });
    }
  }
  return done(issues, () => ({ path: path!, replacements }));
}

/** `POST /files/archive`: `{paths: [str]}` (an empty list is the route's own 400). */
export function parseArchiveBody(text: string | null): Parsed<{ paths: string[] }> {
  const issues: Issues = [];
  const body = parseJsonBody(text, issues);
  const paths: string[] = [];
  if (body) {
    const raw = body.paths;
    if (raw === undefined) issues.push({ type: "missing", loc: ["body", "paths"], msg: "Field required", input: body });
    else if (!Array.isArray(raw)) issues.push({ type: "list_type", loc: ["body", "paths"], msg: "Input should be a valid list", input: raw });
    else if (raw.length > ARCHIVE_PATHS_MAX) issues.push({ type: "too_long", loc: ["body", "paths"], msg: `List should have at most ${ARCHIVE_PATHS_MAX} items`, input: raw.length });
    else
      raw.forEach((p: unknown, i) => {
        if (typeof p !== "string") issues.push({ type: "string_type", loc: ["body", "paths", i], msg: "Input should be a valid string", input: p });
        else {
          pathIssue(p, ["body", "paths", i], issues);
          paths.push(p);
        }
      });
  }
  return done(issues, () => ({ paths }));
}
