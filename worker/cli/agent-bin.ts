/**
 * Entry of the self-contained agent package (`edgetty-agent`, built by scripts/build-agent.mjs):
 * `edgetty-agent [agent] …` is `edgetty agent …` without the repository, wrangler or workerd.
 */
import { fileURLToPath } from "node:url";
import { agentUsage, runAgentCommand, UsageError } from "./agent-cli.ts";
import { AGENT_NODE_FLAGS } from "./agent-node-flags.ts";

const usage = agentUsage("edgetty-agent");
const argv = process.argv.slice(2);
if (argv[0] === "agent") argv.shift();
if (argv[0] === "help" || argv.includes("--help") || argv.includes("-h")) {
  process.stdout.write(usage);
} else {
  try {
    await runAgentCommand(argv, {
      node: process.execPath,
      // The bundle's shebang flag (see bin/edgetty.js), kept when a unit starts it.
      nodeArgs: [...AGENT_NODE_FLAGS],
      script: fileURLToPath(import.meta.url),
      scriptArgs: ["agent"],
    });
  } catch (error) {
    // node:util parseArgs refuses an unknown option or a missing value with ERR_PARSE_ARGS_*.
    const parseArgsError = error instanceof TypeError && String((error as { code?: unknown }).code).startsWith("ERR_PARSE_ARGS");
    if (!(error instanceof UsageError) && !parseArgsError) throw error;
    process.stderr.write(`edgetty-agent: ${(error as Error).message}\n\n${usage}`);
    process.exit(2);
  }
}
