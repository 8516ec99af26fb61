/**
 * Field checks in pydantic v2's lax mode, as the reference's models and `Query` parameters apply
 * them: each check appends FastAPI-shaped issues to a list, so one request reports every bad
 * field at once. Used by the execute and file validators.
 */
import { validationError, type Parsed, type ValidationIssue } from "./open-terminal-errors.ts";
import { RESERVED_ENV_KEYS } from "./validation.ts";

export type Issues = ValidationIssue[];
export type Loc = (string | number)[];

/**
 * Query parameters as FastAPI sees them: the last value of a repeated key wins, and the
 * reference's middleware drops any parameter whose value is the literal `null`.
 */
export function queryView(params: URLSearchParams): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of params) {
    if (v.toLowerCase() === "null") out.delete(k);
    else out.set(k, v);
  }
  return out;
}

const BOOL_TRUE = new Set(["1", "on", "t", "true", "y", "yes"]);
const BOOL_FALSE = new Set(["0", "off", "f", "false", "n", "no"]);
const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
const INT_RE = /^[+-]?\d+$/;

/** A boolean query parameter (`true`/`1`/`yes`…); absent → `fallback`. */
export function queryBool(q: Map<string, string>, name: string, issues: Issues, fallback = false): boolean {
  const raw = q.get(name);
  if (raw === undefined) return fallback;
  const v = raw.trim().toLowerCase();
  if (BOOL_TRUE.has(v)) return true;
  if (!BOOL_FALSE.has(v)) {
    issues.push({ type: "bool_parsing", loc: ["query", name], msg: "Input should be a valid boolean, unable to interpret input", input: raw });
    return fallback;
  }
  return false;
}

function bounds(value: number, raw: unknown, loc: Loc, issues: Issues, ge?: number, le?: number): boolean {
  if (ge !== undefined && !(value >= ge)) {
    issues.push({ type: "greater_than_equal", loc, msg: `Input should be greater than or equal to ${ge}`, input: raw, ctx: { ge } });
    return false;
  }
  if (le !== undefined && !(value <= le)) {
    issues.push({ type: "less_than_equal", loc, msg: `Input should be less than or equal to ${le}`, input: raw, ctx: { le } });
    return false;
  }
  return true;
}

/** A float from a JSON value or query string; undefined/null → null. */
export function laxFloat(raw: unknown, loc: Loc, issues: Issues, ge?: number, le?: number): number | null {
  if (raw === undefined || raw === null) return null;
  let value: number;
  if (typeof raw === "number") value = raw;
  else if (typeof raw === "boolean") value = raw ? 1 : 0;
  else if (typeof raw === "string" && NUMBER_RE.test(raw.trim())) value = Number(raw.trim());
  else {
    const parsing = typeof raw === "string";
    issues.push({
      type: parsing ? "float_parsing" : "float_type",
      loc,
      msg: parsing ? "Input should be a valid number, unable to parse string as a number" : "Input should be a valid number",
      input: raw,
    });
    return null;
  }
  if (!Number.isFinite(value)) {
    issues.push({ type: "finite_number", loc, msg: "Input should be a finite number", input: raw });
    return null;
  }
  return bounds(value, raw, loc, issues, ge, le) ? value : null;
}

/** An integer query parameter within [ge, le]; absent → null. */
export function queryInt(raw: string | undefined, loc: Loc, issues: Issues, ge: number, le?: number): number | null {
  if (raw === undefined) return null;
  const v = raw.trim();
  if (!INT_RE.test(v)) {
    issues.push({ type: "int_parsing", loc, msg: "Input should be a valid integer, unable to parse string as an integer", input: raw });
    return null;
  }
  // Past 2^53 every integer means the same here (an offset past any output, a tail or line past
  // any end), as Python's unbounded ints do for the reference: clamped so it stays an exact,
  // finite JSON number (a 400-digit one would be Infinity, sent on as `null`).
  const value = Math.min(Number(v), Number.MAX_SAFE_INTEGER);
  return bounds(value, raw, loc, issues, ge, le) ? value : null;
}

/** An integer body field within [ge, le]; absent or null → null. */
export function bodyInt(raw: unknown, loc: Loc, issues: Issues, ge: number): number | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw === "string") return queryInt(raw, loc, issues, ge);
  if (typeof raw !== "number" || !Number.isInteger(raw)) {
    issues.push({ type: "int_type", loc, msg: "Input should be a valid integer", input: raw });
    return null;
  }
  return bounds(raw, raw, loc, issues, ge) ? raw : null;
}

export function hasNul(s: string): boolean {
  return s.includes("\0");
}

/** A too-long string; the echoed `input` is cut short so the error stays small. */
export function tooLong(loc: Loc, value: string, max: number, unit: string): ValidationIssue {
  return { type: "string_too_long", loc, msg: `String should have at most ${max} ${unit}`, input: value.slice(0, 64), ctx: { max_length: max } };
}

export function nulIssue(loc: Loc, input: unknown): ValidationIssue {
  return { type: "value_error", loc, msg: "Value error, must not contain NUL characters", input, ctx: { error: "embedded null byte" } };
}

/** A string field of a JSON body (`where` "body") or of the query; `required` reports `missing`. */
export function str(obj: Record<string, unknown>, key: string, issues: Issues, required: boolean, where: "body" | "query" = "body"): string | null {
  const raw = obj[key];
  if (raw === undefined || (raw === null && !required)) {
    if (required) issues.push({ type: "missing", loc: [where, key], msg: "Field required", input: where === "body" ? obj : null });
    return null;
  }
  if (typeof raw !== "string") {
    issues.push({ type: "string_type", loc: [where, key], msg: "Input should be a valid string", input: raw });
    return null;
  }
  return raw;
}

/** UTF-8 length of `s` without allocating. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** `env`: a `{str: str}` dictionary of legal environment variables (values of at most `maxValueChars`), or null. */
export function envDict(raw: unknown, issues: Issues, maxValueChars = Infinity): Record<string, string> | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== "object" || Array.isArray(raw)) {
    issues.push({ type: "dict_type", loc: ["body", "env"], msg: "Input should be a valid dictionary", input: raw });
    return null;
  }
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof v !== "string") {
      issues.push({ type: "string_type", loc: ["body", "env", k], msg: "Input should be a valid string", input: v });
    } else if (k === "" || k.includes("=") || hasNul(k) || hasNul(v) || RESERVED_ENV_KEYS.has(k)) {
      // (RESERVED_ENV_KEYS: names the link's records cannot carry, refused rather than lost.)
      const msg = "Value error, illegal environment variable name or value";
      issues.push({ type: "value_error", loc: ["body", "env", k], msg, input: v, ctx: { error: "illegal environment variable" } });
    } else if (v.length > maxValueChars) issues.push(tooLong(["body", "env", k], v, maxValueChars, "characters"));
    else env[k] = v;
  }
  return env;
}

/** Parses a JSON request body; a missing or malformed body is a 422 issue as in FastAPI. */
export function parseJsonBody(text: string | null, issues: Issues): Record<string, unknown> | null {
  if (text === null || text.trim() === "") {
    issues.push({ type: "missing", loc: ["body"], msg: "Field required", input: null });
    return null;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const message = e instanceof Error ? e.message : "Invalid JSON";
    const at = /position (\d+)/.exec(message);
    issues.push({ type: "json_invalid", loc: ["body", at ? Number(at[1]) : 0], msg: "JSON decode error", input: {}, ctx: { error: message } });
    return null;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    issues.push({ type: "model_attributes_type", loc: ["body"], msg: "Input should be a valid dictionary or object to extract fields from", input: value });
    return null;
  }
  return value as Record<string, unknown>;
}

/** The 422 for `issues`, or the value. */
export function done<T>(issues: Issues, value: () => T): Parsed<T> {
  return issues.length > 0 ? { ok: false, reply: validationError(issues) } : { ok: true, value: value() };
}
