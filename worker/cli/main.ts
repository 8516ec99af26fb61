/**
 * The `edgetty` command: `start` (the local stack), `agent` (a host agent), `exec` (run a command
 * on a server through the edge), `bench` (the benchmark). Flags and environment are parsed once
 * here into options objects.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { fileURLToPath } from "node:url";
import { agentUsage, runAgentCommand, UsageError } from "./agent-cli.ts";
import { ADMIN_USAGE } from "./admin-cli.ts";
import { startLocalStack } from "./local-stack.ts";
import { AGENT_NODE_FLAGS } from "./agent-node-flags.ts";

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
  edgetty exec [--edge URL] [--api-key KEY] [--server ID] -- COMMAND [ARGS…]
      Run a command on a server and stream its output; exits with its exit code.
  edgetty server|user|group|grant|token|audit …  (see below)
  edgetty bench
      Measure throughput, echo latency and fan-out through the local stack.

Administration (against any edge with an admin token):
${ADMIN_USAGE}`;

function fail(message: string, usage = USAGE): never {
  process.stderr.write(`edgetty: ${message}\n\n${usage}`);
  process.exit(2);
}

/** node:util parseArgs's refusal of an unknown option or a missing value. */
function isParseArgsError(error: unknown): error is TypeError {
  return error instanceof TypeError && String((error as { code?: unknown }).code).startsWith("ERR_PARSE_ARGS");
}

/**
 * parseArgs for one command: `--help`/`-h` prints the usage and exits 0; an unknown option or a
 * missing value prints the usage and exits 2 (never a stack trace).
 */
function parseCommandArgs<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  const args = config.args ?? [];
  const own = args.includes("--") ? args.slice(0, args.indexOf("--")) : args; // after `--`: the command's
  if (own.some((a) => a === "--help" || a === "-h")) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  try {
    return parseArgs(config);
  } catch (error) {
    if (isParseArgsError(error)) fail(error.message);
    throw error;
  }
}

async function start(argv: string[]): Promise<void> {
  const { values } = parseCommandArgs({
    args: argv,
    options: {
      port: { type: "string" },
      "api-key": { type: "string" },
      host: { type: "string" },
      "state-dir": { type: "string" },
    },
  });
  const port = Number(values.port ?? process.env.EDGETTY_PORT ?? 8787);
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`invalid port "${values.port ?? process.env.EDGETTY_PORT}"`);
  const apiKey = values["api-key"] ?? process.env.EDGETTY_API_KEY;
  const stateDir = resolve(values["state-dir"] ?? process.env.EDGETTY_STATE_DIR ?? ".edgetty");
  const restartsMax = process.env.EDGETTY_RESTARTS_MAX === undefined ? undefined : Number(process.env.EDGETTY_RESTARTS_MAX);
  if (restartsMax !== undefined && (!Number.isInteger(restartsMax) || restartsMax < 0)) fail(`invalid EDGETTY_RESTARTS_MAX "${process.env.EDGETTY_RESTARTS_MAX}"`);
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
  });
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

/** Edge URL and API key for client commands: flags, then environment, then the local stack's state. */
export function clientDefaults(values: { edge?: string | undefined; "api-key"?: string | undefined }): { edge: string; apiKey: string } {
  const stateDir = resolve(process.env.EDGETTY_STATE_DIR ?? ".edgetty");
  let stored: { apiKey?: string } = {};
  const file = join(stateDir, "secrets.json");
  if (existsSync(file)) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(file, "utf8"));
      if (typeof parsed === "object" && parsed !== null) stored = parsed as { apiKey?: string };
    } catch (error) {
      fail(`cannot read ${file}: ${(error as Error).message} (pass --api-key, or remove the file and run \`edgetty start\` again)`);
    }
  }
  const edge = values.edge ?? process.env.EDGETTY_EDGE ?? `http://127.0.0.1:${process.env.EDGETTY_PORT ?? 8787}`;
  const apiKey = values["api-key"] ?? process.env.EDGETTY_API_KEY ?? stored.apiKey;
  if (!apiKey) fail("no API key: pass --api-key or set EDGETTY_API_KEY");
  return { edge, apiKey };
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
    const { values, positionals } = parseCommandArgs({
      args: rest,
      allowPositionals: true,
      options: { edge: { type: "string" }, "api-key": { type: "string" }, server: { type: "string" } },
    });
    if (positionals.length === 0) fail("exec needs a command after --");
    const { runExecCli } = await import("./exec.ts");
    const { edge, apiKey } = clientDefaults(values);
    process.exit(await runExecCli({ edge, apiKey, command: positionals, ...(values.server ? { server: values.server } : {}) }));
    break;
  }
  case "server":
  case "user":
  case "group":
  case "grant":
  case "token":
  case "audit": {
    const { AdminUsageError, parseAdminArgs, runAdminCommand } = await import("./admin-cli.ts");
    if (rest.includes("--help") || rest.includes("-h")) {
      process.stdout.write(USAGE);
      break;
    }
    try {
      const { edge, apiKey } = clientDefaults(parseAdminArgs(rest).values);
      process.exit(await runAdminCommand(command, rest, { edge, apiKey, out: (line) => console.log(line) }));
    } catch (error) {
      if (error instanceof AdminUsageError) fail(error.message);
      throw error;
    }
    break;
  }
  case undefined:
  case "help":
  case "--help":
  case "-h":
    process.stdout.write(USAGE);
    break;
  default:
    fail(`unknown command "${command}"`);
}
