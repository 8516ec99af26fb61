/**
 * `edgetty agent …`: run a host agent, or install / uninstall it as a systemd service. The same
 * module is the entry of the self-contained agent package (worker/cli/agent-bin.ts, bundled by
 * scripts/build-agent.mjs), so a host runs exactly this without the repository.
 */
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { AGENT_SETTINGS, ConfigError, parseSettings } from "../../shared/limits.ts";
import { isServerId } from "../../shared/validation.ts";
import { Agent, AGENT_VERSION } from "../agent/agent.ts";
import { closeInheritedDescriptors } from "../agent/launch.ts";
import { createAgentLogger, type LogFormat } from "../agent/log.ts";
import type { HelperProgram } from "../agent/files/user-files.ts";
import { isUserPrefix, type MultiUserOptions } from "../agent/os-users.ts";
import { hideArgument, scrubEnvironValue } from "../agent/secret-scrub.ts";
import { installAgentService, uninstallAgentService, type ServiceProgram } from "./agent-service.ts";

/** The environment variable an agent token may come from (scrubbed once read). */
export const AGENT_TOKEN_ENV = "EDGETTY_AGENT_TOKEN";

/** Longest agent token read from a file, in bytes. */
export const TOKEN_FILE_MAX_BYTES = 4096;

/**
 * The agent's usage, naming it as it is run: `program` is `edgetty agent` inside the CLI and
 * `edgetty-agent` for the standalone agent package (worker/cli/agent-bin.ts).
 */
export function agentUsage(program: "edgetty agent" | "edgetty-agent"): string {
  return `${program} — the host agent

  ${program} --edge URL --server ID (--token-file F | --token T) [--data-dir DIR] [--log-format text|json]
      Run the agent in the foreground (token also from EDGETTY_AGENT_TOKEN).
  ${program} install --edge URL --server ID --token-file F [--root DIR] [--dry-run]
      Write and enable the systemd unit edgetty-agent-ID.service (restart on failure, JSON logs to
      the journal) and copy the token to a root-only file. --root writes into a staging root
      without enabling anything live; --dry-run prints what would be written.
  ${program} uninstall --server ID [--root DIR] [--dry-run]
      Stop and disable the unit and remove it and its token file.
  ${program} --version
`;
}

/** A bad command line or token file: printed with the usage, exit status 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * Reads an agent token from `file`: the first line, trimmed. Refuses a file that group or others
 * may read (as ssh refuses such keys), an empty one, and one over TOKEN_FILE_MAX_BYTES.
 */
export function readTokenFile(file: string): string {
  let stat;
  try {
    stat = statSync(file);
  } catch (error) {
    throw new UsageError(`cannot read token file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (!stat.isFile()) throw new UsageError(`token file ${file} is not a regular file`);
  if ((stat.mode & 0o077) !== 0) throw new UsageError(`token file ${file} is readable by others (mode ${(stat.mode & 0o777).toString(8)}): chmod 600 it`);
  if (stat.size > TOKEN_FILE_MAX_BYTES) throw new UsageError(`token file ${file} is over ${TOKEN_FILE_MAX_BYTES} bytes`);
  const token = readFileSync(file, "utf8").split(/\r?\n/)[0]!.trim();
  if (!token) throw new UsageError(`token file ${file} is empty`);
  return token;
}

function checkEdgeUrl(edge: string): string {
  let url: URL;
  try {
    url = new URL(edge);
  } catch {
    throw new UsageError(`--edge "${edge}" is not a URL`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new UsageError("--edge must be an http:// or https:// URL");
  if (/[\s"'\\%$]/.test(edge)) throw new UsageError("--edge must not contain spaces, quotes, backslashes, % or $");
  return edge;
}

/** True for the values a boolean setting may take as "on" / "off" (as the reference's env parsing). */
const TRUE_RE = /^(1|true|yes|on)$/i;
const FALSE_RE = /^(0|false|no|off)?$/i;

/**
 * EDGETTY_OT_MULTI_USER (off by default) and EDGETTY_OT_USER_PREFIX: the agent's multi-user
 * options, or null when off. A value that is neither on nor off is a usage error.
 */
export function parseMultiUser(env: NodeJS.ProcessEnv, program: ServiceProgram): (MultiUserOptions & { helperProgram: HelperProgram }) | null {
  const raw = (env.EDGETTY_OT_MULTI_USER ?? "").trim();
  if (FALSE_RE.test(raw)) return null;
  if (!TRUE_RE.test(raw)) throw new UsageError(`EDGETTY_OT_MULTI_USER=${JSON.stringify(raw.slice(0, 20))} must be true or false`);
  const prefix = (env.EDGETTY_OT_USER_PREFIX ?? "").trim();
  if (!isUserPrefix(prefix)) throw new UsageError(`EDGETTY_OT_USER_PREFIX "${prefix.slice(0, 40)}" must match [a-z_][a-z0-9_-]{0,15}`);
  return { prefix, helperProgram: { file: program.node, args: [...program.nodeArgs, program.script, ...program.scriptArgs] } };
}

function checkServer(server: string | undefined): string {
  if (!server) throw new UsageError("--server is required");
  if (!isServerId(server)) throw new UsageError(`--server "${server}" must match [a-z0-9][a-z0-9-]{0,62}`);
  return server;
}

/**
 * Runs `edgetty agent` with `argv` (the words after "agent"). `program` is how a service unit
 * starts this same agent again (node, its flags, the script). Resolves once the command is done
 * (for a running agent: once it has started; signals stop it).
 */
export async function runAgentCommand(argv: string[], program: ServiceProgram): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === "install" || sub === "uninstall") {
    const { values } = parseArgs({
      args: rest,
      options: {
        edge: { type: "string" },
        server: { type: "string" },
        "token-file": { type: "string" },
        root: { type: "string" },
        "dry-run": { type: "boolean" },
      },
    });
    const server = checkServer(values.server);
    const root = resolve(values.root ?? "/");
    const dryRun = values["dry-run"] ?? false;
    const out = (line: string) => process.stdout.write(line + "\n");
    if (sub === "uninstall") return uninstallAgentService({ server, root, dryRun, out });
    if (!values.edge) throw new UsageError("install needs --edge URL");
    if (!values["token-file"]) throw new UsageError("install needs --token-file F (a file holding the server's agent token)");
    const token = readTokenFile(values["token-file"]);
    return installAgentService({ edge: checkEdgeUrl(values.edge), server, token, root, dryRun, program, out });
  }
  if (sub === "files-helper") {
    // Internal: a multi-user account's file server, started by the agent as that account.
    const { runFilesHelper } = await import("../agent/files/files-helper.ts");
    return runFilesHelper();
  }
  if (sub === "--version" || sub === "version") {
    process.stdout.write(`${AGENT_VERSION}\n`);
    return;
  }

  const { values } = parseArgs({
    args: argv,
    options: {
      edge: { type: "string" },
      server: { type: "string" },
      token: { type: "string" },
      "token-file": { type: "string" },
      "data-dir": { type: "string" },
      "log-format": { type: "string" },
    },
  });
  const given = values.edge ?? process.env.EDGETTY_EDGE;
  if (!given) throw new UsageError("agent needs --edge URL (or EDGETTY_EDGE): the edge to dial");
  const edge = checkEdgeUrl(given);
  const server = checkServer(values.server ?? process.env.EDGETTY_SERVER);
  const fromEnv = process.env[AGENT_TOKEN_ENV];
  const token = values["token-file"] ? readTokenFile(values["token-file"]) : (values.token ?? fromEnv);
  if (!token) throw new UsageError("the agent needs --token-file F, --token T or EDGETTY_AGENT_TOKEN");
  // Out of process.env (so no child inherits it) and out of /proc/<pid>/environ and cmdline.
  let scrubFailure: string | null = null;
  if (fromEnv !== undefined) {
    try {
      scrubEnvironValue(AGENT_TOKEN_ENV);
    } catch (error) {
      scrubFailure = `could not scrub ${AGENT_TOKEN_ENV} from /proc/${process.pid}/environ (${(error as Error).message}): it stays readable there by this user and root; prefer --token-file`;
    }
  }
  if (values.token !== undefined) hideArgument(values.token);
  const format = values["log-format"] ?? process.env.EDGETTY_LOG_FORMAT ?? "text";
  if (format !== "text" && format !== "json") throw new UsageError(`--log-format must be text or json, not "${format}"`);
  let settings;
  try {
    settings = parseSettings(AGENT_SETTINGS, process.env);
  } catch (error) {
    throw error instanceof ConfigError ? new UsageError(error.message) : error;
  }
  const dataDir = resolve(values["data-dir"] ?? join(homedir(), ".edgetty"));
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const log = createAgentLogger({ format: format as LogFormat, server, secrets: [token] });
  log(`edgetty agent ${AGENT_VERSION} starting (node ${process.version}, pid ${process.pid})`, "info");
  if (scrubFailure !== null) log(scrubFailure, "warn");
  // What this process inherited without close-on-exec would pass to every child (launch.ts).
  const closed = closeInheritedDescriptors();
  if (closed.length > 0) log(`closed ${closed.length} inherited descriptor(s) without close-on-exec: ${closed.join(", ")}`, "info");
  // The Open Terminal `/info` text and `/system` prompt (the reference's OPEN_TERMINAL_INFO and
  // OPEN_TERMINAL_SYSTEM_PROMPT).
  const info = process.env.EDGETTY_OT_INFO;
  const systemPrompt = process.env.EDGETTY_OT_SYSTEM_PROMPT;
  // Multi-user mode (the reference's OPEN_TERMINAL_MULTI_USER and OPEN_TERMINAL_USER_PREFIX).
  const multiUser = parseMultiUser(process.env, program);
  let a: Agent;
  try {
    a = new Agent({ edge, server, token, dataDir, log, maxSessions: settings.maxSessions, forkPtys: settings.forkPtys, ...(info ? { info } : {}), ...(systemPrompt ? { systemPrompt } : {}), ...(multiUser ? { multiUser } : {}) });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (multiUser) log(`Open Terminal multi-user mode: callers asserting X-User-Id act as OS accounts${multiUser.prefix ? ` named ${multiUser.prefix}…` : ""}`, "info");
  a.start();
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    log("stopping", "info");
    // Ends every terminal's processes (hang-up, then SIGKILL after a grace) before exiting.
    void a.stop().finally(() => process.exit(0));
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  // SIGUSR2 drops every link as a network failure would; they reconnect by themselves.
  process.on("SIGUSR2", () => a.dropLinks());
}
