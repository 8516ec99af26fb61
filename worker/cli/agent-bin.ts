/**
 * Entry of the self-contained agent package (`edgetty-agent`, built by scripts/build-agent.mjs):
 * `edgetty-agent [agent] …` is `edgetty agent …` without the repository, wrangler or workerd.
 */
import { fileURLToPath } from "node:url";
import { AGENT_USAGE, runAgentCommand, UsageError } from "./agent-cli.ts";
import { AGENT_NODE_FLAGS } from "./agent-node-flags.ts";

const argv = process.argv.slice(2);
if (argv[0] === "agent") argv.shift();
if (argv[0] === "help" || argv[0] === "--help" || argv[0] === "-h") {
  process.stdout.write(AGENT_USAGE.replaceAll("  agent", "  edgetty-agent"));
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
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`edgetty-agent: ${error.message}\n\n${AGENT_USAGE}`);
    process.exit(2);
  }
}
