/**
 * Many hosts on one machine: N more agents beside a running edge, each registered as its own
 * server (`<prefix>-1` … `<prefix>-N`) with its own random token (in a 0600 file), its own
 * temporary HOME and data folder, so multi-server behaviour can be tried and tested locally.
 * scripts/multi-agent.ts runs the local stack with these; tests call startExtraAgents directly.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isServerId } from "../../shared/validation.ts";
import { cliToken } from "./local-secrets.ts";
import { REPO_ROOT, STARTUP_TIMEOUT_MS, STOP_GRACE_MS } from "./local-stack.ts";
import { AGENT_NODE_FLAGS } from "./agent-node-flags.ts";

/** Most extra agents one call starts. */
export const EXTRA_AGENTS_MAX = 64;
/** Pause between polls of the server list while agents come up, in milliseconds. */
const ONLINE_POLL_MS = 100;

export interface ExtraAgentsOptions {
  /** The edge's base URL and admin key. */
  url: string;
  apiKey: string;
  count: number;
  /** Server ids are `${prefix}-${n}`; "agent" by default. */
  prefix?: string;
  /** Extra environment for every agent (and so for its shells). */
  env?: Record<string, string>;
}

export interface ExtraAgent {
  server: string;
  token: string;
  /** HOME of this agent and its shells (a temporary folder, removed on stop). */
  home: string;
  process: ChildProcess;
}

export interface ExtraAgents {
  agents: ExtraAgent[];
  /** Stops every agent, unregisters its server and removes its folders. */
  stop(): Promise<void>;
}

async function admin(options: ExtraAgentsOptions, method: string, path: string, body?: unknown): Promise<Response> {
  const res = await fetch(`${options.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${options.apiKey}`, "Content-Type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${await res.text()}`);
  return res;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
    child.once("exit", () => {
      clearTimeout(timer);
      done();
    });
    child.kill("SIGTERM");
  });
}

/** Registers and starts `count` agents against the edge at `url`; resolves once all are online. */
export async function startExtraAgents(options: ExtraAgentsOptions): Promise<ExtraAgents> {
  const prefix = options.prefix ?? "agent";
  if (!Number.isInteger(options.count) || options.count < 1 || options.count > EXTRA_AGENTS_MAX) {
    throw new RangeError(`count must be 1-${EXTRA_AGENTS_MAX}`);
  }
  const base = mkdtempSync(join(tmpdir(), "edgetty-agents-"));
  const agents: ExtraAgent[] = [];
  const stop = async () => {
    await Promise.all(agents.map((a) => stopChild(a.process)));
    await Promise.all(agents.map((a) => admin(options, "DELETE", `/api/v1/admin/servers/${a.server}`).catch(() => undefined)));
    rmSync(base, { recursive: true, force: true });
  };
  try {
    for (let n = 1; n <= options.count; n++) {
      const server = `${prefix}-${n}`;
      if (!isServerId(server)) throw new Error(`"${server}" is not a valid server id`);
      const token = cliToken();
      await admin(options, "PUT", `/api/v1/admin/servers/${server}`, { name: `extra agent ${n}`, token });
      const dir = join(base, server);
      const home = join(dir, "home");
      mkdirSync(home, { recursive: true });
      const tokenFile = join(dir, "token");
      writeFileSync(tokenFile, token + "\n", { mode: 0o600 });
      const log = openSync(join(dir, "agent.log"), "a");
      const child = spawn(
        process.execPath,
        [...AGENT_NODE_FLAGS, join(REPO_ROOT, "bin", "edgetty.js"), "agent", "--edge", options.url, "--server", server, "--token-file", tokenFile, "--data-dir", join(dir, "data")],
        { cwd: dir, stdio: ["ignore", log, log], env: { ...process.env, ...options.env, HOME: home, EDGETTY_AGENT_TOKEN: "" } },
      );
      agents.push({ server, token, home, process: child });
    }
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    for (;;) {
      const exited = agents.find((a) => a.process.exitCode !== null || a.process.signalCode !== null);
      if (exited) throw new Error(`agent ${exited.server} exited; see ${join(base, exited.server, "agent.log")}`);
      const servers = (await (await admin(options, "GET", "/api/v1/terminals/")).json()) as { id: string; online: boolean }[];
      const online = new Set(servers.filter((s) => s.online).map((s) => s.id));
      if (agents.every((a) => online.has(a.server))) break;
      if (Date.now() > deadline) throw new Error(`extra agents not online after ${STARTUP_TIMEOUT_MS} ms`);
      await new Promise((r) => setTimeout(r, ONLINE_POLL_MS));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { agents, stop };
}
