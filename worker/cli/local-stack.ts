/**
 * The local stack: the Worker and its Durable Objects in workerd (wrangler's local mode, state
 * persisted under the state folder) plus an agent for this machine registered as server "local".
 * `npm start` and the end-to-end tests both run exactly this.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { hostname } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { EDGE_SETTINGS, parseSettings } from "../../shared/limits.ts";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** How long workerd and the agent may take to come up, in milliseconds. */
export const STARTUP_TIMEOUT_MS = 90_000;
/** How long processes get to exit after SIGTERM before SIGKILL, in milliseconds. */
export const STOP_GRACE_MS = 5_000;
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
}

export interface LocalStack {
  url: string;
  apiKey: string;
  agentToken: string;
  /** The agent's process (tests signal it: SIGUSR2 drops its links). */
  agent: ChildProcess;
  /** Resolves once the agent's control link is up (after a drop, say). */
  waitForAgent(): Promise<void>;
  /** Stops the agent (its shells end with it) and starts a new one, as an upgrade would. */
  restartAgent(): Promise<void>;
  /** Restarts workerd on the same port and state, as a redeploy would. */
  restartEdge(): Promise<void>;
  stop(): Promise<void>;
}

interface StoredSecrets {
  apiKey: string;
  agentToken: string;
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

function token(): string {
  return randomBytes(24).toString("base64url");
}

function loadSecrets(stateDir: string, apiKey: string | undefined): StoredSecrets {
  const file = join(stateDir, "secrets.json");
  let stored: Partial<StoredSecrets> = {};
  if (existsSync(file)) {
    try {
      stored = JSON.parse(readFileSync(file, "utf8")) as Partial<StoredSecrets>;
    } catch {
      stored = {};
    }
  }
  const secrets = { apiKey: apiKey ?? stored.apiKey ?? token(), agentToken: stored.agentToken ?? token() };
  writeFileSync(file, JSON.stringify(secrets, null, 2) + "\n", { mode: 0o600 });
  return secrets;
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((done) => {
    const timer = setTimeout(() => done(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      done(true);
    });
  });
}

async function stopProcess(child: ChildProcess, group: boolean): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      if (group && child.pid) process.kill(-child.pid, sig);
      else child.kill(sig);
    } catch {
      /* already gone */
    }
  };
  if (child.exitCode !== null || child.signalCode !== null) return;
  signal("SIGTERM");
  if (!(await waitForExit(child, STOP_GRACE_MS))) {
    signal("SIGKILL");
    await waitForExit(child, STOP_GRACE_MS);
  }
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

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
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
  const wranglerLog = createWriteStream(join(stateDir, "wrangler.log"), { flags: "a" });
  let edge: ChildProcess | null = null;
  let edgeFailure: string | null = null;
  const wranglerEnv: NodeJS.ProcessEnv = {
    ...process.env,
    // The closed network refuses these lookups; don't try them (no stack traces at start).
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_LOG_PATH: join(stateDir, "wrangler-logs"),
    // Each stack keeps its own dev registry, so stacks side by side don't trip over each other.
    WRANGLER_REGISTRY_PATH: join(stateDir, "wrangler-registry"),
    NO_UPDATE_NOTIFIER: "1",
    CI: process.env.CI ?? "",
  };

  const startEdge = async () => {
    edgeFailure = null;
    const inspectorPort = await freePort();
    const wrangler = join(REPO_ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
    const child = spawn(
      process.execPath,
      [
        wrangler, "dev",
        "--config", join(REPO_ROOT, "wrangler.toml"),
        "--ip", options.host,
        "--port", String(options.port),
        "--inspector-port", String(inspectorPort),
        "--persist-to", join(stateDir, "state"),
        "--env-file", envFile,
        "--show-interactive-dev-session=false",
        "--log-level", process.env.EDGETTY_WRANGLER_LOG_LEVEL ?? "warn",
      ],
      {
        cwd: REPO_ROOT,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        env: wranglerEnv,
      },
    );
    edge = child;
    child.stdout!.pipe(wranglerLog, { end: false });
    child.stderr!.pipe(wranglerLog, { end: false });
    child.once("exit", (code, signal) => (edgeFailure = `workerd exited (${signal ?? code}); see ${join(stateDir, "wrangler.log")}`));
    await waitFor(
      "edge",
      async () => ((await fetch(`${url}/health`)).ok ? true : null),
      () => edgeFailure,
    );
  };

  let agent: ChildProcess | null = null;
  const stopAll = async () => {
    if (agent) await stopProcess(agent, false);
    if (edge) await stopProcess(edge, true);
    wranglerLog.end();
  };
  let agentFailure: string | null = null;
  const agentOnline = () =>
    waitFor(
      "agent",
      async () => {
        const res = await fetch(`${url}/api/v1/terminals/`, { headers: { Authorization: `Bearer ${secrets.apiKey}` } });
        const servers = (await res.json()) as { id: string; online: boolean }[];
        return servers.some((s) => s.id === LOCAL_SERVER_ID && s.online) ? true : null;
      },
      () => agentFailure ?? edgeFailure,
    );

  const startAgent = (): ChildProcess => {
    agentFailure = null;
    const out = options.quiet ? openSync(join(stateDir, "agent.log"), "a") : "inherit";
    const child = spawn(
      process.execPath,
      // The flag the bin's shebang carries (a small young generation: flat memory under floods).
      ["--max-semi-space-size=1", join(REPO_ROOT, "bin", "edgetty.js"), "agent", "--edge", url, "--server", LOCAL_SERVER_ID, "--data-dir", join(stateDir, "agent")],
      { cwd: process.cwd(), stdio: ["ignore", out, out], env: { ...process.env, ...options.agentEnv, EDGETTY_AGENT_TOKEN: secrets.agentToken } },
    );
    child.once("exit", (code, signal) => {
      if (agent === child) agentFailure = `agent exited (${signal ?? code})`;
    });
    return child;
  };

  try {
    await applyMigrations(join(stateDir, "state"), wranglerEnv);
    await startEdge();
    const register = await fetch(`${url}/api/v1/admin/servers/${LOCAL_SERVER_ID}`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${secrets.apiKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ name: `${hostname()} (local)`, token: secrets.agentToken }),
    });
    if (!register.ok) throw new Error(`registering server "${LOCAL_SERVER_ID}" failed: HTTP ${register.status} ${await register.text()}`);
    agent = startAgent();
    await agentOnline();
  } catch (error) {
    // Whatever started is stopped again: a failed start leaves no processes behind.
    await stopAll();
    throw error;
  }
  return {
    url,
    apiKey: secrets.apiKey,
    agentToken: secrets.agentToken,
    get agent() {
      return agent!;
    },
    async waitForAgent() {
      await agentOnline();
    },
    async restartAgent() {
      const old = agent!;
      agent = null;
      await stopProcess(old, false);
      agent = startAgent();
      await agentOnline();
    },
    async restartEdge() {
      if (edge) await stopProcess(edge, true);
      await startEdge();
      await agentOnline();
    },
    stop: stopAll,
  };
}
