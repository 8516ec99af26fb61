/**
 * The `edgetty` command: `start` (the local stack), `agent` (a host agent), `exec` (run a command
 * on a server through the edge), the admin commands (`server`, `user` … admin-cli.ts), `bench`
 * (the benchmark). Flags and environment are parsed once here into options objects; each
 * command prints its own usage on `--help` (exit 0) and on a usage error (exit 2).
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { fileURLToPath } from "node:url";
import { agentUsage, runAgentCommand, UsageError } from "./agent-cli.ts";
import { ADMIN_USAGE, AdminUsageError, adminUsage, isAdminCommand, parseAdminArgs, runAdminCommand } from "./admin-cli.ts";
import { PortInUseError, startLocalStack } from "./local-stack.ts";
import { AGENT_NODE_FLAGS } from "./agent-node-flags.ts";
import { CLIENT_OPTIONS, ClientConfigError, forgetStack, recordStack, resolveClient, stateDirOf, type ClientFlags, type ResolvedClient } from "./local-secrets.ts";

const USAGE = `edgetty — terminals on any machine, from anywhere

  edgetty start [--port 8787] [--api-key KEY] [--host 127.0.0.1] [--state-dir .edgetty]
      Run the local stack: the edge in workerd and an agent for this machine (server "local").
      A workerd or agent that dies is restarted, at most EDGETTY_RESTARTS_MAX times (default 5)
      in 10 minutes; then everything stops and the command exits 1.
  edgetty agent --edge URL --server ID [--token-file F] [--data-dir DIR] [--log-format json]
      Run a host agent (token also from --token or EDGETTY_AGENT_TOKEN).
  edgetty agent install --edge URL --server ID --token-file F [--root DIR] [--dry-run]
  edgetty agent uninstall --server ID [--root DIR] [--dry-run]
      Install / remove the agent as a systemd service (see \`edgetty agent help\`).
  edgetty exec [--server ID] [--edge URL] [--api-key KEY] [--state-dir DIR] -- COMMAND [ARGS…]
      Run a command on a server and stream its output; exits with its exit code.
  edgetty server|user|group|grant|token|audit …  (see below)
  edgetty bench
      Measure throughput, echo latency and fan-out through the local stack.

Client commands (exec and the admin commands) find the edge and its API key from --edge and
--api-key, else EDGETTY_EDGE and EDGETTY_API_KEY, else the state folder of a stack that
\`edgetty start\` runs (--state-dir DIR, else EDGETTY_STATE_DIR, else .edgetty).

Administration (against any edge with an admin token):
${ADMIN_USAGE}`;

const START_USAGE = `usage: edgetty start [--port 8787] [--api-key KEY] [--host 127.0.0.1] [--state-dir .edgetty]

  Runs the local stack: the edge in workerd and an agent for this machine (server "local").
  --port PORT       the edge's port (else EDGETTY_PORT, else 8787)
  --api-key KEY     the admin API key (else EDGETTY_API_KEY, else one generated once and kept)
  --host HOST       the address to listen on (else EDGETTY_HOST, else 127.0.0.1; 0.0.0.0: all)
  --state-dir DIR   state, logs, the key and, while running, the URL (else EDGETTY_STATE_DIR,
                    else .edgetty); client commands given the same --state-dir find this stack
  A workerd or agent that dies is restarted, at most EDGETTY_RESTARTS_MAX times (default 5) in
  10 minutes; then everything stops and the command exits 1.

example: edgetty start --port 9000 --state-dir /tmp/edgetty
`;

function fail(message: string, usage = USAGE): never {
  process.stderr.write(`edgetty: ${message}\n\n${usage}`);
  process.exit(2);
}

/** node:util parseArgs's refusal of an unknown option or a missing value. */
function isParseArgsError(error: unknown): error is TypeError {
  return error instanceof TypeError && String((error as { code?: unknown }).code).startsWith("ERR_PARSE_ARGS");
}

/**
 * parseArgs for one command, with `--help`/`-h` added: help prints the command's `usage` and
 * exits 0; an unknown option or a missing value prints it and exits 2 (never a stack trace).
 */
function parseCommandArgs<T extends ParseArgsConfig>(config: T, usage: string): ReturnType<typeof parseArgs<T>> {
  try {
    const parsed = parseArgs({ ...config, options: { ...config.options, help: { type: "boolean", short: "h" } } });
    if ((parsed.values as { help?: boolean }).help) {
      process.stdout.write(usage);
      process.exit(0);
    }
    return parsed as ReturnType<typeof parseArgs<T>>;
  } catch (error) {
    if (isParseArgsError(error)) fail(error.message, usage);
    throw error;
  }
}

/** Edge URL and API key for a client command (resolveClient); a failure is a usage error. */
function clientDefaults(flags: ClientFlags, usage: string): ResolvedClient {
  try {
    return resolveClient(flags, process.env);
  } catch (error) {
    if (error instanceof ClientConfigError) fail(error.message, usage);
    throw error;
  }
}

async function start(argv: string[]): Promise<void> {
  const { values } = parseCommandArgs(
    {
      args: argv,
      options: {
        port: { type: "string" },
        "api-key": { type: "string" },
        host: { type: "string" },
        "state-dir": { type: "string" },
      },
    },
    START_USAGE,
  );
  const port = Number(values.port ?? process.env.EDGETTY_PORT ?? 8787);
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`invalid port "${values.port ?? process.env.EDGETTY_PORT}"`, START_USAGE);
  const apiKey = values["api-key"] ?? process.env.EDGETTY_API_KEY;
  const stateDir = stateDirOf(values["state-dir"], process.env);
  const restartsMax = process.env.EDGETTY_RESTARTS_MAX === undefined ? undefined : Number(process.env.EDGETTY_RESTARTS_MAX);
  if (restartsMax !== undefined && (!Number.isInteger(restartsMax) || restartsMax < 0)) fail(`invalid EDGETTY_RESTARTS_MAX "${process.env.EDGETTY_RESTARTS_MAX}"`, START_USAGE);
  const log = (line: string) => console.log(line);
  log(`edgetty: starting the edge (workerd) on port ${port}…`);
  const stack = await startLocalStack({
    port,
    host: values.host ?? process.env.EDGETTY_HOST ?? "127.0.0.1",
    ...(apiKey ? { apiKey } : {}),
    stateDir,
    log,
    ...(restartsMax !== undefined ? { restartsMax } : {}),
    // The stack has stopped everything and said why.
    onFatal: () => process.exit(1),
  }).catch((error: unknown) => {
    if (!(error instanceof PortInUseError)) throw error;
    process.stderr.write(`edgetty: ${error.message}\n`);
    return process.exit(1);
  });
  // Client commands given this --state-dir read the URL here; gone when this process exits
  // (a SIGKILL leaves it, and they ignore it once this pid is gone).
  recordStack(stateDir, stack.url);
  process.on("exit", () => forgetStack(stateDir));
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    log("\nedgetty: stopping…");
    await stack.stop();
    process.exit(0);
  };
  // Any other way this process ends (SIGKILL included), the children's guardians end them.
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"] as const) process.on(sig, () => void stop());
  log(`
edgetty is running.

  URL      ${stack.url}
  API key  ${stack.apiKey}

  Web app:      open ${stack.url}/ and sign in with the API key
  List servers: curl -H "Authorization: Bearer ${stack.apiKey}" ${stack.url}/api/v1/terminals/

Press Ctrl-C to stop.`);
}

const [command, ...rest] = process.argv.slice(2);
switch (command) {
  case "start":
    await start(rest);
    break;
  case "agent": {
    const usage = agentUsage("edgetty agent");
    if (rest[0] === "help" || rest.includes("--help") || rest.includes("-h")) process.stdout.write(usage);
    else {
      await runAgentCommand(rest, {
        node: process.execPath,
        nodeArgs: [...AGENT_NODE_FLAGS],
        script: fileURLToPath(new URL("../../bin/edgetty.js", import.meta.url)),
        scriptArgs: ["agent"],
      }).catch((error: unknown) => (error instanceof UsageError || isParseArgsError(error) ? fail(error.message, usage) : Promise.reject(error)));
    }
    break;
  }
  case "bench": {
    const { runBench } = await import("../../bench/bench.ts");
    process.exit(await runBench(rest));
    break;
  }
  case "exec": {
    const { EXEC_USAGE, runExecCli } = await import("./exec.ts");
    const { values, positionals } = parseCommandArgs(
      { args: rest, allowPositionals: true, options: { ...CLIENT_OPTIONS, server: { type: "string" } } },
      EXEC_USAGE,
    );
    if (positionals.length === 0) fail("exec needs a command after --", EXEC_USAGE);
    const client = clientDefaults(values, EXEC_USAGE);
    process.exit(await runExecCli({ ...client, command: positionals, ...(values.server ? { server: values.server } : {}) }));
    break;
  }
  case undefined:
  case "help":
  case "--help":
  case "-h":
    process.stdout.write(USAGE);
    break;
  default: {
    if (!isAdminCommand(command)) fail(`unknown command "${command}"`);
    const usage = adminUsage(command);
    try {
      const args = parseAdminArgs(command, rest);
      if (args.values.help) {
        process.stdout.write(usage);
        break;
      }
      const client = clientDefaults(args.values, usage);
      process.exit(await runAdminCommand(command, args, { ...client, out: (line) => console.log(line) }));
    } catch (error) {
      if (error instanceof AdminUsageError) fail(error.message, usage);
      throw error;
    }
  }
}
