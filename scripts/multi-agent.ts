/**
 * The local stack plus N extra agents on this machine, each its own server with its own token
 * and temporary HOME (worker/cli/extra-agents.ts), for trying multi-server behaviour:
 *   npm run multi-agent -- [--agents 3] [--port 8787] [--state-dir .edgetty]
 * Ctrl-C stops everything and unregisters the extra servers.
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { startExtraAgents } from "../worker/cli/extra-agents.ts";
import { startLocalStack } from "../worker/cli/local-stack.ts";
import { forgetStack, recordStack } from "../worker/cli/local-secrets.ts";

const { values } = parseArgs({ options: { agents: { type: "string" }, port: { type: "string" }, "state-dir": { type: "string" } } });
const count = Number(values.agents ?? 2);
const port = Number(values.port ?? process.env.EDGETTY_PORT ?? 8787);
if (!Number.isInteger(count) || count < 1) throw new Error(`--agents must be a positive whole number, not "${values.agents}"`);
const log = (line: string) => console.log(line);
const stateDir = resolve(values["state-dir"] ?? process.env.EDGETTY_STATE_DIR ?? ".edgetty");
const stack = await startLocalStack({ port, host: "127.0.0.1", stateDir, log, quiet: true });
// As `edgetty start` does: client commands given this --state-dir find the stack's URL here.
recordStack(stateDir, stack.url);
process.on("exit", () => forgetStack(stateDir));
let extra;
try {
  extra = await startExtraAgents({ url: stack.url, apiKey: stack.apiKey, count });
} catch (error) {
  await stack.stop();
  throw error;
}
log(`edgetty is running with ${count + 1} servers.

  URL      ${stack.url}
  API key  ${stack.apiKey}
  Servers  local${extra.agents.map((a) => `, ${a.server} (HOME ${a.home})`).join("")}

Press Ctrl-C to stop.`);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await extra.stop();
  await stack.stop();
  process.exit(0);
};
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
