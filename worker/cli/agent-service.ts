/**
 * The agent as a systemd service: `edgetty agent install` writes a unit that runs this same
 * agent (restart on failure, JSON log lines to the journal) and puts the agent token in a
 * root-only file; `edgetty agent uninstall` takes both away. With a staging root (`--root DIR`)
 * the files go under DIR and the unit is enabled by its symlink only (nothing live is touched);
 * `--dry-run` prints what would be written and run, the token masked.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** How the unit starts the agent: node, its flags, then the script and its leading words. */
export interface ServiceProgram {
  /** Absolute path of the node binary. */
  node: string;
  /** Node flags (AGENT_NODE_FLAGS). */
  nodeArgs: string[];
  /** Absolute path of the script (the bundle, or bin/edgetty.js in a checkout). */
  script: string;
  /** Words before the agent's flags, e.g. ["agent"]. */
  scriptArgs: string[];
}

/** Where the service's files live, relative to the root. */
export interface ServicePaths {
  unitName: string;
  unit: string;
  /** The enable symlink multi-user.target.wants/<unit>. */
  wants: string;
  token: string;
  /** The agent's data folder (systemd's StateDirectory). */
  dataDir: string;
}

/** Paths of server `server`'s service, as seen on the host (not under a staging root). */
export function servicePaths(server: string): ServicePaths {
  const unitName = `edgetty-agent-${server}.service`;
  return {
    unitName,
    unit: `/etc/systemd/system/${unitName}`,
    wants: `/etc/systemd/system/multi-user.target.wants/${unitName}`,
    token: `/etc/edgetty/${server}.token`,
    dataDir: `/var/lib/edgetty/${server}`,
  };
}

/** One ExecStart word, quoted for systemd: `%` and `$` are escaped so they are taken literally. */
export function systemdQuote(word: string): string {
  if (/[\n\r]/.test(word)) throw new Error("a unit's command line cannot hold a newline");
  const escaped = word.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/%/g, "%%").replace(/\$/g, "$$$$");
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? escaped : `"${escaped}"`;
}

/** The unit file for server `server`, agent at `program`, dialing `edge`. */
export function renderUnit(opts: { edge: string; server: string; program: ServiceProgram }): string {
  const paths = servicePaths(opts.server);
  const argv = [
    opts.program.node,
    ...opts.program.nodeArgs,
    opts.program.script,
    ...opts.program.scriptArgs,
    "--edge", opts.edge,
    "--server", opts.server,
    "--token-file", paths.token,
    "--data-dir", paths.dataDir,
    "--log-format", "json",
  ];
  return `# Written by \`edgetty agent install\`; remove with \`edgetty agent uninstall --server ${opts.server}\`.
[Unit]
Description=edgetty agent for server ${opts.server}
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart=${argv.map(systemdQuote).join(" ")}
# The agent reconnects by itself; the service restarts only if the process itself fails.
Restart=on-failure
RestartSec=5s
# One JSON object per line on stdout: journalctl -u ${paths.unitName} -o cat
SyslogIdentifier=edgetty-agent-${opts.server}
StateDirectory=edgetty/${opts.server}
StateDirectoryMode=0700
# Stopping the agent ends its shells (they are its children, in its control group).
KillMode=control-group
TimeoutStopSec=15s

[Install]
WantedBy=multi-user.target
`;
}

interface CommonOptions {
  server: string;
  /** "/" for the live system, or a staging root. */
  root: string;
  dryRun: boolean;
  out(line: string): void;
}

function under(root: string, path: string): string {
  return root === "/" ? path : join(root, path);
}

function systemctl(args: string[], opts: CommonOptions): void {
  opts.out(`${opts.dryRun ? "would run" : "running"}: systemctl ${args.join(" ")}`);
  if (!opts.dryRun) execFileSync("systemctl", args, { stdio: "inherit" });
}

/**
 * Installs server `server`'s agent service: the token file (mode 0600, owner root when run as
 * root), the unit, its enable symlink; on the live system also `systemctl daemon-reload` and
 * `enable --now`. Overwrites an earlier install of the same server.
 */
export async function installAgentService(opts: CommonOptions & { edge: string; token: string; program: ServiceProgram }): Promise<void> {
  const paths = servicePaths(opts.server);
  const unit = renderUnit(opts);
  const tokenPath = under(opts.root, paths.token);
  const unitPath = under(opts.root, paths.unit);
  const wantsPath = under(opts.root, paths.wants);
  if (opts.dryRun) {
    opts.out(`would write ${tokenPath} (mode 0600, owner root): the agent token [redacted]`);
    opts.out(`would write ${unitPath}:\n${unit}`);
    opts.out(`would link ${wantsPath} -> ${paths.unit}`);
  } else {
    mkdirSync(dirname(dirname(tokenPath)), { recursive: true, mode: 0o755 });
    mkdirSync(dirname(tokenPath), { recursive: true, mode: 0o700 });
    // Written 0600 from the start (no window where another user could read it).
    rmSync(tokenPath, { force: true });
    writeFileSync(tokenPath, opts.token + "\n", { mode: 0o600, flag: "wx" });
    chmodSync(tokenPath, 0o600);
    if (process.getuid?.() === 0) chownSync(tokenPath, 0, 0);
    mkdirSync(dirname(unitPath), { recursive: true });
    writeFileSync(unitPath, unit, { mode: 0o644 });
    chmodSync(unitPath, 0o644);
    opts.out(`wrote ${tokenPath} (mode 0600) and ${unitPath}`);
  }
  if (opts.root === "/") {
    systemctl(["daemon-reload"], opts);
    systemctl(["enable", "--now", paths.unitName], opts);
  } else if (!opts.dryRun) {
    mkdirSync(dirname(wantsPath), { recursive: true });
    rmSync(wantsPath, { force: true });
    symlinkSync(paths.unit, wantsPath);
    opts.out(`enabled ${paths.unitName} in ${opts.root} (it starts when that root boots)`);
  }
}

/** Stops, disables and removes server `server`'s agent service and its token file; keeps its data folder. */
export async function uninstallAgentService(opts: CommonOptions): Promise<void> {
  const paths = servicePaths(opts.server);
  if (opts.root === "/") {
    try {
      systemctl(["disable", "--now", paths.unitName], opts);
    } catch (error) {
      opts.out(`systemctl disable failed (${(error as Error).message}); removing the files anyway`);
    }
  }
  for (const path of [paths.wants, paths.unit, paths.token].map((p) => under(opts.root, p))) {
    const present = existsSync(path) || isSymlink(path);
    if (!present) continue;
    if (opts.dryRun) opts.out(`would remove ${path}`);
    else {
      rmSync(path, { force: true });
      opts.out(`removed ${path}`);
    }
  }
  if (opts.root === "/") systemctl(["daemon-reload"], opts);
  opts.out(`kept ${under(opts.root, paths.dataDir)} (the agent's data); remove it by hand if unwanted`);
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
