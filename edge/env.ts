/**
 * The Worker's bindings and the configuration read from them (shared/limits.ts defines and
 * validates every limit), parsed once per env object into a plain object passed to whoever needs
 * it (config is passed in, never read from globals).
 */
import type { HostDO } from "./host-do.ts";
import type { TerminalDO } from "./terminal-do.ts";
import { ApiError } from "../shared/errors.ts";
import { ConfigError, EDGE_SETTINGS, parseSettings } from "../shared/limits.ts";
import { log } from "./log.ts";

export interface Env {
  HOST: DurableObjectNamespace<HostDO>;
  TERMINAL: DurableObjectNamespace<TerminalDO>;
  DB: D1Database;
  ASSETS?: Fetcher;
  /** Admin bearer token (a secret; `npm start` generates one). */
  EDGETTY_API_KEY?: string;
  /** Cloudflare Access team (`myteam` or `myteam.cloudflareaccess.com`); with the AUD, Access emails identify users. */
  EDGETTY_ACCESS_TEAM_DOMAIN?: string;
  /** Secret that encrypts URL servers' keys in D1 (default: the API key). */
  EDGETTY_SECRETS_KEY?: string;
  /** The Access application's AUD tag. */
  EDGETTY_ACCESS_AUD?: string;
  /** Server addressed by the un-prefixed routes. */
  EDGETTY_DEFAULT_SERVER?: string;
  /** The limits, origin lists and switches: see EDGE_SETTINGS in shared/limits.ts. */
  EDGETTY_MAX_CLIENTS?: string;
  EDGETTY_MAX_SESSIONS_PER_SERVER?: string;
  EDGETTY_ALLOWED_ORIGINS?: string;
  EDGETTY_CORS_ORIGINS?: string;
  EDGETTY_IDLE_TIMEOUT_S?: string;
  EDGETTY_EPHEMERAL_IDLE_TIMEOUT_S?: string;
  EDGETTY_CLIENT_WS_DEFLATE?: string;
}

export interface Config {
  defaultServer: string;
  maxClients: number;
  maxSessionsPerServer: number;
  allowedOrigins: string[];
  corsOrigins: string[];
  idleTimeoutMs: number;
  ephemeralIdleTimeoutMs: number;
  /** Accept permessage-deflate on client WebSockets (ws-compression.ts); off by default. */
  clientWsDeflate: boolean;
}

export const DEFAULT_MAX_CLIENTS = EDGE_SETTINGS.maxClients.default;
export const DEFAULT_EPHEMERAL_IDLE_TIMEOUT_S = EDGE_SETTINGS.ephemeralIdleTimeoutS.default;

/** Parsed configs by the env object they came from (one per isolate in practice). */
const parsed = new WeakMap<object, Config>();
/** The error of a bad configuration, by env object (logged once, thrown on every read). */
const invalid = new WeakMap<object, ApiError>();

/**
 * The Worker's configuration from its variables (shared/limits.ts lists them). Throws ApiError
 * 500 CONFIG_INVALID naming every bad variable: a wrong value is never silently replaced.
 */
export function readConfig(env: Env): Config {
  const cached = parsed.get(env);
  if (cached) return cached;
  const known = invalid.get(env);
  if (known) throw known;
  let settings;
  try {
    settings = parseSettings(EDGE_SETTINGS, env as unknown as Record<string, unknown>);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    log("error", "config.invalid", error.message, { problems: error.problems });
    // Callers (who may not be signed in) learn which variables are wrong, not their values.
    const apiError = new ApiError(500, "CONFIG_INVALID", `The edge is misconfigured: invalid ${error.variables.join(", ")} (see its logs)`);
    invalid.set(env, apiError);
    throw apiError;
  }
  const config: Config = {
    defaultServer: env.EDGETTY_DEFAULT_SERVER || "local",
    maxClients: settings.maxClients,
    maxSessionsPerServer: settings.maxSessionsPerServer,
    allowedOrigins: settings.allowedOrigins,
    corsOrigins: settings.corsOrigins,
    idleTimeoutMs: settings.idleTimeoutS * 1000,
    ephemeralIdleTimeoutMs: settings.ephemeralIdleTimeoutS * 1000,
    clientWsDeflate: settings.clientWsDeflate,
  };
  parsed.set(env, config);
  return config;
}

/** Terminal-level limits handed to a TerminalDO with its session. */
export interface TerminalConfig {
  maxClients: number;
  idleTimeoutMs: number;
}

export function terminalConfig(config: Config, ephemeral: boolean): TerminalConfig {
  return {
    maxClients: config.maxClients,
    idleTimeoutMs: ephemeral ? config.ephemeralIdleTimeoutMs : config.idleTimeoutMs,
  };
}
