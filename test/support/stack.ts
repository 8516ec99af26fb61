/**
 * Starts the real local stack (workerd + agent + PTYs) on free ports in a private state folder,
 * exactly as `npm start` runs it, and removes everything on stop.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, startLocalStack, type LocalStack } from "../../worker/cli/local-stack.ts";

export interface TestStack extends LocalStack {
  stateDir: string;
  /** HOME of the agent and its shells. */
  home: string;
  /** fetch() against the stack with the admin key. */
  api(path: string, init?: RequestInit): Promise<Response>;
}

export async function startStack(opts: { apiKey?: string; edgeVars?: Record<string, string> } = {}): Promise<TestStack> {
  const stateDir = mkdtempSync(join(tmpdir(), "edgetty-test-"));
  const port = await freePort();
  // Shells in tests read a private, empty HOME, not this machine's rc files.
  const home = join(stateDir, "home");
  mkdirSync(home);
  let stack: LocalStack;
  try {
    stack = await startLocalStack({
      port,
      host: "127.0.0.1",
      stateDir,
      quiet: true,
      agentEnv: { HOME: home },
      log: () => {},
      ...(opts.apiKey ? { apiKey: opts.apiKey } : {}),
      ...(opts.edgeVars ? { edgeVars: opts.edgeVars } : {}),
    });
  } catch (error) {
    rmSync(stateDir, { recursive: true, force: true });
    throw error;
  }
  const started = stack;
  return {
    url: started.url,
    apiKey: started.apiKey,
    agentToken: started.agentToken,
    // The agent process changes on restartAgent(): always the current one.
    get agent() {
      return started.agent;
    },
    waitForAgent: () => started.waitForAgent(),
    stopAgent: () => started.stopAgent(),
    restartAgent: () => started.restartAgent(),
    restartEdge: () => started.restartEdge(),
    stateDir,
    home,
    api(path, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has("Authorization")) headers.set("Authorization", `Bearer ${started.apiKey}`);
      // The JSON routes take JSON only (415 otherwise); every body the tests send is JSON.
      if (typeof init.body === "string" && !headers.has("Content-Type")) headers.set("Content-Type", "application/json");
      return fetch(started.url + path, { ...init, headers });
    },
    async stop() {
      await started.stop();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
