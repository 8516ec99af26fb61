/**
 * Real network peers for session-kind tests, started on loopback on free ports, each in its own
 * temporary folder, and removed on stop(): an OpenSSH server with a password user and a key user,
 * a Dante SOCKS5 server (with or without username authentication), and Xvfb. Creating users
 * needs root; every user made here is deleted again (home included) by stop().
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../worker/cli/local-stack.ts";
import { Waiters } from "./waiters.ts";

/** How long a peer may take to start listening, in milliseconds. */
export const PEER_START_TIMEOUT_MS = 15_000;
/** Most of a peer's log kept in memory, in bytes. */
const PEER_LOG_MAX_BYTES = 256 << 10; // 256 KiB

/** A child process whose stderr (and stdout) is collected, with waits on what it printed. */
class Peer {
  log = "";
  exited = false;
  private readonly waiters = new Waiters();
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    const take = (d: Buffer) => {
      this.log += d.toString();
      if (this.log.length > PEER_LOG_MAX_BYTES) this.log = this.log.slice(-PEER_LOG_MAX_BYTES);
      this.waiters.notify();
    };
    child.stdout?.on("data", take);
    child.stderr?.on("data", take);
    child.once("exit", () => {
      this.exited = true;
      this.waiters.notify();
    });
  }

  /** Waits until the log matches `pattern` (fails early if the process exits). */
  async waitForLog(pattern: RegExp, timeoutMs = PEER_START_TIMEOUT_MS): Promise<void> {
    await this.waiters.until(() => pattern.test(this.log) || this.exited, `${this.name} to log ${pattern}`, timeoutMs, () => `; log: ${this.log.slice(-800)}`);
    if (!pattern.test(this.log)) throw new Error(`${this.name} exited: ${this.log.slice(-800)}`);
  }

  stop(): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once("exit", () => resolve());
      this.child.kill("SIGTERM");
    });
  }
}

/** A throwaway local account (name, password, home), deleted by remove(). */
export interface TestUser {
  name: string;
  password: string;
  uid: number;
  home: string;
  remove(): void;
}

/** Characters test passwords are made of: none of them is shell-dangerous (kind-validation.ts). */
const SAFE_PASSWORD_CHARS = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789@%+=:,._-";

export function randomPassword(length = 20): string {
  const bytes = randomBytes(length);
  return [...bytes].map((b) => SAFE_PASSWORD_CHARS[b % SAFE_PASSWORD_CHARS.length]).join("");
}

/** Creates a user `edgetty-<tag>-<random>` with a password and a home, in `groups` too. */
export function createUser(tag: string, groups: string[] = []): TestUser {
  const name = `et${tag}${randomBytes(3).toString("hex")}`.slice(0, 30);
  const password = randomPassword();
  execFileSync("useradd", ["-m", "-s", "/bin/sh", ...(groups.length ? ["-G", groups.join(",")] : []), name], { stdio: "ignore" });
  execFileSync("chpasswd", [], { input: `${name}:${password}\n`, stdio: ["pipe", "ignore", "ignore"] });
  const [, , uid, , , home] = execFileSync("getent", ["passwd", name], { encoding: "utf8" }).trim().split(":");
  return {
    name,
    password,
    uid: Number(uid),
    home: home!,
    remove() {
      try {
        execFileSync("pkill", ["-KILL", "-u", name], { stdio: "ignore" });
      } catch {
        /* nothing running */
      }
      execFileSync("userdel", ["-r", "-f", name], { stdio: "ignore" });
    },
  };
}

/** A local group `etg<random>`, deleted by remove(). */
export function createGroup(): { name: string; remove(): void } {
  const name = `etg${randomBytes(3).toString("hex")}`;
  execFileSync("groupadd", [name], { stdio: "ignore" });
  return { name, remove: () => execFileSync("groupdel", [name], { stdio: "ignore" }) };
}

export interface SshServer {
  port: number;
  passwordUser: TestUser;
  keyUser: TestUser;
  /** The key user's private key (OpenSSH PEM), base64 as ssh_key takes it. */
  keyBase64: string;
  log(): string;
  stop(): Promise<void>;
}

/** sshd on 127.0.0.1:<free port> with its own config and host key in a temp folder. */
export async function startSshd(): Promise<SshServer> {
  const dir = mkdtempSync(join(tmpdir(), "edgetty-sshd-"));
  chmodSync(dir, 0o755);
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // sshd's privilege-separation folder
  const passwordUser = createUser("pw");
  const keyUser = createUser("key");
  try {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host_ed25519")], { stdio: "ignore" });
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "edgetty-test", "-f", join(dir, "client")], { stdio: "ignore" });
    const keys = join(dir, "authorized");
    mkdirSync(keys, { mode: 0o755 });
    writeFileSync(join(keys, keyUser.name), readFileSync(join(dir, "client.pub")), { mode: 0o644 });
    const port = await freePort();
    writeFileSync(
      join(dir, "sshd_config"),
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${join(dir, "host_ed25519")}`,
        `PidFile ${join(dir, "sshd.pid")}`,
        `AuthorizedKeysFile ${keys}/%u`,
        "StrictModes no",
        "UsePAM no",
        "PasswordAuthentication yes",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "PermitRootLogin no",
        `AllowUsers ${passwordUser.name} ${keyUser.name}`,
        "LogLevel VERBOSE",
        "PrintMotd no",
        "PrintLastLog no",
        "",
      ].join("\n"),
    );
    const peer = new Peer("sshd", spawn("/usr/sbin/sshd", ["-D", "-e", "-f", join(dir, "sshd_config")], { stdio: ["ignore", "pipe", "pipe"] }));
    await peer.waitForLog(/Server listening on 127\.0\.0\.1 port/);
    return {
      port,
      passwordUser,
      keyUser,
      keyBase64: readFileSync(join(dir, "client")).toString("base64"),
      log: () => peer.log,
      async stop() {
        await peer.stop();
        passwordUser.remove();
        keyUser.remove();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    passwordUser.remove();
    keyUser.remove();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

export interface SocksServer {
  port: number;
  /** Set when the server asks for a username (a system account, as Dante checks it). */
  user: TestUser | null;
  log(): string;
  stop(): Promise<void>;
}

/** Dante (danted) on 127.0.0.1:<free port>, logging each connection it passes. */
export async function startDante(opts: { auth: boolean }): Promise<SocksServer> {
  const dir = mkdtempSync(join(tmpdir(), "edgetty-dante-"));
  const user = opts.auth ? createUser("sx") : null;
  try {
    const port = await freePort();
    const config = join(dir, "danted.conf");
    writeFileSync(
      config,
      [
        "logoutput: stderr",
        `internal: 127.0.0.1 port = ${port}`,
        "external: 127.0.0.1",
        `socksmethod: ${opts.auth ? "username" : "none"}`,
        "clientmethod: none",
        "user.privileged: root",
        "user.unprivileged: nobody",
        "client pass {",
        "  from: 127.0.0.0/8 to: 0.0.0.0/0",
        "  log: error",
        "}",
        "socks pass {",
        "  from: 127.0.0.0/8 to: 127.0.0.0/8",
        "  command: connect",
        "  log: connect error",
        "}",
        "",
      ].join("\n"),
    );
    const peer = new Peer("danted", spawn("/usr/sbin/danted", ["-f", config, "-N", "1", "-p", join(dir, "danted.pid")], { stdio: ["ignore", "pipe", "pipe"] }));
    await peer.waitForLog(/Dante\/server\S* v[\d.]+ running/);
    return {
      port,
      user,
      log: () => peer.log,
      async stop() {
        await peer.stop();
        user?.remove();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    user?.remove();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

export interface XServer {
  /** The display number Xvfb took (":N" without the colon). */
  display: number;
  stop(): Promise<void>;
}

/** Xvfb on the first free display, no TCP; ready once it wrote its display number (-displayfd). */
export async function startXvfb(): Promise<XServer> {
  const child = spawn("Xvfb", ["-displayfd", "3", "-nolisten", "tcp", "-screen", "0", "320x240x24"], { stdio: ["ignore", "ignore", "pipe", "pipe"] });
  const peer = new Peer("Xvfb", child);
  let number = "";
  const ready = new Waiters();
  child.stdio[3]!.on("data", (d: Buffer) => {
    number += d.toString();
    ready.notify();
  });
  await ready.until(() => /\d+\n/.test(number) || peer.exited, "Xvfb's display number", PEER_START_TIMEOUT_MS);
  if (!/\d+\n/.test(number)) throw new Error(`Xvfb exited: ${peer.log.slice(-800)}`);
  return { display: Number(number.trim()), stop: () => peer.stop() };
}
