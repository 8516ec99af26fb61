/**
 * Starts the real local stack (workerd + agent + PTYs) on free ports in a private state folder,
 * exactly as `npm start` runs it, and removes everything on stop. Test files use `useStack()`.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { freePort, startLocalStack, type LocalStack } from "../../worker/cli/local-stack.ts";
import { until } from "./waiters.ts";

export interface TestStack extends LocalStack {
  stateDir: string;
  /** HOME of the agent and its shells. */
  home: string;
  /** fetch() against the stack with the admin key. */
  api(path: string, init?: RequestInit): Promise<Response>;
}

/** How long starting or stopping a stack may take in a hook, in milliseconds. */
export const STACK_HOOK_TIMEOUT_MS = 120_000;

export interface StackOptions {
  /** The admin key (generated when absent). */
  apiKey?: string;
  /** Extra variables for the Worker (see edge/env.ts). */
  edgeVars?: Record<string, string>;
  /** Extra environment for the agent (EDGETTY_OT_* settings…). */
  agentEnv?: Record<string, string>;
}

/** Starts made when the chosen port is taken between freePort() and workerd's bind (another test's process got it). */
const PORT_RACE_ATTEMPTS = 3;

/** Starts a stack; the caller stops it (prefer `useStack()` in test files). */
export async function startStack(opts: StackOptions = {}): Promise<TestStack> {
  for (let attempt = 1; ; attempt++) {
    const stateDir = mkdtempSync(join(tmpdir(), "edgetty-test-"));
    try {
      return await startStackIn(stateDir, opts);
    } catch (error) {
      // freePort() closes its probe before workerd binds, so a parallel test's process can take
      // the port meanwhile: workerd then exits with ERR_ADDRESS_IN_USE, and a new port is the cure.
      // The edge's last output may reach its log just after its exit was seen: give it a moment.
      const log = join(stateDir, "wrangler.log");
      const edgeExited = error instanceof Error && error.message.startsWith("edge: exited");
      const portTaken = edgeExited && (await until("the edge's log to say why", () => existsSync(log) && readFileSync(log, "utf8").includes("ERR_ADDRESS_IN_USE"), { timeoutMs: 2_000 }).catch(() => false));
      rmSync(stateDir, { recursive: true, force: true });
      if (!portTaken || attempt >= PORT_RACE_ATTEMPTS) throw error;
    }
  }
}

async function startStackIn(stateDir: string, opts: StackOptions): Promise<TestStack> {
  const port = await freePort();
  // Shells in tests read a private, empty HOME, not this machine's rc files.
  const home = join(stateDir, "home");
  mkdirSync(home);
  const stack = await startLocalStack({
    port,
    host: "127.0.0.1",
    stateDir,
    quiet: true,
    agentEnv: { ...opts.agentEnv, HOME: home },
    log: () => {},
    ...(opts.apiKey ? { apiKey: opts.apiKey } : {}),
    ...(opts.edgeVars ? { edgeVars: opts.edgeVars } : {}),
  });
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

/** A test file's stack: the TestStack, plus clients to close when the file is done. */
export interface StackFixture extends TestStack {
  /** Closes `client` once the file's tests are done (before the stack stops); returns it. */
  track<C extends { close(): void }>(client: C): C;
}

/**
 * The e2e fixture: starts one stack for the calling test file (beforeAll) and stops it, after
 * closing every tracked client, when the file is done (afterAll). Call it at the top of the file;
 * the returned handle is usable inside tests and hooks.
 */
export function useStack(opts: StackOptions = {}): StackFixture {
  let current: TestStack | null = null;
  const tracked: { close(): void }[] = [];
  beforeAll(async () => {
    current = await startStack(opts);
  }, STACK_HOOK_TIMEOUT_MS);
  afterAll(async () => {
    for (const c of tracked.splice(0)) c.close();
    await current?.stop();
    current = null;
  }, STACK_HOOK_TIMEOUT_MS);
  const track = <C extends { close(): void }>(client: C): C => {
    tracked.push(client);
    return client;
  };
  return new Proxy({} as StackFixture, {
    get(_, key) {
      if (key === "track") return track;
      if (!current) throw new Error(`the stack is not running (stack.${String(key)} used outside a test or hook)`);
      const value = (current as unknown as Record<string | symbol, unknown>)[key];
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(current) : value;
    },
  });
}
