/**
 * The local stack: the Worker and its Durable Objects in one workerd (run by Miniflare, wrangler's
 * local-mode engine, from wrangler.toml: edge-runner.ts; state persisted under the state folder in
 * wrangler's layout) plus an agent for this machine registered as server "local".
 * `npm start` and the end-to-end tests both run exactly this. It supervises its children: each
 * runs under a guardian (guarded-process.ts) so none outlives this process, and one that dies is
 * restarted or, past its budget, everything stops (supervision.ts holds the policy).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { hostname } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { EDGE_SETTINGS, parseSettings } from "../../shared/limits.ts";
import { AGENT_NODE_FLAGS } from "./agent-node-flags.ts";
import { BoundedLog, rotateIfLarger } from "./bounded-log.ts";
import { loadSecrets } from "./local-secrets.ts";
import { describeExit, GROUP_STOP_GRACE_MS, GuardedProcess, type ProcessHandle } from "./guarded-process.ts";
import {
  HEALTH_FAILURES_MAX,
  HEALTH_PROBE_INTERVAL_MS,
  HEALTH_PROBE_TIMEOUT_MS,
  HEALTH_RECHECK_MS,
  HEALTH_REFUSED_FOR_MS,
  probeHealth,
  RESTART_WINDOW_MS,
  RestartBudget,
} from "./supervision.ts";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** How long workerd and the agent may take to come up, in milliseconds. */
export const STARTUP_TIMEOUT_MS = 90_000;
/** How long processes get to exit after SIGTERM before SIGKILL, in milliseconds. */
export const STOP_GRACE_MS = GROUP_STOP_GRACE_MS;
export const LOCAL_SERVER_ID = "local";
/** Tail of wrangler's output kept to explain a failed migration, in characters. */
const MIGRATION_OUTPUT_MAX_CHARS = 8_000;

export interface LocalStackOptions {
  port: number;
  host: string;
  /** Admin API key; generated once and kept in the state folder when absent. */
  apiKey?: string;
  stateDir: string;
  /** Where progress lines go. */
  log(line: string): void;
  /** Send the agent's own lines to a log file in the state folder instead of the terminal. */
  quiet?: boolean;
  /** Extra variables for the Worker (see edge/env.ts), e.g. EDGETTY_MAX_CLIENTS. */
  edgeVars?: Record<string, string>;
  /** Extra environment for the agent (and so for its shells), e.g. a private HOME in tests. */
  agentEnv?: Record<string, string>;
  /** Restarts of one child allowed within RESTART_WINDOW_MS (default RESTARTS_MAX); 0 never restarts. */
  restartsMax?: number;
  /**
   * Called once the stack has given up on a child (restarted too often) and stopped everything;
   * the error says which child and why.
   */
  onFatal?(error: Error): void;
}

export interface LocalStack {
  url: string;
  apiKey: string;
  agentToken: string;
  /** The agent's process (tests signal it: SIGUSR2 drops its links); it changes on restarts. */
  readonly agent: ProcessHandle;
  /** Resolves once the agent's control link is up (after a drop, say). */
  waitForAgent(): Promise<void>;
  /** Stops the agent on purpose (not restarted; its server goes offline) until restartAgent(). */
  stopAgent(): Promise<void>;
  /** Stops the agent (its shells end with it) and starts a new one, as an upgrade would. */
  restartAgent(): Promise<void>;
  /** Restarts workerd on the same port and state, as a redeploy would. */
  restartEdge(): Promise<void>;
  /** Stops the agent, then the edge; resolves once none of their processes is left. */
  stop(): Promise<void>;
}

/** A TCP port that was free a moment ago. */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

/** `edgetty start` cannot have its port: something (often another stack) listens there already. */
export class PortInUseError extends Error {}

/**
 * Throws PortInUseError when `host:port` is taken. Checked before workerd starts: the health
 * probe would otherwise be answered by whatever holds the port (another stack, with another key),
 * and the start would fail later with that stack's 401.
 */
export function assertPortFree(host: string, port: number): Promise<void> {
  return new Promise((done, reject) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE") reject(new PortInUseError(`port ${port} on ${host} is already in use (another edgetty start?): stop that, or choose another with --port`));
      else done(); // anything else (a privileged port, say) is for workerd's own start to report
    });
    server.listen(port, host, () => server.close(() => done()));
  });
}

/** Builds the web app into dist/web when its sources are present. */
function buildWeb(log: (line: string) => void): Promise<void> {
  const script = join(REPO_ROOT, "web", "build.mjs");
  mkdirSync(join(REPO_ROOT, "dist", "web"), { recursive: true });
  if (!existsSync(script)) return Promise.resolve();
  return new Promise((done, reject) => {
    const child = spawn(process.execPath, [script], { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("exit", (code) => {
      if (code === 0) return done();
      log(err.trim());
      reject(new Error(`web build failed (exit ${code})`));
    });
  });
}

/**
 * Applies the registry's D1 migrations (edge/migrations/) to the local database under
 * `persistTo`, as `wrangler d1 migrations apply DB --local` does for a deployment's first step.
 * Throws with wrangler's output when a migration fails.
 */
export function applyMigrations(persistTo: string, env: NodeJS.ProcessEnv): Promise<void> {
  const wrangler = join(REPO_ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
  const args = [wrangler, "d1", "migrations", "apply", "DB", "--local", "--config", join(REPO_ROOT, "wrangler.toml"), "--persist-to", persistTo];
  return new Promise((done, reject) => {
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"], env });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-MIGRATION_OUTPUT_MAX_CHARS)));
    child.stderr!.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-MIGRATION_OUTPUT_MAX_CHARS)));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? done() : reject(new Error(`D1 migrations failed (exit ${code}):\n${out.trim()}`))));
  });
}


async function waitFor<T>(what: string, probe: () => Promise<T | null>, failed: () => string | null): Promise<T> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (let delay = 50; Date.now() < deadline; delay = Math.min(delay * 2, 500)) {
    const reason = failed();
    if (reason) throw new Error(`${what}: ${reason}`);
    const value = await probe().catch(() => null);
    if (value !== null) return value;
    await new Promise((r) => setTimeout(r, delay));
  }
  throw new Error(`${what}: not ready after ${STARTUP_TIMEOUT_MS} ms`);
}

/**
 * Starts the stack and supervises it: when workerd (or wrangler) or the agent exits unexpectedly,
 * or workerd stops answering /health, it logs a line and restarts that child (RestartBudget);
 * when the budget is spent it stops everything and calls `onFatal`. Every child runs under a
 * guardian (guarded-process.ts), so nothing outlives this process, however it ends.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  await assertPortFree(options.host, options.port);
  const stateDir = resolve(options.stateDir);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const secrets = loadSecrets(stateDir, options.apiKey);
  const envFile = join(stateDir, "edge.env");
  const vars = { EDGETTY_API_KEY: secrets.apiKey, EDGETTY_DEFAULT_SERVER: LOCAL_SERVER_ID, ...options.edgeVars };
  // A bad limit stops the start here, naming the variable (shared/limits.ts), not in workerd.
  parseSettings(EDGE_SETTINGS, vars);
  writeFileSync(envFile, Object.entries(vars).map(([k, v]) => `${k}=${v}\n`).join(""), { mode: 0o600 });
  await buildWeb(options.log);

  const displayHost = options.host === "0.0.0.0" ? "127.0.0.1" : options.host;
  const url = `http://${displayHost}:${options.port}`;
  const log = options.log;
  const wranglerLog = new BoundedLog(join(stateDir, "wrangler.log"));
  // wrangler writes every message, debug level included, to a log file of its own: one fixed file
  // here (a path ending in .log), rotated by the health probe's tick.
  const wranglerDebugLog = join(stateDir, "wrangler-debug.log");
  const agentLog = options.quiet ? new BoundedLog(join(stateDir, "agent.log")) : null;
  let edge: GuardedProcess | null = null;
  let agent: GuardedProcess | null = null;
  let stopping = false;
  let running = false;
  const edgeBudget = new RestartBudget(options.restartsMax);
  const agentBudget = new RestartBudget(options.restartsMax);
  const recovering = { edge: null as Promise<void> | null, agent: null as Promise<void> | null };
  const wranglerEnv: NodeJS.ProcessEnv = {
    ...process.env,
    // The closed network refuses these lookups; don't try them (no stack traces at start).
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_LOG_PATH: wranglerDebugLog,
    // Each stack keeps its own dev registry, so stacks side by side don't trip over each other.
    WRANGLER_REGISTRY_PATH: join(stateDir, "wrangler-registry"),
    NO_UPDATE_NOTIFIER: "1",
    CI: process.env.CI ?? "",
  };

  const startEdge = async () => {
    rotateIfLarger(wranglerDebugLog);
    const child = await GuardedProcess.start({
      command: process.execPath,
      args: [
        "--import", "tsx",
        join(REPO_ROOT, "worker", "cli", "edge-runner.ts"),
        "--config", join(REPO_ROOT, "wrangler.toml"),
        "--ip", options.host,
        "--port", String(options.port),
        "--persist-to", join(stateDir, "state"),
        "--env-file", envFile,
        "--log-level", process.env.EDGETTY_WRANGLER_LOG_LEVEL ?? "warn",
      ],
      cwd: REPO_ROOT,
      output: "pipe",
      env: wranglerEnv,
    });
    edge = child;
    for (const stream of child.output) wranglerLog.follow(stream);
    let exit: string | null = null;
    void child.exited.then((status) => {
      exit = `exited (${describeExit(status)}); see ${wranglerLog.path}`;
      if (edge === child) edgeDown(exit);
    });
    await waitFor("edge", async () => ((await probeHealth(url)) === "ok" ? true : null), () => exit);
  };

  const agentOnline = () =>
    waitFor(
      "agent",
      async () => {
        const res = await fetch(`${url}/api/v1/terminals/`, {
          headers: { Authorization: `Bearer ${secrets.apiKey}` },
          signal: AbortSignal.timeout(HEALTH_PROBE_TIMEOUT_MS),
        });
        const servers = (await res.json()) as { id: string; online: boolean }[];
        return servers.some((s) => s.id === LOCAL_SERVER_ID && s.online) ? true : null;
      },
      () => (stopping ? "the stack is stopping" : !agent || agent.ended ? "the agent exited" : !edge || edge.ended ? "the edge exited" : null),
    );

  const startAgent = async () => {
    // The token goes by a 0600 file, never the agent's environment or command line (docs/security.md).
    const tokenFile = join(stateDir, "agent.token");
    writeFileSync(tokenFile, secrets.agentToken + "\n", { mode: 0o600 });
    const { EDGETTY_AGENT_TOKEN: _inherited, ...env } = { ...process.env, ...options.agentEnv };
    const child = await GuardedProcess.start({
      command: process.execPath,
      // The flag the bin's shebang carries (a small young generation: flat memory under floods).
      args: [...AGENT_NODE_FLAGS, join(REPO_ROOT, "bin", "edgetty.js"), "agent", "--edge", url, "--server", LOCAL_SERVER_ID, "--token-file", tokenFile, "--data-dir", join(stateDir, "agent")],
      cwd: process.cwd(),
      output: agentLog ? "pipe" : "inherit",
      env,
    });
    agent = child;
    if (agentLog) for (const stream of child.output) agentLog.follow(stream);
    void child.exited.then((status) => {
      if (agent === child) agentDown(`exited (${describeExit(status)})`);
    });
    await agentOnline();
  };

  const stopAll = async () => {
    stopping = true;
    running = false;
    clearTimeout(probeTimer);
    const [a, e] = [agent, edge];
    agent = edge = null;
    await a?.stop();
    await e?.stop();
    wranglerLog.close();
    agentLog?.close();
  };

  const fatal = async (error: Error) => {
    if (stopping) return;
    log(`edgetty: ${error.message}; stopping everything`);
    await stopAll();
    options.onFatal?.(error);
  };

  /** Restarts one child after `reason`, within its budget; gives up (fatal) when it is spent. */
  const recover = async (what: string, reason: string, budget: RestartBudget, restart: () => Promise<void>) => {
    for (let failure = reason; ; ) {
      const wait = budget.take();
      if (wait === null) {
        return fatal(new Error(`${what} ${failure}, after ${budget.max} restarts within ${RESTART_WINDOW_MS / 1000} s`));
      }
      log(`edgetty: ${what} ${failure}; restarting it in ${wait} ms (restart ${budget.used} of ${budget.max})`);
      await new Promise((r) => setTimeout(r, wait));
      if (stopping) return;
      try {
        await restart();
        log(`edgetty: ${what} is running again`);
        return;
      } catch (error) {
        if (stopping) return;
        failure = `failed to restart: ${(error as Error).message}`;
      }
    }
  };

  /** What to do when a child is found dead: restart it (once at a time), within its budget. */
  const onDown =
    (key: "edge" | "agent", what: string, budget: RestartBudget, restart: () => Promise<void>) =>
    (reason: string): void => {
      if (!running || stopping || recovering[key]) return;
      recovering[key] = recover(what, reason, budget, restart).finally(() => (recovering[key] = null));
    };
  const edgeDown = onDown("edge", "the edge (workerd)", edgeBudget, async () => {
    const old = edge;
    edge = null;
    await old?.stop();
    await startEdge();
  });
  const agentDown = onDown("agent", "the agent", agentBudget, async () => {
    const old = agent;
    agent = null;
    await old?.stop();
    await startAgent();
  });

  // workerd can die (or hang) while its runner (edge-runner.ts) lives on, so the running stack also asks it.
  let probeTimer: NodeJS.Timeout | undefined;
  /** Since when (epoch ms) every probe has been refused; null while workerd answers. */
  let refusedSince: number | null = null;
  let failures = 0;
  const probeLoop = async () => {
    if (!running) return;
    rotateIfLarger(wranglerDebugLog);
    if (!recovering.edge) {
      const result = await probeHealth(url);
      if (result !== "refused") refusedSince = null;
      else refusedSince ??= Date.now();
      failures = result === "failed" ? failures + 1 : 0;
      // A moment of refused connections is not a death (workerd restarting); only a longer silence is.
      if (refusedSince !== null && Date.now() - refusedSince >= HEALTH_REFUSED_FOR_MS) edgeDown("stopped listening (connection refused)");
      else if (failures >= HEALTH_FAILURES_MAX) edgeDown(`stopped answering /health within ${HEALTH_PROBE_TIMEOUT_MS} ms`);
      if (recovering.edge) {
        refusedSince = null;
        failures = 0;
      }
    }
    if (running) probeTimer = setTimeout(() => void probeLoop(), refusedSince !== null ? HEALTH_RECHECK_MS : HEALTH_PROBE_INTERVAL_MS);
  };

  try {
    await applyMigrations(join(stateDir, "state"), wranglerEnv);
    await startEdge();
    const register = await fetch(`${url}/api/v1/admin/servers/${LOCAL_SERVER_ID}`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${secrets.apiKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ name: `${hostname()} (local)`, token: secrets.agentToken }),
      signal: AbortSignal.timeout(HEALTH_PROBE_TIMEOUT_MS),
    });
    if (!register.ok) throw new Error(`registering server "${LOCAL_SERVER_ID}" failed: HTTP ${register.status} ${await register.text()}`);
    await startAgent();
  } catch (error) {
    // Whatever started is stopped again: a failed start leaves no processes behind.
    await stopAll();
    throw error;
  }
  running = true;
  probeTimer = setTimeout(() => void probeLoop(), HEALTH_PROBE_INTERVAL_MS);

  return {
    url,
    apiKey: secrets.apiKey,
    agentToken: secrets.agentToken,
    get agent(): ProcessHandle {
      return agent ?? { pid: undefined, kill: () => false, exited: Promise.resolve({ code: null, signal: null }) };
    },
    async waitForAgent() {
      await recovering.agent;
      await agentOnline();
    },
    async stopAgent() {
      await recovering.agent;
      const old = agent;
      agent = null;
      await old?.stop();
    },
    async restartAgent() {
      await recovering.agent;
      const old = agent;
      agent = null;
      await old?.stop();
      await startAgent();
    },
    async restartEdge() {
      await recovering.edge;
      // Marked as a recovery, so the health probe neither counts the planned gap nor "recovers".
      const restart = (async () => {
        const old = edge;
        edge = null;
        await old?.stop();
        await startEdge();
      })();
      recovering.edge = restart.catch(() => {}).finally(() => (recovering.edge = null));
      await restart;
      await agentOnline();
    },
    stop: stopAll,
  };
}
