/**
 * Validation of untrusted input shared by the edge (first line of defence, so refusals happen
 * before anything reaches an agent) and the agent (which checks again: it trusts nobody).
 */
import { ApiError } from "./errors.ts";
import type { CreateSessionParams } from "./links/control.ts";
import { MAX_TERMINAL_CELLS, PATH_MAX_CHARS } from "./links/client.ts";
import { parseKindParams } from "./kind-validation.ts";

export const TERMINAL_ID_MIN = 1;
export const TERMINAL_ID_MAX = 65_535;
/** Ephemeral terminals get a free id in this range. */
export const EPHEMERAL_ID_MIN = 40_000;
export const EPHEMERAL_ID_MAX = 65_535;

export const SHELLS = ["bash", "zsh", "fish", "sh"] as const;
export type ShellName = (typeof SHELLS)[number];

const SERVER_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const USER_NAME = /^[a-z_][a-z0-9_.-]{0,31}\$?$/i;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const DISPLAY = /^:?(\d{1,4})(\.\d{1,2})?$/;
export { PATH_MAX_CHARS };
/** Environment names refused: `__proto__` would set an object's prototype, and valibot's records drop all three. */
export const RESERVED_ENV_KEYS: ReadonlySet<string> = new Set(["__proto__", "prototype", "constructor"]);
/** Most `env=` entries accepted on one request. */
export const ENV_MAX_ENTRIES = 64;
/** Longest environment value accepted, in characters. */
export const ENV_VALUE_MAX_CHARS = 4096;
/** Longest base64 `cmd` accepted, in characters (12 KiB decoded). */
export const CMD_MAX_CHARS = 16_384;

/** True for a POSIX-ish user name (what `user` and `~name` may name). */
export function isUserName(value: string): boolean {
  return USER_NAME.test(value);
}

export function isServerId(value: string): boolean {
  return SERVER_ID.test(value);
}

/**
 * A JSON integer from `min` to `max`; null for anything else. `Number()` would take `true` as 1
 * and `[60]`, `" 60 "` or `"0x3c"` as 60 (a 1-second token from `"ttl_s": true`).
 */
export function jsonIntegerIn(value: unknown, min: number, max: number): number | null {
  return typeof value === "number" && Number.isInteger(value) && value >= min && value <= max ? value : null;
}

/** Parses a terminal id given as a number or a decimal string; null when it is not one. */
export function parseTerminalId(value: unknown): number | null {
  const text = typeof value === "number" ? String(value) : typeof value === "string" ? value.trim() : "";
  if (!/^\d{1,5}$/.test(text)) return null;
  const id = Number(text);
  return id >= TERMINAL_ID_MIN && id <= TERMINAL_ID_MAX ? id : null;
}

export function requireTerminalId(value: unknown): number {
  if (value === undefined || value === null || value === "") {
    throw new ApiError(400, "MISSING_TERMINAL_ID", "terminal_id is required");
  }
  const id = parseTerminalId(value);
  if (id === null) throw new ApiError(400, "INVALID_TERMINAL_ID", "Terminal ID must be numeric 1-65535");
  return id;
}

/** Booleans as the seed accepts them: true/false, "true"/"1"/"" (present) and "false"/"0". */
export function parseBool(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined || value === null) return fallback;
  if (typeof value === "boolean") return value;
  if (value === "true" || value === "1" || value === "") return true;
  if (value === "false" || value === "0") return false;
  throw new ApiError(400, "INVALID_PARAMETERS", `${name} must be a boolean`);
}

function parseSizeField(value: unknown, name: string, fallback: number): number {
  if (value === undefined || value === null || value === "") return fallback;
  const n = typeof value === "number" ? value : typeof value === "string" && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_TERMINAL_CELLS) {
    throw new ApiError(400, "INVALID_PARAMETERS", `${name} must be an integer 1-${MAX_TERMINAL_CELLS}`);
  }
  return n;
}

function optionalString(value: unknown, name: string, max: number): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string" || value.length > max || value.includes("\0")) {
    throw new ApiError(400, "INVALID_PARAMETERS", `${name} must be a string of at most ${max} characters, without NUL`);
  }
  return value;
}

function absolutePath(value: unknown, name: string): string | undefined {
  const path = optionalString(value, name, PATH_MAX_CHARS);
  if (path !== undefined && !path.startsWith("/") && !path.startsWith("~")) {
    throw new ApiError(400, "INVALID_PARAMETERS", `${name} must be an absolute path`);
  }
  return path;
}

export function parseShell(value: unknown): ShellName | undefined {
  const shell = optionalString(value, "shell", 64);
  if (shell === undefined) return undefined;
  if (!(SHELLS as readonly string[]).includes(shell)) {
    throw new ApiError(400, "INVALID_SHELL", `Unknown shell "${shell}": use one of ${SHELLS.join(", ")}`);
  }
  return shell as ShellName;
}

/** "5" or ":5" (optionally ":5.0") → ":5". */
export function parseDisplay(value: unknown): string | undefined {
  const display = optionalString(value, "display", 16);
  if (display === undefined) return undefined;
  const m = DISPLAY.exec(display);
  if (!m) throw new ApiError(400, "INVALID_PARAMETERS", "display must be a display number like 1 or :1");
  return `:${m[1]}${m[2] ?? ""}`;
}

export function parseEnvEntries(entries: readonly string[]): Record<string, string> {
  if (entries.length > ENV_MAX_ENTRIES) {
    throw new ApiError(400, "INVALID_PARAMETERS", `at most ${ENV_MAX_ENTRIES} env entries`);
  }
  const env: Record<string, string> = {};
  for (const entry of entries) {
    if (typeof entry !== "string") throw new ApiError(400, "INVALID_PARAMETERS", "env entries must be KEY=VALUE strings");
    const eq = entry.indexOf("=");
    const key = eq > 0 ? entry.slice(0, eq) : "";
    const value = entry.slice(eq + 1);
    if (!ENV_KEY.test(key)) throw new ApiError(400, "INVALID_PARAMETERS", `env entries must be KEY=VALUE with a valid name: "${entry.slice(0, 40)}"`);
    // Names a JavaScript object cannot carry as data (the link's record schema drops them): refused, not lost.
    if (RESERVED_ENV_KEYS.has(key)) throw new ApiError(400, "INVALID_PARAMETERS", `env name ${key} is not supported`);
    if (value.length > ENV_VALUE_MAX_CHARS || value.includes("\0")) {
      throw new ApiError(400, "INVALID_PARAMETERS", `env value of ${key} must be at most ${ENV_VALUE_MAX_CHARS} characters, without NUL`);
    }
    env[key] = value;
  }
  return env;
}

/**
 * A create body's `env`: a list of `KEY=VALUE` strings (the form the WebSocket query's repeated
 * `env=` takes), a single `KEY=VALUE` string, or an object `{"KEY": "VALUE"}` (the form /execute
 * takes). Values must be strings; anything else is refused with 400 INVALID_PARAMETERS, never
 * dropped. Same limits for every form (ENV_MAX_ENTRIES, ENV_VALUE_MAX_CHARS, names).
 */
export function parseEnvField(value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value === "string") return parseEnvEntries(value === "" ? [] : [value]);
  if (Array.isArray(value)) return parseEnvEntries(value as unknown[] as string[]);
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    for (const [key, v] of entries) {
      if (typeof v !== "string") throw new ApiError(400, "INVALID_PARAMETERS", `env.${key.slice(0, 40)} must be a string`);
    }
    return parseEnvEntries(entries.map(([key, v]) => `${key}=${v as string}`));
  }
  throw new ApiError(400, "INVALID_PARAMETERS", 'env must be a list of "KEY=VALUE" strings or an object of strings');
}

function parseCmd(value: unknown): string | undefined {
  const cmd = optionalString(value, "cmd", CMD_MAX_CHARS);
  if (cmd === undefined) return undefined;
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(cmd)) {
    throw new ApiError(400, "INVALID_PARAMETERS", "cmd must be base64");
  }
  return cmd;
}

/**
 * Options for a new session from a create body or a WebSocket query (already flattened into a
 * record). `env` comes from `source.env` when the source carries one (a create body: see
 * parseEnvField), else from `env`, the query's repeated `env=KEY=VALUE`. `terminalId` is the id
 * the caller resolved (ephemeral ids are allocated by the HostDO, so they arrive as 0 here and are
 * filled in later). The kind fields (SSH, SOCKS5, display wait, desktop, PID attach) are parsed
 * by kind-validation.ts.
 */
export function parseCreateParams(
  source: Record<string, unknown>,
  terminalId: number,
  env: readonly string[] = [],
): CreateSessionParams {
  const user = optionalString(source.user, "user", 33);
  if (user !== undefined && !USER_NAME.test(user)) {
    throw new ApiError(400, "INVALID_USER", `"${user}" is not a valid user name`);
  }
  const params: CreateSessionParams = {
    terminal_id: terminalId,
    ephemeral: parseBool(source.ephemeral, "ephemeral", false),
    cwd_auto_create: parseBool(source.cwd_auto_create, "cwd_auto_create", false),
    welcome: parseBool(source.welcome, "welcome", false),
    debug: parseBool(source.debug, "debug", false),
    cols: parseSizeField(source.cols, "cols", 80),
    rows: parseSizeField(source.rows, "rows", 24),
    env: source.env !== undefined && source.env !== null ? parseEnvField(source.env) : parseEnvEntries(env),
  };
  const shell = parseShell(source.shell);
  const cwd = absolutePath(source.cwd, "cwd");
  const startup = absolutePath(source.startup_script, "startup_script");
  const display = parseDisplay(source.display);
  const cmd = parseCmd(source.cmd);
  if (shell) params.shell = shell;
  if (user) params.user = user;
  if (cwd) params.cwd = cwd;
  if (startup) params.startup_script = startup;
  if (display) params.display = display;
  if (cmd) params.cmd = cmd;
  parseKindParams(source, params);
  return params;
}
