/**
 * The local stack's state folder as the CLI sees it: the secrets `edgetty start` generates once
 * and keeps there, the record of the URL it serves while it runs, and how the client commands
 * (`exec`, `user`, `grant` …) find an edge URL and API key from flags, environment and that folder.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { processStartTime } from "../agent/launch.ts";

export interface StoredSecrets {
  apiKey: string;
  agentToken: string;
}

/** The state folder when neither `--state-dir` nor EDGETTY_STATE_DIR names one. */
export const DEFAULT_STATE_DIR = ".edgetty";
/** The edge's port when nothing else says where it is. */
const DEFAULT_PORT = 8787;
/** Written by `edgetty start` while it runs: `{"url", "pid", "started"}`. */
const STACK_FILE = "stack.json";

/** A random URL-safe secret (24 bytes) that never starts with `-`, so `--api-key KEY` always parses. */
export function cliToken(): string {
  for (;;) {
    const token = randomBytes(24).toString("base64url");
    if (!token.startsWith("-")) return token;
  }
}

/** The state folder, absolute: `--state-dir`, else EDGETTY_STATE_DIR, else `.edgetty`. */
export function stateDirOf(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return resolve(flag ?? env["EDGETTY_STATE_DIR"] ?? DEFAULT_STATE_DIR);
}

/** Writes `value` as JSON to `file`, owner-only (mode 0600 also when the file was already there). */
function writePrivateJson(file: string, value: unknown): void {
  writeFileSync(file, JSON.stringify(value, null, 2) + "\n", { mode: 0o600 });
  chmodSync(file, 0o600);
}

/**
 * The local stack's API key and agent token, kept in `<stateDir>/secrets.json` (mode 0600) so a
 * restart keeps them; `apiKey` given on the command line replaces the stored one.
 */
export function loadSecrets(stateDir: string, apiKey: string | undefined): StoredSecrets {
  const file = join(stateDir, "secrets.json");
  let stored: Partial<StoredSecrets> = {};
  if (existsSync(file)) {
    try {
      stored = JSON.parse(readFileSync(file, "utf8")) as Partial<StoredSecrets>;
    } catch {
      stored = {};
    }
  }
  const secrets = { apiKey: apiKey ?? stored.apiKey ?? cliToken(), agentToken: stored.agentToken ?? cliToken() };
  writePrivateJson(file, secrets);
  return secrets;
}

/**
 * Records in `<stateDir>/stack.json` (mode 0600) that process `pid` serves the stack at `url`,
 * with the process's start time (clock ticks since boot), so that a later process given the same
 * pid is not taken for it.
 */
export function recordStack(stateDir: string, url: string, pid = process.pid): void {
  writePrivateJson(join(stateDir, STACK_FILE), { url, pid, started: processStartTime(pid) });
}

/** Removes the record of `recordStack` if it is process `pid`'s (another run's record stays). */
export function forgetStack(stateDir: string, pid = process.pid): void {
  const file = join(stateDir, STACK_FILE);
  if (readStackRecord(file)?.pid === pid) rmSync(file, { force: true });
}

interface StackRecord {
  url: string;
  pid: number;
  /** The recording process's start time; null when it could not be read. */
  started: number | null;
}

function readStackRecord(file: string): StackRecord | null {
  try {
    const parsed = JSON.parse(readFileSync(file, "utf8")) as { url?: unknown; pid?: unknown; started?: unknown };
    if (typeof parsed.url !== "string" || !Number.isInteger(parsed.pid)) return null;
    return { url: parsed.url, pid: parsed.pid as number, started: Number.isInteger(parsed.started) ? (parsed.started as number) : null };
  } catch {
    return null;
  }
}

/**
 * The recording process still runs: its pid answers and, where the record has a start time, the
 * process under that pid started then (a pid reused after a SIGKILL is another process, and the
 * state folder's key must not go to whatever it serves).
 */
function isRunning(record: StackRecord): boolean {
  if (record.pid <= 0) return false;
  try {
    process.kill(record.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false; // EPERM: there, but someone else's
  }
  return record.started === null || processStartTime(record.pid) === record.started;
}

/**
 * The URL of the stack `edgetty start` runs from `stateDir`, or undefined when none was recorded
 * or the process that recorded it is gone (a record a SIGKILL left behind is ignored, even once
 * its pid is reused).
 */
export function runningStackUrl(stateDir: string): string | undefined {
  const record = readStackRecord(join(stateDir, STACK_FILE));
  return record && isRunning(record) ? record.url : undefined;
}

/** The client commands' flags that say where the edge is (parseArgs options). */
export const CLIENT_OPTIONS = {
  edge: { type: "string" },
  "api-key": { type: "string" },
  "state-dir": { type: "string" },
} as const;

/** Usage lines for CLIENT_OPTIONS, shared by every client command's help. */
export const CLIENT_OPTIONS_USAGE = `  --edge URL        the edge (else EDGETTY_EDGE, else the stack started from --state-dir)
  --api-key KEY     an admin API key or token (else EDGETTY_API_KEY, else the state dir's key)
  --state-dir DIR   the state folder of \`edgetty start\` (else EDGETTY_STATE_DIR, else .edgetty)
`;

/** The client flags as parsed. */
export interface ClientFlags {
  edge?: string | undefined;
  "api-key"?: string | undefined;
  "state-dir"?: string | undefined;
}

/** Why the client commands cannot say where or as whom to call: printed with the usage, exit 2. */
export class ClientConfigError extends Error {}

/** True when both URLs parse and name the same origin (scheme, host and port). */
function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

/** The API key in a state folder's secrets.json, if any; a file that is not JSON is refused. */
function storedApiKey(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new ClientConfigError(`cannot read ${file}: ${(error as Error).message} (pass --api-key, or remove the file and run \`edgetty start\` again)`);
  }
  const key = typeof parsed === "object" && parsed !== null ? (parsed as { apiKey?: unknown }).apiKey : undefined;
  return typeof key === "string" && key !== "" ? key : undefined;
}

/**
 * Edge URL and API key for the client commands, each from its flag, else the environment
 * (EDGETTY_EDGE, EDGETTY_API_KEY), else the state folder of a stack run by `edgetty start`
 * (the URL it recorded while running, the key in its secrets.json); the URL falls back to
 * `http://127.0.0.1:${EDGETTY_PORT ?? 8787}`. The state folder's key goes only to that stack's
 * own URL (or the local default): an edge named by `--edge` or EDGETTY_EDGE is never sent the
 * local stack's admin key, it needs a key of its own.
 */
export function resolveClient(flags: ClientFlags, env: NodeJS.ProcessEnv): ResolvedClient {
  const stateDir = stateDirOf(flags["state-dir"], env);
  const file = join(stateDir, "secrets.json");
  const recorded = runningStackUrl(stateDir);
  const local = recorded ?? `http://127.0.0.1:${env["EDGETTY_PORT"] ?? DEFAULT_PORT}`;
  const named = flags.edge ?? env["EDGETTY_EDGE"];
  // The URL is only a guess when no running stack recorded one: say so if it does not answer.
  const guessed = named === undefined && recorded === undefined ? { unreachableHint: `no stack is running from ${stateDir}: start it with \`edgetty start --state-dir ${stateDir}\`, or name the edge with --edge URL` } : {};
  const edge = named ?? local;
  const apiKey = flags["api-key"] ?? env["EDGETTY_API_KEY"] ?? (named === undefined || sameOrigin(named, local) ? storedApiKey(file) : undefined);
  if (!apiKey) {
    throw new ClientConfigError(
      named !== undefined && !sameOrigin(named, local)
        ? `no API key for ${named}: pass --api-key KEY or set EDGETTY_API_KEY (the local stack's key is not sent to another edge)`
        : `no API key: pass --api-key KEY, set EDGETTY_API_KEY, or pass --state-dir DIR of a stack started with \`edgetty start --state-dir DIR\` (no key in ${file})`,
    );
  }
  return { edge, apiKey, ...guessed };
}

/** Where and as whom the client commands call; `unreachableHint` is added to a "cannot reach" error. */
export interface ResolvedClient {
  edge: string;
  apiKey: string;
  unreachableHint?: string;
}
