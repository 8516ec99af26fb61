/**
 * SSH sessions: the PTY runs the system's OpenSSH client with a per-session config (`ssh -F`), so
 * no system or user ssh_config, no agent keys and no forwarding apply.
 *
 * Secrets:
 * - `ssh_password` is written to `<dir>/password` (0600) in the session's private folder (0700,
 *   owned by the agent) and handed to ssh through SSH_ASKPASS (SSH_ASKPASS_REQUIRE=force): a
 *   generated askpass script `cat`s the file. The password is never on a command line, in any
 *   process's environment, in the PTY's output or in a log. Answering the prompt on the PTY was
 *   rejected: it would mean recognising prompts in untrusted output and racing the user's typing.
 * - `ssh_key` is written to `<dir>/key` (0600) and named by IdentityFile.
 * Both files go as soon as the login is through, and the folder when the session ends.
 *
 * Host keys: StrictHostKeyChecking=accept-new into the agent's own known_hosts
 * (`<dataDir>/ssh/known_hosts`): a host seen for the first time is trusted and remembered, a
 * changed key is refused (SSH_HOST_KEY_MISMATCH).
 *
 * Outcome: a LocalCommand (run by ssh once authenticated) creates `<dir>/connected`; ssh's own
 * log goes to `<dir>/ssh.log` (-E). When ssh exits before connecting, the log's last error
 * names the failure (auth, refused port, unknown host, host key, SOCKS5).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, watch, writeFileSync, chmodSync, type FSWatcher } from "node:fs";
import { homedir, userInfo } from "node:os";
import { join } from "node:path";
import type { CreateSessionParams, SshParams } from "../../../shared/links/control.ts";
import { ApiError } from "../../../shared/errors.ts";
import type { ErrorInfo, ExitInfo } from "../../../shared/links/client.ts";
import { checkSshTarget, decodeSshKey, SSH_SETTLE_TIMEOUT_MS } from "../../../shared/kind-validation.ts";
import { OscScanner } from "../osc.ts";
import type { IntegrationTarget } from "../shell-integration.ts";
import { which, type SpawnPlan } from "../spawn.ts";
import type { KindLaunch } from "./launch.ts";
import { openSocks5Bridge, type Socks5Bridge } from "./socks5.ts";
import { makeDirectoriesSync } from "../make-directories.ts";

/** TCP connect and banner timeout handed to ssh, in seconds. */
export const SSH_CONNECT_TIMEOUT_S = 10;
/** Keep-alives: a dead server is noticed after interval × count seconds. */
export const SSH_ALIVE_INTERVAL_S = 15;
export const SSH_ALIVE_COUNT = 3;
/** Most of ssh's log read to explain a failure, in bytes. */
export const SSH_LOG_TAIL_BYTES = 4 << 10; // 4 KiB
/** Paths that go into ssh_config and sh unquoted must be made of these characters. */
const PLAIN_PATH = /^[A-Za-z0-9_./-]+$/;

export interface SshLaunchOptions {
  params: CreateSessionParams;
  ssh: SshParams;
  /** The agent's private runtime folder (shell-integration.ts prepareRuntimeDir). */
  runtimeDir: string;
  /** The agent's data folder; known_hosts lives in `ssh/` under it. */
  dataDir: string;
  log(line: string): void;
}

/** Turns ssh's last log line into an error code. */
export function classifySshFailure(logText: string, proxyFailure: string | null, target: string): ErrorInfo {
  if (proxyFailure) return { code: "SOCKS5_FAILED", message: `SSH to ${target} failed: ${proxyFailure}` };
  const lines = logText
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !/^Warning: Permanently added/.test(l) && !/^@+$/.test(l));
  const all = lines.join("\n");
  const last = lines[lines.length - 1] ?? "ssh exited before logging in";
  const detail = (re: RegExp) => lines.slice().reverse().find((l) => re.test(l)) ?? last;
  let code = "SSH_CONNECT_FAILED";
  let line = last;
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/.test(all)) {
    code = "SSH_HOST_KEY_MISMATCH";
    line = detail(/Host key verification failed|REMOTE HOST IDENTIFICATION/);
  } else if (/Permission denied|Too many authentication failures|Authentication failed|No more authentication methods/.test(all)) {
    code = "SSH_AUTH_FAILED";
    line = detail(/Permission denied|authentication/i);
  } else if (/Could not resolve hostname|Name or service not known|nodename nor servname/.test(all)) {
    code = "SSH_UNKNOWN_HOST";
    line = detail(/resolve hostname|Name or service/);
  } else if (/Connection refused/.test(all)) {
    code = "SSH_CONNECTION_REFUSED";
    line = detail(/Connection refused/);
  } else if (/timed out|Connection timed out/i.test(all)) {
    code = "SSH_TIMEOUT";
    line = detail(/timed out/i);
  } else if (/SOCKS5 bridge/.test(all)) {
    code = "SOCKS5_FAILED";
  }
  return { code, message: `SSH to ${target} failed: ${line}` };
}

function readTail(path: string): string {
  try {
    const text = readFileSync(path, "utf8");
    return text.length > SSH_LOG_TAIL_BYTES ? text.slice(-SSH_LOG_TAIL_BYTES) : text;
  } catch {
    return "";
  }
}

/** Builds the per-session ssh_config. Every path in it is plain (PLAIN_PATH), so nothing is quoted. */
function sshConfig(o: { dir: string; knownHosts: string; ssh: SshParams; keyFile: string | null; proxyCommand: string | null }): string {
  const { ssh } = o;
  const hasPassword = ssh.password !== undefined;
  const interactive = !hasPassword && !o.keyFile;
  const lines = [
    "Host *",
    "  StrictHostKeyChecking accept-new",
    `  UserKnownHostsFile ${o.knownHosts}`,
    "  GlobalKnownHostsFile /dev/null",
    "  HashKnownHosts no",
    "  UpdateHostKeys no",
    "  CheckHostIP no",
    "  IdentitiesOnly yes",
    `  IdentityFile ${o.keyFile ?? "none"}`,
    "  IdentityAgent none",
    "  AddKeysToAgent no",
    "  ForwardAgent no",
    "  ForwardX11 no",
    "  ClearAllForwardings yes",
    "  ControlMaster no",
    "  ControlPath none",
    // LocalCommand (the login marker) needs PermitLocalCommand, which also lets `~C` run
    // `!command` on this host; `~C` adds port forwardings too. No escapes: `~` goes to the remote.
    "  EscapeChar none",
    "  PermitLocalCommand yes",
    `  LocalCommand : > ${o.dir}/connected`,
    `  ConnectTimeout ${SSH_CONNECT_TIMEOUT_S}`,
    `  ServerAliveInterval ${SSH_ALIVE_INTERVAL_S}`,
    `  ServerAliveCountMax ${SSH_ALIVE_COUNT}`,
    "  NumberOfPasswordPrompts 1",
    "  LogLevel ERROR",
    "  RequestTTY yes",
    `  PubkeyAuthentication ${o.keyFile ? "yes" : "no"}`,
    `  PasswordAuthentication ${hasPassword || interactive ? "yes" : "no"}`,
    `  KbdInteractiveAuthentication ${hasPassword || interactive ? "yes" : "no"}`,
    "  PreferredAuthentications publickey,keyboard-interactive,password",
  ];
  if (o.proxyCommand) lines.push(`  ProxyCommand ${o.proxyCommand}`);
  return lines.join("\n") + "\n";
}

/** Prepares an SSH session's private folder, config and secrets; the PTY runs ssh. */
export async function prepareSsh(opts: SshLaunchOptions): Promise<KindLaunch> {
  const { ssh, params } = opts;
  checkSshTarget(ssh);
  const sshPath = which("ssh");
  if (!sshPath) throw new ApiError(500, "SSH_NOT_AVAILABLE", "The OpenSSH client (ssh) is not installed on this host");
  if (!PLAIN_PATH.test(opts.runtimeDir) || !PLAIN_PATH.test(opts.dataDir)) {
    throw new ApiError(500, "SPAWN_FAILED", "SSH sessions need the agent's data folder path to be plain (letters, digits, _ . / -)");
  }
  const sshDir = join(opts.dataDir, "ssh");
  makeDirectoriesSync(sshDir, 0o700);
  chmodSync(sshDir, 0o700);
  const knownHosts = join(sshDir, "known_hosts");
  const dir = mkdtempSync(join(opts.runtimeDir, "ssh-"));
  chmodSync(dir, 0o700);
  const target = `${ssh.user}@${ssh.host}:${ssh.port}`;
  let bridge: Socks5Bridge | null = null;
  let watcher: FSWatcher | null = null;
  const cleanup = () => {
    watcher?.close();
    watcher = null;
    bridge?.close();
    bridge = null;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const passwordFile = join(dir, "password");
    const keyFile = ssh.key !== undefined ? join(dir, "key") : null;
    const askpass = join(dir, "askpass");
    if (ssh.password !== undefined) {
      writeFileSync(passwordFile, ssh.password + "\n", { mode: 0o600, flag: "wx" });
      writeFileSync(askpass, `#!/bin/sh\nexec cat ${passwordFile}\n`, { mode: 0o700, flag: "wx" });
    }
    if (keyFile && ssh.key !== undefined) {
      const pem = decodeSshKey(ssh.key);
      writeFileSync(keyFile, pem.endsWith("\n") ? pem : pem + "\n", { mode: 0o600, flag: "wx" });
    }
    if (ssh.socks5) bridge = await openSocks5Bridge(dir, ssh.socks5, { host: ssh.host, port: ssh.port });
    const config = join(dir, "config");
    writeFileSync(config, sshConfig({ dir, knownHosts, ssh, keyFile, proxyCommand: bridge?.proxyCommand ?? null }), { mode: 0o600, flag: "wx" });

    const me = userInfo();
    const home = process.env.HOME || me.homedir || homedir();
    const env: Record<string, string> = {
      TERM: "xterm-256color",
      COLORTERM: "truecolor",
      HOME: home,
      USER: me.username,
      LOGNAME: me.username,
      // ssh runs LocalCommand and ProxyCommand with $SHELL.
      SHELL: "/bin/sh",
      PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
      EDGETTY_TERMINAL_ID: String(params.terminal_id),
    };
    for (const key of ["LANG", "LC_ALL", "LC_CTYPE", "TZ"]) if (process.env[key]) env[key] = process.env[key]!;
    if (ssh.password !== undefined) {
      env.SSH_ASKPASS = askpass;
      env.SSH_ASKPASS_REQUIRE = "force";
    }
    const plan: SpawnPlan = {
      shell: "sh",
      shellPath: "/bin/sh",
      account: { name: me.username, uid: me.uid, gid: me.gid, home, shell: "/bin/sh" },
      switchUser: false,
      setpriv: null,
      cwd: existsSync(home) ? home : "/",
      env,
    };

    const marker = join(dir, "connected");
    const logFile = join(dir, "ssh.log");
    let connected = false;
    let onConnected: (() => void) | null = null;
    const markConnected = () => {
      if (connected) return;
      connected = true;
      // The secrets have done their job.
      rmSync(passwordFile, { force: true });
      if (keyFile) rmSync(keyFile, { force: true });
      watcher?.close();
      watcher = null;
      onConnected?.();
    };
    try {
      watcher = watch(dir, (_event, name) => {
        if (name === "connected" && existsSync(marker)) markConnected();
      });
      watcher.on("error", () => undefined);
    } catch (error) {
      // No inotify left: the marker is still checked when ssh exits and when the wait ends.
      opts.log(`terminal ${params.terminal_id}: cannot watch the SSH login (${(error as Error).message})`);
    }
    const isConnected = () => {
      if (!connected && existsSync(marker)) markConnected();
      return connected;
    };
    const failure = (): ErrorInfo => classifySshFailure(readTail(logFile), bridge?.failure ?? null, target);

    let target_: IntegrationTarget | null = null;
    const scanner = new OscScanner((code, data) => {
      if (code === "0" || code === "2") target_?.setTitle(data);
    });
    const launch: KindLaunch = {
      shell: "ssh",
      plan,
      file: sshPath,
      args: ["-F", config, "-E", logFile, "-l", ssh.user, "-p", String(ssh.port), "--", ssh.host],
      env,
      onOutput(chunk) {
        scanner.push(chunk);
      },
      attach(t) {
        target_ = t;
      },
      describeExit(exit: ExitInfo) {
        if (!isConnected()) return exit.exit_code === 0 && exit.signal === 0 ? undefined : failure();
        if (exit.exit_code === 255) {
          const f = failure();
          return { code: "SSH_CONNECTION_LOST", message: f.message.replace(/failed: /, "lost: ") };
        }
        return undefined;
      },
      settled(exited) {
        // A login without credentials is typed by a person at ssh's prompt: nothing to wait for.
        if (ssh.password === undefined && ssh.key === undefined) return Promise.resolve();
        return new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => (isConnected(), resolve()), SSH_SETTLE_TIMEOUT_MS);
          timer.unref();
          onConnected = () => {
            clearTimeout(timer);
            resolve();
          };
          if (isConnected()) onConnected();
          void exited.then((exit) => {
            clearTimeout(timer);
            if (isConnected()) return resolve();
            // describeExit has read ssh's log already (the folder may be gone by now).
            const f = exit.error ?? { code: "SSH_CONNECT_FAILED", message: `SSH to ${target} ended before logging in` };
            reject(new ApiError(502, f.code, f.message));
          });
        });
      },
      dispose: cleanup,
    };
    return launch;
  } catch (error) {
    cleanup();
    if (error instanceof ApiError) throw error;
    throw new ApiError(500, "SPAWN_FAILED", `Cannot prepare the SSH session: ${(error as Error).message}`);
  }
}
