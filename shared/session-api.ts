/**
 * The terminal session API's HTTP shapes (seed 002: `/api/v1/terminal/{sessions,create,…}`), as
 * the edge answers them (edge/terminal-api.ts, edge/host-do.ts) and the typed client sends and
 * reads them (client/). The WebSocket's frames are shared/links/client.ts; command records are
 * shared/history.ts. Field rules are in docs/api.md.
 */
import type { ShellName } from "./validation.ts";

/** A share link as `GET /api/v1/terminal/share/{terminal_id}` lists it: never its token (times in epoch ms). */
export interface ShareLinkListing {
  id: string;
  server_id: string;
  terminal_id: number;
  /** Who made it (the audit log's actor form). */
  created_by: string;
  created_at: number;
  expires_at: number;
}

/** One item of `GET /api/v1/terminal/sessions`. */
export interface SessionListing {
  id: number;
  shell: string;
  cwd: string;
  /** ISO 8601. */
  started_at: string;
  /** The last `history_limit` command lines, oldest first. */
  command_history: string[];
  clients: number;
  agent_online: boolean;
  ephemeral: boolean;
  cols?: number;
  rows?: number;
  title?: string;
  display?: string;
}

/** The body of `POST /api/v1/terminal/create` (docs/api.md lists each field's rules and errors). */
export interface CreateSessionRequest {
  /** 1–65535 (string or number); required unless `ephemeral`. */
  terminal_id?: number | string;
  /** A free id in 40000–65535, removed after the idle time without clients. */
  ephemeral?: boolean;
  shell?: ShellName;
  user?: string;
  cwd?: string;
  cwd_auto_create?: boolean;
  /** `["KEY=VALUE", …]`, one `"KEY=VALUE"`, or `{KEY: VALUE}`; at most 64. */
  env?: string[] | string | Record<string, string>;
  startup_script?: string;
  welcome?: boolean;
  debug?: boolean;
  display?: string;
  wait_until_display?: boolean;
  /** Seconds, at most 3600. */
  wait_timeout?: number;
  desktop?: boolean;
  desktop_env?: "xfce" | "mate";
  /** 1–1000, default 80×24. */
  cols?: number;
  rows?: number;
  ssh_host?: string;
  ssh_user?: string;
  ssh_port?: number | string;
  ssh_password?: string;
  /** Base64 of a PEM/OpenSSH private key. */
  ssh_key?: string;
  socks5_host?: string;
  socks5_port?: number | string;
  socks5_user?: string;
  socks5_pass?: string;
  /** Follow this process's output instead of starting a shell. */
  pid?: number;
}

/** The answer of `POST /api/v1/terminal/create`. */
export interface CreateSessionResult {
  status: "created" | "exists";
  terminal_id: number;
  /** The shell's name; `ssh` for SSH sessions, `attach:<name>` for PID attach. */
  shell: string;
  display?: string;
}

/** The answer of `DELETE /api/v1/terminal/{terminal_id}`. */
export interface DeleteSessionResult {
  status: "deleted";
  terminal_id: number;
}
