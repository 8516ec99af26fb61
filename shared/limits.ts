/**
 * Every operator-set limit, origin list and switch of edgetty, in one place: its variable,
 * default, range and unit. The Worker reads these from its variables (wrangler.toml `[vars]`,
 * `.dev.vars`, or the local stack's `edgeVars`), the agent from its environment. A value that is present but not
 * valid is an error naming the variable (never a silent fallback to the default): the local
 * stack and the agent refuse to start, and the Worker answers every request with 500
 * CONFIG_INVALID until it is fixed. docs/deployment.md#limits renders this table (a test keeps
 * the two in step).
 *
 * Buffers tuned for flow control (the edge's output ring, the agent's unacknowledged-output cap)
 * are named constants beside their code, not settings: the benchmark measures them.
 */

/** An integer setting. */
export interface IntSetting {
  kind: "int";
  /** The environment / Worker variable. */
  variable: string;
  default: number;
  min: number;
  max: number;
  unit: string;
  doc: string;
}

/**
 * A comma-separated list of web origins (`https://host[:port]`), or `*` for any. Absent or empty:
 * `default` (none when unset); `none` lists no origin (the way to turn a non-empty default off).
 */
export interface OriginsSetting {
  kind: "origins";
  variable: string;
  default?: readonly string[];
  doc: string;
}

/** The value of an origins setting that lists no origin. */
export const NO_ORIGINS = "none";

/** An on/off setting: `on`/`off` (also `true`/`false`, `1`/`0`), case-insensitive. */
export interface FlagSetting {
  kind: "flag";
  variable: string;
  default: boolean;
  doc: string;
}

/** The spellings a flag setting accepts, by the value they mean. */
const FLAG_VALUES: Readonly<Record<string, boolean>> = { on: true, true: true, "1": true, off: false, false: false, "0": false };

export type Setting = IntSetting | OriginsSetting | FlagSetting;

const DAY_S = 24 * 60 * 60;

/** The Worker's settings, by the name its code uses. */
export const EDGE_SETTINGS = {
  maxClients: { kind: "int", variable: "EDGETTY_MAX_CLIENTS", default: 32, min: 1, max: 1024, unit: "clients", doc: "clients attached to one terminal at once (403 MAX_CLIENTS_REACHED past it)" },
  maxSessionsPerServer: { kind: "int", variable: "EDGETTY_MAX_SESSIONS_PER_SERVER", default: 256, min: 1, max: 4096, unit: "sessions", doc: "sessions one server may hold (429 TOO_MANY_SESSIONS past it)" },
  idleTimeoutS: { kind: "int", variable: "EDGETTY_IDLE_TIMEOUT_S", default: 0, min: 0, max: 30 * DAY_S, unit: "seconds", doc: "remove a terminal this long after its last client left (0: never)" },
  ephemeralIdleTimeoutS: { kind: "int", variable: "EDGETTY_EPHEMERAL_IDLE_TIMEOUT_S", default: 300, min: 0, max: 30 * DAY_S, unit: "seconds", doc: "the same for ephemeral terminals" },
  allowedOrigins: { kind: "origins", variable: "EDGETTY_ALLOWED_ORIGINS", doc: "origins besides the edge's own allowed to open WebSockets (`*`: any)" },
  clientWsDeflate: { kind: "flag", variable: "EDGETTY_CLIENT_WS_DEFLATE", default: false, doc: "accept `permessage-deflate` on client terminal WebSockets when the client offers it (browsers always do): fewer bytes on slow links, for more latency and edge CPU per client (docs/protocol.md#compression-permessage-deflate-per-link); agent links never use it" },
  corsOrigins: { kind: "origins", variable: "EDGETTY_CORS_ORIGINS", default: ["*"], doc: "origins allowed to call the HTTP APIs cross-origin with a bearer token (CORS; any by default, as the reference Open Terminal; `none` turns CORS off); never with credentials, so a cookie never acts cross-origin" },
} as const satisfies Record<string, Setting>;

/** The agent's settings. */
export const AGENT_SETTINGS = {
  maxSessions: { kind: "int", variable: "EDGETTY_AGENT_MAX_SESSIONS", default: 256, min: 1, max: 4096, unit: "sessions", doc: "PTY sessions one agent runs at once (429 TOO_MANY_SESSIONS past it)" },
  forkPtys: { kind: "flag", variable: "EDGETTY_AGENT_FORK_PTYS", default: false, doc: "spawn PTYs with node-pty's fork(2) even where the posix_spawn helper (native/pty_spawn.c) was built: slower, for comparison or a host where the helper misbehaves" },
} as const satisfies Record<string, Setting>;

type Parsed<S extends Record<string, Setting>> = { [K in keyof S]: S[K] extends IntSetting ? number : S[K] extends FlagSetting ? boolean : string[] };

/** A setting was present but invalid; `problems` names each variable and what is wrong. */
export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(
    readonly problems: string[],
    /** The variables at fault, without their values (for answers to callers). */
    readonly variables: string[],
  ) {
    super(`invalid configuration: ${problems.join("; ")}`);
  }
}

function parseInt(setting: IntSetting, raw: string, problems: string[]): number {
  const text = raw.trim();
  if (!/^\d{1,16}$/.test(text)) {
    problems.push(`${setting.variable}=${JSON.stringify(raw.slice(0, 40))} is not a whole number of ${setting.unit}`);
    return setting.default;
  }
  const n = Number(text);
  if (n < setting.min || n > setting.max) problems.push(`${setting.variable}=${n} is outside ${setting.min}-${setting.max} ${setting.unit}`);
  return n;
}

function parseOrigins(setting: OriginsSetting, raw: string, problems: string[]): string[] {
  if (raw.trim().toLowerCase() === NO_ORIGINS) return [];
  const entries = raw.split(",").map((o) => o.trim()).filter(Boolean);
  for (const entry of entries) {
    if (entry === "*") continue;
    let origin: string | null = null;
    try {
      origin = new URL(entry).origin;
    } catch {
      /* reported below */
    }
    if (origin !== entry || !/^https?:/.test(entry)) {
      problems.push(`${setting.variable} entry ${JSON.stringify(entry.slice(0, 80))} is not an origin like https://example.com[:port] or *`);
    }
  }
  return entries;
}

function parseFlag(setting: FlagSetting, raw: string, problems: string[]): boolean {
  const value = FLAG_VALUES[raw.trim().toLowerCase()];
  if (value === undefined) problems.push(`${setting.variable}=${JSON.stringify(raw.slice(0, 40))} is not on or off`);
  return value ?? setting.default;
}

/**
 * Parses `settings` from `vars`: absent or empty variables take their defaults; anything else
 * must be valid. Throws ConfigError listing every problem at once.
 */
export function parseSettings<S extends Record<string, Setting>>(settings: S, vars: Record<string, unknown>): Parsed<S> {
  const problems: string[] = [];
  const out: Record<string, number | boolean | string[]> = {};
  for (const [name, setting] of Object.entries(settings)) {
    const value = vars[setting.variable];
    const raw = value === undefined || value === null ? "" : String(value);
    if (setting.kind === "int") out[name] = raw.trim() === "" ? setting.default : parseInt(setting, raw, problems);
    else if (setting.kind === "flag") out[name] = raw.trim() === "" ? setting.default : parseFlag(setting, raw, problems);
    else out[name] = raw.trim() === "" ? [...(setting.default ?? [])] : parseOrigins(setting, raw, problems);
  }
  if (problems.length > 0) throw new ConfigError(problems, [...new Set(problems.map((p) => /^[A-Z0-9_]+/.exec(p)![0]))]);
  return out as Parsed<S>;
}

/** The settings as a Markdown table (docs/deployment.md#limits holds this table). */
export function settingsTable(settings: Record<string, Setting>): string {
  const rows = Object.values(settings).map((s) =>
    s.kind === "int"
      ? `| \`${s.variable}\` | ${s.default} | ${s.min}–${s.max} ${s.unit} | ${s.doc} |`
      : s.kind === "flag"
        ? `| \`${s.variable}\` | ${s.default ? "on" : "off"} | \`on\` or \`off\` | ${s.doc} |`
        : `| \`${s.variable}\` | ${s.default?.length ? `\`${s.default.join(",")}\`` : "none"} | origins, comma-separated, \`*\` or \`${NO_ORIGINS}\` | ${s.doc} |`,
  );
  return ["| Variable | Default | Valid | Meaning |", "| --- | --- | --- | --- |", ...rows].join("\n");
}
