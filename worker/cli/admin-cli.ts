/**
 * `edgetty server|user|group|grant|token|audit …`: the identity admin API (edge/identity-admin-api.ts)
 * from the command line, against any edge URL with an admin token. Answers print as aligned
 * columns, or as the API's JSON with `--json`. Exit codes: 0 done, 1 refused by the edge, 2 usage.
 */
import { parseArgs } from "node:util";
import { agentCommand } from "../../shared/agent-command.ts";
import { parseTerminalId } from "../../shared/validation.ts";
import { CLIENT_OPTIONS, CLIENT_OPTIONS_USAGE } from "./local-secrets.ts";

/** The summary of every admin command, in the top-level usage. */
export const ADMIN_USAGE = `  edgetty server add ID [--name NAME] [--url URL --key KEY] | list | disable ID | enable ID | remove ID
  edgetty user add ID [--name NAME] [--email EMAIL] [--role user|admin]
  edgetty user list | show ID | disable ID | enable ID | remove ID
  edgetty group add ID [--name NAME] | list | remove ID
  edgetty group member add|remove GROUP USER
  edgetty grant add --server ID [--terminal N] (--user ID | --group ID) [--access read|write]
  edgetty grant list [--server ID] | remove --server ID [--terminal N] (--user ID | --group ID)
      A grant without --terminal is on every terminal of the server: grant list shows it as *.
  edgetty token create --user ID [--name NAME] [--ttl 90d] [--read-only] [--role admin]
  edgetty token list [--user ID] | revoke TOKEN_ID
  edgetty audit [--limit N] [--before EVENT_ID]
      Servers, users, groups, grants, per-user API tokens (shown once) and the audit log.
      Common flags: --edge URL --api-key KEY --state-dir DIR --json
      \`edgetty COMMAND --help\` shows one command's flags.
`;

/** A usage mistake: printed with the command's usage, exit code 2. */
export class AdminUsageError extends Error {}

/** Where and as whom the commands run, and where they print. */
export interface AdminCliOptions {
  edge: string;
  apiKey: string;
  /** Added to the error when the edge cannot be reached (why that URL was tried). */
  unreachableHint?: string;
  out: (line: string) => void;
}

/** Every flag an admin command may take (each command accepts its own subset, ADMIN_COMMANDS). */
const FLAGS = {
  name: { type: "string" },
  email: { type: "string" },
  role: { type: "string" },
  server: { type: "string" },
  terminal: { type: "string" },
  user: { type: "string" },
  group: { type: "string" },
  access: { type: "string" },
  ttl: { type: "string" },
  url: { type: "string" },
  key: { type: "string" },
  "read-only": { type: "boolean" },
  limit: { type: "string" },
  before: { type: "string" },
} as const;

/** Flags every admin command takes: where the edge is, `--json`, `--help`. */
const COMMON_FLAGS = { ...CLIENT_OPTIONS, json: { type: "boolean" }, help: { type: "boolean", short: "h" } } as const;

type AllFlags = typeof FLAGS & typeof COMMON_FLAGS;
/** Parsed flag values: a string or boolean per flag, as its type says. */
export type AdminValues = { [K in keyof AllFlags]?: AllFlags[K]["type"] extends "boolean" ? boolean : string };

const COMMON_USAGE = `${CLIENT_OPTIONS_USAGE}  --json            print the API's JSON answer
`;

/** The admin commands: each one's own flags and usage text. */
const ADMIN_COMMANDS = {
  server: {
    flags: ["name", "url", "key"],
    usage: `usage: edgetty server add ID [--name NAME] [--url URL --key KEY]
       edgetty server list | disable ID | enable ID | remove ID

  add prints the new server's agent token (shown only then) and the command that runs its agent.
  --name NAME       the server's display name
  --url URL         with --key: a URL server, an Open Terminal server the edge proxies to
  --key KEY         that server's API key
${COMMON_USAGE}
example: edgetty server add web-01 --name "Web one"
`,
  },
  user: {
    flags: ["name", "email", "role"],
    usage: `usage: edgetty user add ID [--name NAME] [--email EMAIL] [--role user|admin]
       edgetty user list | show ID | disable ID | enable ID | remove ID

  --name NAME       display name
  --email EMAIL     e-mail address
  --role ROLE       user (the default) or admin (may use the admin API)
${COMMON_USAGE}
example: edgetty user add alice --email alice@example.com
`,
  },
  group: {
    flags: ["name"],
    usage: `usage: edgetty group add ID [--name NAME] | list | remove ID
       edgetty group member add|remove GROUP USER

  --name NAME       display name
${COMMON_USAGE}
example: edgetty group member add team-a alice
`,
  },
  grant: {
    flags: ["server", "terminal", "user", "group", "access"],
    usage: `usage: edgetty grant add --server ID [--terminal N] (--user ID | --group ID) [--access read|write]
       edgetty grant list [--server ID]
       edgetty grant remove --server ID [--terminal N] (--user ID | --group ID)

  --server ID       the server
  --terminal N      one terminal (1-65535); without it, every terminal of the server
                    (\`grant list\` shows TERMINAL_ID * for such a grant)
  --user ID, --group ID   who gets (or loses) the access
  --access ACCESS   write (the default: start, open and type in terminals) or read (watch only)
${COMMON_USAGE}
example: edgetty grant add --server local --group team-a --access read
`,
  },
  token: {
    flags: ["user", "name", "ttl", "read-only", "role"],
    usage: `usage: edgetty token create --user ID [--name NAME] [--ttl 90d] [--read-only] [--role admin]
       edgetty token list [--user ID] | revoke TOKEN_ID

  create prints the token once: store it safely.
  --user ID         the token's user
  --name NAME       a name to recognise it by
  --ttl TTL         lifetime: 90d, 12h, 30m, 45s or seconds
  --read-only       caps the token's every access at read
  --role admin      an admin token (admin only while its user's role is admin)
${COMMON_USAGE}
example: edgetty token create --user alice --ttl 30d
`,
  },
  audit: {
    flags: ["limit", "before"],
    usage: `usage: edgetty audit [--limit N] [--before EVENT_ID]

  --limit N         at most N events, newest first
  --before EVENT_ID the events before this one (the next page)
${COMMON_USAGE}
example: edgetty audit --limit 20
`,
  },
} as const satisfies Record<string, { flags: readonly (keyof typeof FLAGS)[]; usage: string }>;

/** The name of an admin command (`server`, `user`, `group`, `grant`, `token`, `audit`). */
export type AdminCommand = keyof typeof ADMIN_COMMANDS;

/** True when `command` is an admin command. */
export function isAdminCommand(command: string | undefined): command is AdminCommand {
  return command !== undefined && Object.hasOwn(ADMIN_COMMANDS, command);
}

/** One admin command's usage text: its forms, flags and an example. */
export function adminUsage(command: AdminCommand): string {
  return ADMIN_COMMANDS[command].usage;
}

/** Parses `argv` (after the command word) with the command's own flags and the common ones. */
export function parseAdminArgs(command: AdminCommand, argv: string[]): { values: AdminValues; positionals: string[] } {
  const options = { ...COMMON_FLAGS, ...Object.fromEntries(ADMIN_COMMANDS[command].flags.map((f) => [f, FLAGS[f]])) };
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: values as AdminValues, positionals };
  } catch (error) {
    throw new AdminUsageError((error as Error).message);
  }
}

/** `90d`, `12h`, `30m`, `45s` or plain seconds → seconds. */
export function parseTtl(text: string): number {
  const m = /^(\d{1,9})([smhd]?)$/.exec(text);
  if (!m) throw new AdminUsageError(`--ttl must look like 90d, 12h, 30m or 3600 (got "${text}")`);
  return Number(m[1]) * { "": 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as "" | "s" | "m" | "h" | "d"];
}

/** Control characters shown as `\xNN`: a name an admin set must not drive the reader's terminal. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

function columns(rows: Record<string, unknown>[], keys: string[]): string {
  const cell = (v: unknown) => printable(v === null || v === undefined ? "-" : Array.isArray(v) ? v.join(",") || "-" : String(v));
  const widths = keys.map((k) => Math.max(k.length, ...rows.map((r) => cell(r[k]).length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(keys.map((k) => k.toUpperCase())), ...rows.map((r) => line(keys.map((k) => cell(r[k]))))].join("\n");
}

function when(ms: unknown): string {
  return typeof ms === "number" ? new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z") : "-";
}

/** Runs one admin command with its parsed arguments; answers the process exit code. */
export async function runAdminCommand(command: AdminCommand, args: { values: AdminValues; positionals: string[] }, opts: AdminCliOptions): Promise<number> {
  const { values: v, positionals: p } = args;
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    let res: Response;
    try {
      res = await fetch(new URL(path, opts.edge), {
        method,
        headers: { Authorization: `Bearer ${opts.apiKey}`, ...(body !== undefined ? { "Content-Type": "application/json" } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (error) {
      // As `edgetty exec` says it: fetch's own "fetch failed" hides the reason in its cause.
      const reason = error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
      throw new EdgeRefusal(`cannot reach ${opts.edge}: ${reason}${opts.unreachableHint ? ` (${opts.unreachableHint})` : ""}`);
    }
    const text = await res.text();
    let json: unknown = text;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON: shown as text
    }
    if (!res.ok) {
      const message = (json as { message?: string; error?: string; detail?: string })?.message ?? (json as { error?: string }).error ?? text;
      throw new EdgeRefusal(`${res.status}: ${typeof message === "string" ? message : text}`);
    }
    return json;
  };
  const show = (value: unknown, render: () => string) => opts.out(v.json ? JSON.stringify(value, null, 2) : render());
  const principal = (): { principal_type: "user" | "group"; principal_id: string } => {
    if (v.user && !v.group) return { principal_type: "user", principal_id: v.user };
    if (v.group && !v.user) return { principal_type: "group", principal_id: v.group };
    throw new AdminUsageError("give exactly one of --user or --group");
  };
  const need = (value: string | undefined, what: string): string => {
    if (!value) throw new AdminUsageError(`${command} ${p[0] ?? ""} needs ${what}`);
    return value;
  };
  const e = encodeURIComponent;

  try {
    switch (`${command} ${p[0] ?? ""}`.trim()) {
      case "server add": {
        const sid = need(p[1], "an ID");
        if ((v.url === undefined) !== (v.key === undefined)) throw new AdminUsageError("a URL server needs both --url and --key");
        const server = (await call("PUT", `/api/v1/admin/servers/${e(sid)}`, { name: v.name })) as { id: string; token: string };
        if (v.url !== undefined) {
          const made = await call("PUT", `/api/v1/admin/servers/${e(sid)}/url`, { url: v.url, key: v.key });
          show(made, () => `created URL server ${sid} → ${(made as { url: string }).url}`);
          return 0;
        }
        show(server, () =>
          [
            `created server ${server.id}; its agent token (shown only now): ${server.token}`,
            "",
            "On the host, run:",
            `  ${agentCommand(opts.edge, server.id, server.token)}`,
          ].join("\n"),
        );
        return 0;
      }
      case "server list": {
        const servers = (await call("GET", "/api/v1/terminals/")) as Record<string, unknown>[];
        // A URL server has no agent, so "online" says nothing about it (the web app shows no state either).
        const rows = servers.map((s) => (s["kind"] === "url" ? { ...s, online: "-" } : s));
        show(servers, () => columns(rows, ["id", "name", "kind", "enabled", "online", "default"]));
        return 0;
      }
      case "server disable":
      case "server enable": {
        const server = await call("PUT", `/api/v1/admin/servers/${e(need(p[1], "an ID"))}/enabled`, { enabled: p[0] === "enable" });
        show(server, () => `${p[0]}d server ${p[1]}`);
        return 0;
      }
      case "server remove": {
        show(await call("DELETE", `/api/v1/admin/servers/${e(need(p[1], "an ID"))}`), () => `removed server ${p[1]}`);
        return 0;
      }
      case "user add": {
        const user = await call("POST", "/api/v1/admin/users", { id: need(p[1], "an ID"), name: v.name, email: v.email, role: v.role });
        show(user, () => `created user ${(user as { id: string }).id}`);
        return 0;
      }
      case "user list": {
        const users = (await call("GET", "/api/v1/admin/users")) as Record<string, unknown>[];
        show(users, () => columns(users, ["id", "name", "email", "role", "disabled"]));
        return 0;
      }
      case "user show": {
        const user = (await call("GET", `/api/v1/admin/users/${e(need(p[1], "an ID"))}`)) as Record<string, unknown>;
        show(user, () => columns([user], ["id", "name", "email", "role", "disabled"]));
        return 0;
      }
      case "user disable":
      case "user enable": {
        const user = await call("PATCH", `/api/v1/admin/users/${e(need(p[1], "an ID"))}`, { disabled: p[0] === "disable" });
        show(user, () => `${p[0]}d user ${p[1]}`);
        return 0;
      }
      case "user remove": {
        show(await call("DELETE", `/api/v1/admin/users/${e(need(p[1], "an ID"))}`), () => `removed user ${p[1]}`);
        return 0;
      }
      case "group add": {
        show(await call("POST", "/api/v1/admin/groups", { id: need(p[1], "an ID"), name: v.name }), () => `created group ${p[1]}`);
        return 0;
      }
      case "group list": {
        const groups = (await call("GET", "/api/v1/admin/groups")) as Record<string, unknown>[];
        show(groups, () => columns(groups, ["id", "name", "members"]));
        return 0;
      }
      case "group remove": {
        show(await call("DELETE", `/api/v1/admin/groups/${e(need(p[1], "an ID"))}`), () => `removed group ${p[1]}`);
        return 0;
      }
      case "group member": {
        const op = p[1];
        if (op !== "add" && op !== "remove") throw new AdminUsageError("group member add|remove GROUP USER");
        const path = `/api/v1/admin/groups/${e(need(p[2], "a GROUP"))}/members/${e(need(p[3], "a USER"))}`;
        show(await call(op === "add" ? "PUT" : "DELETE", path), () => `${op === "add" ? "added" : "removed"} ${p[3]} ${op === "add" ? "to" : "from"} ${p[2]}`);
        return 0;
      }
      case "grant add": {
        // Number() would read "#5" as NaN, sent as null: a grant on the whole server.
        const terminal = v.terminal === undefined ? undefined : parseTerminalId(v.terminal);
        if (terminal === null) throw new AdminUsageError(`--terminal must be a terminal id from 1 to 65535 (got "${v.terminal}"); leave it out for the whole server`);
        const body = { server_id: need(v.server, "--server"), terminal_id: terminal, ...principal(), access: v.access ?? "write" };
        const grant = (await call("PUT", "/api/v1/admin/grants", body)) as { server_id: string; terminal_id: number; access: string };
        show(grant, () => `granted ${grant.access} on ${grant.server_id}${grant.terminal_id ? `/${grant.terminal_id}` : ""} to ${body.principal_type} ${body.principal_id}`);
        return 0;
      }
      case "grant list": {
        const grants = (await call("GET", `/api/v1/admin/grants${v.server ? `?server_id=${e(v.server)}` : ""}`)) as Record<string, unknown>[];
        // terminal_id 0 is a grant on the whole server: every terminal of it.
        const rows = grants.map((g) => ({ ...g, terminal_id: g["terminal_id"] === 0 ? "*" : g["terminal_id"] }));
        show(grants, () => columns(rows, ["server_id", "terminal_id", "principal_type", "principal_id", "access"]));
        return 0;
      }
      case "grant remove": {
        const q = new URLSearchParams({ server_id: need(v.server, "--server"), terminal_id: v.terminal ?? "0", ...principal() });
        const removed = (await call("DELETE", `/api/v1/admin/grants?${q}`)) as { closed_websockets?: number };
        const closed = removed.closed_websockets ?? 0;
        show(removed, () => `removed grant${closed > 0 ? ` (closed ${closed} open WebSocket${closed === 1 ? "" : "s"})` : ""}`);
        return 0;
      }
      case "token create": {
        const body = { user_id: need(v.user, "--user"), name: v.name, role: v.role, ttl_s: v.ttl ? parseTtl(v.ttl) : undefined, scopes: v["read-only"] ? ["read-only"] : [] };
        const token = (await call("POST", "/api/v1/admin/tokens", body)) as { id: string; token: string; expires_at: number };
        show(token, () => `${token.token}\n\nToken ${token.id} for ${body.user_id}, expires ${when(token.expires_at)}. It is shown only now: store it safely.`);
        return 0;
      }
      case "token list": {
        const tokens = (await call("GET", `/api/v1/admin/tokens${v.user ? `?user_id=${e(v.user)}` : ""}`)) as Record<string, unknown>[];
        const rows = tokens.map((t) => ({ ...t, expires_at: when(t["expires_at"]), last_used_at: when(t["last_used_at"]) }));
        show(tokens, () => columns(rows, ["id", "user_id", "name", "role", "scopes", "expires_at", "last_used_at"]));
        return 0;
      }
      case "token revoke": {
        const revoked = (await call("DELETE", `/api/v1/admin/tokens/${e(need(p[1], "a TOKEN_ID"))}`)) as { closed_websockets?: number };
        const closed = revoked.closed_websockets ?? 0;
        show(revoked, () => `revoked token ${p[1]}${closed > 0 ? ` (closed ${closed} open WebSocket${closed === 1 ? "" : "s"})` : ""}`);
        return 0;
      }
      default: {
        if (command !== "audit" || p.length > 0) throw new AdminUsageError(`unknown command "${[command, ...p].join(" ")}"`);
        const q = new URLSearchParams();
        if (v.limit) q.set("limit", v.limit);
        if (v.before) q.set("before", v.before);
        const page = (await call("GET", `/api/v1/admin/audit${q.size ? `?${q}` : ""}`)) as { events: Record<string, unknown>[]; next_before: number | null };
        const rows = page.events.map((ev) => ({ ...ev, at: when(ev["at"]), target: ev["server_id"] ? `${ev["server_id"]}${ev["terminal_id"] ? `/${ev["terminal_id"]}` : ""}` : "-" }));
        show(page, () => columns(rows, ["id", "at", "actor", "action", "target", "ip", "detail"]) + (page.next_before ? `\n(older: --before ${page.next_before})` : ""));
        return 0;
      }
    }
  } catch (error) {
    if (error instanceof EdgeRefusal) {
      process.stderr.write(`edgetty: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

/** The edge refused a call (status and its message), or could not be reached. */
class EdgeRefusal extends Error {}
