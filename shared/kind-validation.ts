/**
 * Validation of the create fields that pick a session's kind (seed 002): SSH (`ssh_*`), its
 * SOCKS5 proxy (`socks5_*`), the X11 display wait and desktop, and PID attach. Shared by the edge
 * (refuses before anything reaches an agent) and the agent (checks again). Every refusal is a 400
 * with a code; nothing here echoes a password back.
 */
import { ApiError } from "./errors.ts";
import type { CreateSessionParams, DesktopEnv, SshParams } from "./links/control.ts";

/** Longest ssh_password accepted, in characters. */
export const SSH_PASSWORD_MAX_CHARS = 1024;
/** Longest base64 ssh_key accepted, in characters (48 KiB decoded: an RSA-16384 PEM fits). */
export const SSH_KEY_MAX_CHARS = 65_536;
/** Longest SOCKS5 user name or password, in bytes (RFC 1929: one length byte). */
export const SOCKS5_CREDENTIAL_MAX_BYTES = 255;
/** Default and longest display wait, in seconds. */
export const WAIT_TIMEOUT_DEFAULT_S = 300;
export const WAIT_TIMEOUT_MAX_S = 3_600;
/** Largest pid Linux hands out (pid_max's ceiling, 2^22). */
export const PID_MAX = 4_194_304;
export const SSH_PORT_DEFAULT = 22;
export const SOCKS5_PORT_DEFAULT = 1080;
export const DESKTOP_ENVS: readonly DesktopEnv[] = ["xfce", "mate"];

/**
 * Characters an ssh_password may not hold (the seed: "cannot contain shell-dangerous
 * characters"): shell metacharacters, quotes, backslash, and control characters (newline, NUL…).
 * edgetty never puts the password through a shell, but the seed's clients rely on the refusal.
 */
export const SHELL_DANGEROUS = /[`$\\"';&|<>(){}\u0000-\u001f\u007f]/;

/** A DNS name or an IPv4 address: letters, digits, `-`, `_`, `.`, never starting with `-`. */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;
/** An IPv6 literal, with or without brackets. */
const HOST_IPV6 = /^\[?[0-9A-Fa-f:.]{2,45}\]?$/
/** A remote account name: no leading `-` (never an option), no `@` or `%` (ssh expands those). */
const SSH_USER = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}\$?$/;
const BASE64 = /^[A-Za-z0-9+/\r\n]+={0,2}\s*$/;

/**
 * A field is absent when undefined, null or "" (an empty query parameter). `false` is a value: for
 * a text or number field a wrong type, refused like `true` (it used to count as absent, so
 * `"pid": false` started a local shell instead of the attach asked for).
 */
function given(value: unknown): boolean {
  return value !== undefined && value !== null && value !== "";
}

function bad(message: string, code = "INVALID_PARAMETERS"): ApiError {
  return new ApiError(400, code, message);
}

function text(value: unknown, name: string, max: number): string | undefined {
  if (!given(value)) return undefined;
  if (typeof value !== "string" || value.length > max || value.includes("\0")) {
    throw bad(`${name} must be a string of at most ${max} characters, without NUL`);
  }
  return value;
}

function host(value: unknown, name: string): string | undefined {
  const h = text(value, name, 255);
  if (h === undefined) return undefined;
  if (HOST_NAME.test(h)) return h;
  if (HOST_IPV6.test(h) && h.includes(":")) return h.replace(/^\[|\]$/g, "");
  throw bad(`${name} must be a host name or an IP address`);
}

/** An integer field given as a number or a decimal string, within [min, max]. */
function int(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (!given(value) && value !== 0) return fallback;
  const n = typeof value === "number" ? value : typeof value === "string" && /^\d{1,10}$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw bad(`${name} must be an integer ${min}-${max}`);
  return n;
}

function bool(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined || value === null) return fallback;
  if (typeof value === "boolean") return value;
  if (value === "true" || value === "1" || value === "") return true;
  if (value === "false" || value === "0") return false;
  throw bad(`${name} must be a boolean`);
}

function utf8Length(s: string): number {
  return new TextEncoder().encode(s).byteLength;
}

/** Decodes a base64 ssh_key and checks that it holds a PEM (or OpenSSH) private key. */
export function decodeSshKey(b64: string): string {
  let pem: string;
  try {
    pem = atob(b64.replace(/\s+/g, ""));
  } catch {
    throw bad("ssh_key must be base64", "INVALID_SSH_KEY");
  }
  if (!/^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/m.test(pem) || !/-----END [A-Z0-9 ]*PRIVATE KEY-----/.test(pem)) {
    throw bad("ssh_key must be a base64-encoded PEM private key", "INVALID_SSH_KEY");
  }
  return pem;
}

/**
 * Checks an SSH session's target as the agent received it (the agent checks again, whoever sent
 * it): the host, user and proxy host parseSsh would have taken, so none can reach ssh's command
 * line or config as an option, a `%` token or a second line. Throws 400 INVALID_PARAMETERS.
 */
export function checkSshTarget(ssh: SshParams): void {
  host(ssh.host, "ssh_host");
  if (!SSH_USER.test(ssh.user)) throw bad(`ssh_user "${ssh.user.slice(0, 64)}" is not a valid user name`);
  if (ssh.socks5) host(ssh.socks5.host, "socks5_host");
}

function parseSsh(source: Record<string, unknown>): SshParams | undefined {
  const sshHost = host(source["ssh_host"], "ssh_host");
  const sshUser = text(source["ssh_user"], "ssh_user", 64);
  const others = ["ssh_port", "ssh_password", "ssh_key", "socks5_host", "socks5_port", "socks5_user", "socks5_pass"];
  if (sshHost === undefined && sshUser === undefined) {
    const stray = others.find((k) => given(source[k]));
    if (stray) throw bad(`${stray} needs ssh_host and ssh_user`);
    return undefined;
  }
  if (sshHost === undefined || sshUser === undefined) throw bad("ssh_host and ssh_user go together: give both or neither");
  if (!SSH_USER.test(sshUser)) throw bad(`ssh_user "${sshUser}" is not a valid user name`);
  const ssh: SshParams = { host: sshHost, user: sshUser, port: int(source["ssh_port"], "ssh_port", SSH_PORT_DEFAULT, 1, 65_535) };
  const rawPassword = source["ssh_password"];
  if (typeof rawPassword === "string" && SHELL_DANGEROUS.test(rawPassword)) {
    throw bad("ssh_password cannot contain shell-dangerous characters (` $ \\ \" ' ; & | < > ( ) { } or control characters)", "INVALID_SSH_PASSWORD");
  }
  const password = text(rawPassword, "ssh_password", SSH_PASSWORD_MAX_CHARS);
  if (password !== undefined) ssh.password = password;
  const key = text(source["ssh_key"], "ssh_key", SSH_KEY_MAX_CHARS);
  if (key !== undefined) {
    if (!BASE64.test(key)) throw bad("ssh_key must be base64", "INVALID_SSH_KEY");
    decodeSshKey(key);
    ssh.key = key;
  }
  const proxyHost = host(source["socks5_host"], "socks5_host");
  const proxyUser = text(source["socks5_user"], "socks5_user", SOCKS5_CREDENTIAL_MAX_BYTES);
  const proxyPass = text(source["socks5_pass"], "socks5_pass", SOCKS5_CREDENTIAL_MAX_BYTES);
  if (proxyHost === undefined) {
    if (given(source["socks5_port"]) || proxyUser !== undefined || proxyPass !== undefined) throw bad("socks5_port, socks5_user and socks5_pass need socks5_host");
    return ssh;
  }
  if (proxyPass !== undefined && proxyUser === undefined) throw bad("socks5_pass needs socks5_user");
  if ((proxyUser && utf8Length(proxyUser) > SOCKS5_CREDENTIAL_MAX_BYTES) || (proxyPass && utf8Length(proxyPass) > SOCKS5_CREDENTIAL_MAX_BYTES)) {
    throw bad(`socks5_user and socks5_pass are at most ${SOCKS5_CREDENTIAL_MAX_BYTES} bytes`);
  }
  ssh.socks5 = {
    host: proxyHost,
    port: int(source["socks5_port"], "socks5_port", SOCKS5_PORT_DEFAULT, 1, 65_535),
    ...(proxyUser !== undefined ? { user: proxyUser } : {}),
    ...(proxyPass !== undefined ? { pass: proxyPass } : {}),
  };
  return ssh;
}

/**
 * Adds the kind fields of `source` (a create body or a WebSocket query) to `params`, whose
 * `display` is already parsed. Throws a 400 ApiError on anything malformed or contradictory.
 */
export function parseKindParams(source: Record<string, unknown>, params: CreateSessionParams): void {
  const ssh = parseSsh(source);
  const pid = given(source["pid"]) ? int(source["pid"], "pid", 0, 1, PID_MAX) : undefined;
  if (ssh && pid !== undefined) throw bad("pid and ssh_host pick different kinds of session: give one");
  if (ssh) params.ssh = ssh;
  if (pid !== undefined) params.pid = pid;

  const envName = text(source["desktop_env"], "desktop_env", 16);
  if (envName !== undefined && !(DESKTOP_ENVS as readonly string[]).includes(envName)) {
    throw bad(`desktop_env must be one of ${DESKTOP_ENVS.join(", ")}`, "INVALID_DESKTOP_ENV");
  }
  const desktop = envName !== undefined || bool(source["desktop"], "desktop", false);
  if (desktop) {
    if (!params.display || params.ephemeral) throw bad("desktop needs a display (and ephemeral sessions get none)");
    if (ssh || pid !== undefined) throw bad("desktop applies to local sessions only");
    params.desktop_env = (envName as DesktopEnv | undefined) ?? "xfce";
  }
  const wait = bool(source["wait_until_display"], "wait_until_display", params.display !== undefined);
  if (params.display !== undefined && !params.ephemeral) {
    params.wait_until_display = wait;
    params.wait_timeout = int(source["wait_timeout"], "wait_timeout", WAIT_TIMEOUT_DEFAULT_S, 0, WAIT_TIMEOUT_MAX_S);
  } else if (given(source["wait_timeout"])) {
    int(source["wait_timeout"], "wait_timeout", WAIT_TIMEOUT_DEFAULT_S, 0, WAIT_TIMEOUT_MAX_S);
  }
}

/**
 * Longest an SSH create waits for the login to go through or fail, in milliseconds (ssh's own
 * connect timeout is 10 s; the rest is key exchange and authentication).
 */
export const SSH_SETTLE_TIMEOUT_MS = 30_000;

/**
 * How long the edge waits for the agent's answer to a create, in milliseconds: `baseMs` plus the
 * display wait and the SSH login the agent performs before answering.
 */
export function createTimeoutMs(params: CreateSessionParams, baseMs: number): number {
  let ms = baseMs;
  if (params.wait_until_display && params.wait_timeout !== undefined) ms += params.wait_timeout * 1000;
  if (params.ssh) ms += SSH_SETTLE_TIMEOUT_MS;
  return ms;
}
