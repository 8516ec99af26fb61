/**
 * The Worker's bindings and the configuration read from them, parsed once per request into a
 * plain object (config is passed in, never read from globals).
 */
import type { HostDO } from "./host-do.ts";
import type { TerminalDO } from "./terminal-do.ts";

export interface Env {
  HOST: DurableObjectNamespace<HostDO>;
  TERMINAL: DurableObjectNamespace<TerminalDO>;
  DB: D1Database;
  ASSETS?: Fetcher;
  /** Admin bearer token (a secret; `npm start` generates one). */
  EDGETTY_API_KEY?: string;
  /** Server addressed by the un-prefixed routes. */
  EDGETTY_DEFAULT_SERVER?: string;
  /** Most clients attached to one terminal at once. */
  EDGETTY_MAX_CLIENTS?: string;
  /** Comma-separated origins allowed to open WebSockets besides the edge's own ("*" for any). */
  EDGETTY_ALLOWED_ORIGINS?: string;
  /** Seconds a terminal may sit with no client attached before it is removed (0: never). */
  EDGETTY_IDLE_TIMEOUT_S?: string;
  /** The same for ephemeral terminals. */
  EDGETTY_EPHEMERAL_IDLE_TIMEOUT_S?: string;
}

export interface Config {
  defaultServer: string;
  maxClients: number;
  allowedOrigins: string[];
  idleTimeoutMs: number;
  ephemeralIdleTimeoutMs: number;
}

export const DEFAULT_MAX_CLIENTS = 32;
export const DEFAULT_EPHEMERAL_IDLE_TIMEOUT_S = 300;

function intVar(value: string | undefined, fallback: number): number {
  const n = value === undefined || value === "" ? NaN : Number(value);
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : fallback;
}

export function readConfig(env: Env): Config {
  return {
    defaultServer: env.EDGETTY_DEFAULT_SERVER || "local",
    maxClients: Math.max(1, intVar(env.EDGETTY_MAX_CLIENTS, DEFAULT_MAX_CLIENTS)),
    allowedOrigins: (env.EDGETTY_ALLOWED_ORIGINS ?? "")
      .split(",")
      .map((o) => o.trim())
      .filter(Boolean),
    idleTimeoutMs: intVar(env.EDGETTY_IDLE_TIMEOUT_S, 0) * 1000,
    ephemeralIdleTimeoutMs: intVar(env.EDGETTY_EPHEMERAL_IDLE_TIMEOUT_S, DEFAULT_EPHEMERAL_IDLE_TIMEOUT_S) * 1000,
  };
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
