/**
 * Every kind of session end to end, through the real stack, against real peers on loopback:
 * SSH (password, key, failures) to an OpenSSH server, through Dante SOCKS5 (with and without
 * authentication), shells as another user, the X11 display wait against Xvfb, and PID attach.
 * Needs root (it creates and removes users) and the Debian packages .ci/run installs.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer, type AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROCESS_TAG_ENV } from "../../worker/agent/launch.ts";
import { freePort } from "../../worker/cli/local-stack.ts";
import { createGroup, createUser, startDante, startSshd, startXvfb, type SocksServer, type SshServer, type TestUser, type XServer } from "../support/peers.ts";
import { startStack, type TestStack } from "../support/stack.ts";
import { HttpRefusal, TermClient } from "../support/term-client.ts";
import { until } from "../support/waiters.ts";

const isRoot = process.getuid?.() === 0;

let stack: TestStack;
let sshd: SshServer;
let socks: SocksServer;
let socksAuth: SocksServer;
const clients: TermClient[] = [];
let nextId = 700;
/** The stack, sshd and two Dante servers start together; under a full suite's load, in milliseconds. */
const PEERS_START_MS = 150_000;

beforeAll(async () => {
  if (!isRoot) return;
  [stack, sshd, socks, socksAuth] = await Promise.all([startStack(), startSshd(), startDante({ auth: false }), startDante({ auth: true })]);
}, PEERS_START_MS);

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.allSettled([stack?.stop(), sshd?.stop(), socks?.stop(), socksAuth?.stop()]);
});

async function create(body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await stack.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function attach(query: string): Promise<TermClient> {
  const client = await TermClient.connect(`${stack.url}/api/v1/terminal/ws?${query}`, { apiKey: stack.apiKey });
  clients.push(client);
  return client;
}

function sshLogin(user: TestUser, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { terminal_id: nextId++, ssh_host: "127.0.0.1", ssh_user: user.name, ssh_port: String(sshd.port), ssh_password: user.password, ...extra };
}

/** Creates an SSH session, attaches, and checks `whoami` answers `user`'s name on the remote side. */
async function whoamiOver(body: Record<string, unknown>, user: string): Promise<TermClient> {
  const res = await create(body);
  expect(res).toMatchObject({ status: 200, body: { status: "created", shell: "ssh" } });
  const c = await attach(`terminal_id=${body["terminal_id"]}`);
  c.input("echo who=$(whoami)-$((6*7))\r");
  await c.waitForText(`who=${user}-42`);
  return c;
}

/** Every /proc/<pid>/{cmdline,environ} that contains `needle`, as "pid file". */
function processesHolding(needle: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    if (Number(pid) === process.pid) continue; // this test holds the password in its memory, not in these
    for (const file of ["cmdline", "environ"]) {
      try {
        if (readFileSync(`/proc/${pid}/${file}`).includes(needle)) found.push(`${pid} ${file}`);
      } catch {
        /* gone or not readable */
      }
    }
  }
  return found;
}

/** Longest a test waits for a process's state to change, in milliseconds. */
const PROC_WAIT_MS = 10_000;

/** Resolves once `/proc/<pid>/status` satisfies `test` (/proc has no change events, so it polls). */
async function untilProc(pid: number, test: (status: string) => boolean, what: string): Promise<void> {
  await until(what, () => test(readFileSync(`/proc/${pid}/status`, "utf8")), { timeoutMs: PROC_WAIT_MS });
}

/** How long a desktop may take to start or to end, in milliseconds (a loaded CI machine). */
const DESKTOP_START_MS = 60_000;

/** "pid comm" of every process whose environment names `display` (the desktop's and the shell's). */
function processesOnDisplay(display: string): string[] {
  const needle = Buffer.from(`\0DISPLAY=${display}\0`);
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      const environ = Buffer.concat([Buffer.from([0]), readFileSync(`/proc/${pid}/environ`)]);
      if (environ.includes(needle)) found.push(`${pid} ${readFileSync(`/proc/${pid}/comm`, "utf8").trim()}`);
    } catch {
      /* gone or not readable */
    }
  }
  return found;
}

/** The EWMH name of the window manager running on `display`, or null when none is. */
function windowManagerName(display: string): string | null {
  const xprop = (...args: string[]) => {
    try {
      return execFileSync("xprop", ["-display", display, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    } catch {
      return "";
    }
  };
  const check = /window id # (0x[0-9a-f]+)/.exec(xprop("-root", "_NET_SUPPORTING_WM_CHECK"))?.[1];
  if (!check) return null;
  return /_NET_WM_NAME\(UTF8_STRING\) = "(.*)"/.exec(xprop("-id", check, "_NET_WM_NAME"))?.[1] ?? null;
}

/** Files under `dir` whose content contains `needle`. */
function filesHolding(dir: string, needle: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    try {
      if (statSync(path).isFile() && readFileSync(path).includes(needle)) found.push(path);
    } catch {
      /* sockets, races */
    }
  }
  return found;
}

describe.runIf(isRoot)("session kinds end to end", () => {
  it("logs in over SSH with a password and runs whoami; raw output and the screen follow it", async () => {
    const body = sshLogin(sshd.passwordUser);
    const c = await whoamiOver(body, sshd.passwordUser.name);
    const raw = await stack.api(`/api/v1/terminal/raw?terminal_id=${body["terminal_id"]}&format=text`);
    expect(await raw.text()).toContain(`who=${sshd.passwordUser.name}-42`);
    const shot = await stack.api(`/api/v1/terminal/screenshot?terminal_id=${body["terminal_id"]}&save=false`);
    expect(shot.headers.get("content-type")).toBe("image/png");
    const history = await stack.api(`/api/v1/terminal/history/${body["terminal_id"]}`);
    expect(history.status).toBe(200);
    const late = await attach(`terminal_id=${body["terminal_id"]}&readonly=1`);
    await late.waitForScreen(`who=${sshd.passwordUser.name}-42`);
    // The password is in no process's command line or environment, and in no file the agent kept.
    const pw = sshd.passwordUser.password;
    expect(processesHolding(pw)).toEqual([]);
    expect(filesHolding(stack.stateDir, pw)).toEqual([]);
    c.input("exit\r");
    await c.waitFor(() => c.exit !== null, "EXIT");
    expect(c.exit).toMatchObject({ exit_code: 0 });
    expect(c.errors).toEqual([]);
  });

  it("logs in over SSH with a key, removes the key file once logged in, and says when the connection is lost", async () => {
    const body = { terminal_id: nextId++, ssh_host: "127.0.0.1", ssh_user: sshd.keyUser.name, ssh_port: sshd.port, ssh_key: sshd.keyBase64 };
    const c = await whoamiOver(body, sshd.keyUser.name);
    const pem = Buffer.from(sshd.keyBase64, "base64").toString().split("\n")[1]!;
    expect(filesHolding(stack.stateDir, pem)).toEqual([]);
    // The server side of the connection dies: the session ends with ERROR SSH_CONNECTION_LOST.
    execFileSync("pkill", ["-KILL", "-u", sshd.keyUser.name, "-x", "sshd"]);
    await c.waitFor(() => c.exit !== null, "EXIT");
    expect(c.errors).toMatchObject([{ code: "SSH_CONNECTION_LOST" }]);
    expect(c.exit).toMatchObject({ exit_code: 255, error: { code: "SSH_CONNECTION_LOST" } });
  });

  it("lets a person type the password at ssh's prompt when the request gives none", async () => {
    const id = nextId++;
    expect(await create({ terminal_id: id, ssh_host: "127.0.0.1", ssh_user: sshd.passwordUser.name, ssh_port: sshd.port })).toMatchObject({ status: 200 });
    const c = await attach(`terminal_id=${id}`);
    await c.waitForText(/password: ?$/i);
    c.input(`${sshd.passwordUser.password}\r`);
    // As a person would: type once the remote prompt is there (ssh flushes typeahead after the password).
    await c.waitForText(/password: ?\r\n[\s\S]*\$ $/);
    c.input("echo typed=$(whoami)\r");
    await c.waitForText(`typed=${sshd.passwordUser.name}`);
  });

  it("passes ssh's escape character to the remote side: a typist gets no local command line", async () => {
    // With ssh's escapes on, `~C` after a newline opens a command line that adds port forwardings
    // from the agent's host and, since LocalCommand needs PermitLocalCommand, runs `!command`
    // there as the agent's user (OpenSSH before 9.2 opens it by default); `~?` lists them.
    const body = sshLogin(sshd.passwordUser);
    const c = await whoamiOver(body, sshd.passwordUser.name);
    c.input("\r~?\r");
    c.input("echo after=$((6*7))\r");
    await c.waitForText("after=42");
    expect(c.text()).not.toContain("Supported escape sequences");
    expect(c.text()).toMatch(/~\?/);
  });

  it("ends a wrong password with an ERROR and an EXIT, for create and for a WebSocket attach", async () => {
    const res = await create(sshLogin(sshd.passwordUser, { ssh_password: "not-the-password" }));
    expect(res).toMatchObject({ status: 502, body: { statusCode: 502, code: "SSH_AUTH_FAILED" } });
    expect(String(res.body["message"])).toMatch(/Permission denied/);
    const q = new URLSearchParams({ ssh_host: "127.0.0.1", ssh_user: sshd.passwordUser.name, ssh_port: String(sshd.port), ssh_password: "still-wrong" });
    const c = await attach(q.toString());
    await c.waitFor(() => c.closed !== null, "the socket to close");
    expect(c.errors).toMatchObject([{ code: "SSH_AUTH_FAILED" }]);
    expect(c.exit).toMatchObject({ exit_code: 255, error: { code: "SSH_AUTH_FAILED" } });
    // Not even a password sent in the WebSocket's query reaches a log of the stack.
    expect(filesHolding(stack.stateDir, "still-wrong")).toEqual([]);
  });

  it("ends a wrong key, a refused port, an unknown host and a changed host key clearly", async () => {
    const otherKey = Buffer.from(execFileSync("sh", ["-c", 'd=$(mktemp -d) && ssh-keygen -q -t ed25519 -N "" -f "$d/k" && cat "$d/k" && rm -r "$d"'])).toString("base64");
    const wrongKey = await create({ terminal_id: nextId++, ssh_host: "127.0.0.1", ssh_user: sshd.keyUser.name, ssh_port: sshd.port, ssh_key: otherKey });
    expect(wrongKey).toMatchObject({ status: 502, body: { code: "SSH_AUTH_FAILED" } });
    const closed = await freePort();
    const refused = await create({ terminal_id: nextId++, ssh_host: "127.0.0.1", ssh_user: "someone", ssh_port: closed, ssh_password: "x" });
    expect(refused).toMatchObject({ status: 502, body: { code: "SSH_CONNECTION_REFUSED" } });
    const unknown = await create({ terminal_id: nextId++, ssh_host: "no-such-host.invalid", ssh_user: "someone", ssh_password: "x" });
    expect(unknown).toMatchObject({ status: 502, body: { code: "SSH_UNKNOWN_HOST" } });
    // accept-new remembered the test server's key in the agent's own known_hosts; a different
    // key for the same host is refused.
    const knownHosts = join(stack.stateDir, "agent", "ssh", "known_hosts");
    const original = readFileSync(knownHosts, "utf8");
    expect(original).toContain(`[127.0.0.1]:${sshd.port} ssh-ed25519 `);
    const forged = execFileSync("sh", ["-c", 'd=$(mktemp -d) && ssh-keygen -q -t ed25519 -N "" -f "$d/k" && cat "$d/k.pub" && rm -r "$d"'], { encoding: "utf8" }).split(" ").slice(0, 2).join(" ");
    writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${forged}\n`);
    try {
      const changed = await create(sshLogin(sshd.passwordUser));
      expect(changed).toMatchObject({ status: 502, body: { code: "SSH_HOST_KEY_MISMATCH" } });
    } finally {
      writeFileSync(knownHosts, original);
    }
    const notPem = await create({ terminal_id: nextId++, ssh_host: "127.0.0.1", ssh_user: "someone", ssh_key: Buffer.from("hello").toString("base64") });
    expect(notPem).toMatchObject({ status: 400, body: { code: "INVALID_SSH_KEY" } });
  });

  it("refuses shell-dangerous password characters before anything runs", async () => {
    for (const pw of ["a;reboot", "$(id)", "a`b`", "quote'd", "line\nbreak", "back\\slash", "a|b"]) {
      const id = nextId++;
      const res = await create({ terminal_id: id, ssh_host: "127.0.0.1", ssh_user: "someone", ssh_password: pw });
      expect(res).toMatchObject({ status: 400, body: { statusCode: 400, code: "INVALID_SSH_PASSWORD" } });
      expect(JSON.stringify(res.body)).not.toContain(pw);
    }
    const sessions = (await (await stack.api("/api/v1/terminal/sessions")).json()) as Array<{ id: number }>;
    expect(sessions.filter((s) => s.id >= 700 && s.id < nextId && s.id > nextId - 8)).toEqual([]);
    expect(sshd.log()).not.toContain("someone");
    const half = await create({ terminal_id: nextId++, ssh_host: "127.0.0.1" });
    expect(half).toMatchObject({ status: 400, body: { code: "INVALID_PARAMETERS" } });
  });

  it("goes through a SOCKS5 proxy without authentication", async () => {
    await whoamiOver(sshLogin(sshd.passwordUser, { socks5_host: "127.0.0.1", socks5_port: socks.port }), sshd.passwordUser.name);
    expect(socks.log()).toMatch(new RegExp(`pass\\(1\\): tcp/connect .*127\\.0\\.0\\.1\\.${sshd.port}\\b`));
  });

  it("goes through a SOCKS5 proxy with authentication, and refuses wrong proxy credentials", async () => {
    const proxyUser = socksAuth.user!;
    await whoamiOver(
      sshLogin(sshd.keyUser, { ssh_password: undefined, ssh_key: sshd.keyBase64, socks5_host: "127.0.0.1", socks5_port: socksAuth.port, socks5_user: proxyUser.name, socks5_pass: proxyUser.password }),
      sshd.keyUser.name,
    );
    expect(socksAuth.log()).toMatch(new RegExp(`username%${proxyUser.name}@.*127\\.0\\.0\\.1\\.${sshd.port}\\b`));
    const wrong = await create(sshLogin(sshd.passwordUser, { socks5_host: "127.0.0.1", socks5_port: socksAuth.port, socks5_user: proxyUser.name, socks5_pass: "wrong" }));
    expect(wrong).toMatchObject({ status: 502, body: { code: "SOCKS5_FAILED" } });
    expect(processesHolding(proxyUser.password)).toEqual([]);
  });

  it("names a SOCKS5 proxy that never answers as the failure, not ssh's banner timeout", async () => {
    // Accepts the connection and says nothing: the proxy's timeout must end the login before
    // ssh's own (ConnectTimeout, which also bounds the banner) blames the SSH server.
    const silent = createServer((socket) => socket.on("error", () => undefined));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const port = (silent.address() as AddressInfo).port;
      const res = await create(sshLogin(sshd.passwordUser, { socks5_host: "127.0.0.1", socks5_port: port }));
      expect(res).toMatchObject({ status: 502, body: { statusCode: 502, code: "SOCKS5_FAILED", message: expect.stringContaining(`SOCKS5 proxy 127.0.0.1:${port}`) } });
    } finally {
      silent.close();
    }
  });

  it("closes a SOCKS5 tunnel the proxy opens only after its SSH session ended", async () => {
    // The proxy holds its answer until ssh has died: the tunnel it then opens used to stay open
    // (a socket and a descriptor of the agent's) until the proxy closed it.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let greeted = false;
    let tunnelClosed = false;
    const proxy = createServer((socket) => {
      socket.on("error", () => undefined);
      socket.on("close", () => (tunnelClosed = true));
      socket.once("data", () => {
        greeted = true;
        void released.then(() => {
          socket.write(Buffer.from([5, 0])); // no authentication
          socket.once("data", () => socket.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 22]))); // connected
        });
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    try {
      const body = sshLogin(sshd.passwordUser, { socks5_host: "127.0.0.1", socks5_port: (proxy.address() as AddressInfo).port });
      const created = create(body);
      await until("the agent to greet the proxy", () => greeted);
      // This login's ssh: the one not logged in yet (earlier tests' sessions to the same user are).
      const ssh = readdirSync("/proc")
        .filter((n) => /^\d+$/.test(n))
        .find((pid) => {
          try {
            const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
            const config = args[args.indexOf("-F") + 1] ?? "";
            return args.join(" ").includes(`-l ${sshd.passwordUser.name} -p ${sshd.port} -- 127.0.0.1`) && !existsSync(join(dirname(config), "connected"));
          } catch {
            return false;
          }
        });
      expect(ssh).toBeDefined();
      process.kill(Number(ssh), "SIGKILL");
      expect((await created).status).toBe(502);
      release();
      await until("the agent to close the late tunnel", () => tunnelClosed);
    } finally {
      release();
      proxy.close();
    }
  });

  it("starts a shell as another user with that user's ids, groups and login environment", async () => {
    const group = createGroup();
    const user = createUser("as", [group.name]);
    try {
      const id = nextId++;
      expect(await create({ terminal_id: id, user: user.name, shell: "sh" })).toMatchObject({ status: 200 });
      const c = await attach(`terminal_id=${id}`);
      c.input("echo \"ida=[$(id -a)] home=[$HOME] shell=[$SHELL] user=[$USER] pwd=[$(pwd)] token=[$EDGETTY_AGENT_TOKEN]\"\r");
      const expected = execFileSync("id", ["-a", user.name], { encoding: "utf8" }).trim();
      await c.waitForText(new RegExp(`shell=\\[(/usr)?/bin/sh\\] user=\\[${user.name}\\] pwd=\\[${user.home}\\] token=\\[\\]`));
      expect(c.text()).toContain(`ida=[${expected}] home=[${user.home}] shell=[`);
      expect(expected).toContain(group.name);
      expect(await create({ terminal_id: nextId++, user: "etnosuchuser" })).toMatchObject({ status: 400, body: { code: "INVALID_USER" } });
    } finally {
      await stack.api(`/api/v1/terminal/${nextId - 2}`, { method: "DELETE" });
      user.remove();
      group.remove();
    }
  });

  it("waits for an X display that is up, and times out on one that is not", async () => {
    let x: XServer | null = null;
    const upId = nextId++;
    try {
      x = await startXvfb();
      const up = await create({ terminal_id: upId, display: String(x.display), wait_timeout: 10 });
      expect(up).toMatchObject({ status: 200, body: { status: "created", display: `:${x.display}` } });
      const down = await create({ terminal_id: nextId++, display: String(x.display + 17), wait_timeout: 1 });
      expect(down).toMatchObject({ status: 504, body: { statusCode: 504, code: "DISPLAY_NOT_READY" } });
      expect(await create({ terminal_id: nextId++, desktop: true })).toMatchObject({ status: 400, body: { code: "INVALID_PARAMETERS" } });
      expect(await create({ terminal_id: nextId++, display: String(x.display), desktop_env: "kde" })).toMatchObject({ status: 400, body: { code: "INVALID_DESKTOP_ENV" } });
    } finally {
      await stack.api(`/api/v1/terminal/${upId}`, { method: "DELETE" });
      await x?.stop();
    }
  });

  for (const [desktopEnv, windowManager] of [
    ["xfce", /xfwm4/i],
    ["mate", /marco/i],
  ] as const) {
    it(`starts ${desktopEnv} on the display, and ends all of it with the session`, async () => {
      let x: XServer | null = null;
      const id = nextId++;
      try {
        x = await startXvfb();
        const display = `:${x.display}`;
        const res = await create({ terminal_id: id, display: String(x.display), desktop_env: desktopEnv, wait_timeout: 10 });
        expect(res).toMatchObject({ status: 200, body: { status: "created", display } });
        // The desktop is up when its window manager owns the display (EWMH: the root window names a
        // live check window whose _NET_WM_NAME is the manager's).
        const name = await until(`${desktopEnv}'s window manager on ${display}`, () => windowManagerName(display), { timeoutMs: DESKTOP_START_MS });
        expect(name).toMatch(windowManager);
        const desktop = processesOnDisplay(display);
        expect(desktop.length).toBeGreaterThan(1);
        // The shell of the session sees the same display.
        const c = await attach(`terminal_id=${id}`);
        c.input("echo display=[$DISPLAY]\r");
        await c.waitForText(`display=[${display}]`);
        expect((await stack.api(`/api/v1/terminal/${id}`, { method: "DELETE" })).status).toBe(200);
        await until(`every process of the ${desktopEnv} desktop to end`, () => processesOnDisplay(display).length === 0, {
          timeoutMs: DESKTOP_START_MS,
          describe: () => ` (still running: ${processesOnDisplay(display).join(", ")})`,
        });
        expect(windowManagerName(display)).toBeNull();
      } finally {
        await x?.stop();
      }
    }, 3 * DESKTOP_START_MS);
  }

  it("follows an existing process's output read-only, and says when a pid cannot be attached", async () => {
    const target: ChildProcess = spawn("sh", ["-c", "i=0; while [ $i -lt 600 ]; do echo tick-$i; i=$((i+1)); sleep 0.1; done"], { stdio: ["ignore", "pipe", "ignore"] });
    try {
      // A DELETE detaches the trace and leaves the process running; a second attach works.
      const first = await attach(`pid=${target.pid}`);
      await first.waitForText(/tick-\d+\r?\n/);
      expect((await stack.api(`/api/v1/terminal/${first.info!.terminal_id}`, { method: "DELETE" })).status).toBe(200);
      await first.waitFor(() => first.exit !== null, "EXIT after DELETE");
      await untilProc(target.pid!, (status) => /^TracerPid:\s+0$/m.test(status), "the trace to be detached");
      expect(target.exitCode).toBeNull();
      const c = await attach(`pid=${target.pid}`);
      expect(c.info?.shell).toBe("attach:sh");
      await c.waitForText(/tick-\d+\r?\n/);
      c.input("echo typed-into-attach\r");
      await c.waitForText(/tick-\d+\r?\n[\s\S]*tick-\d+\r?\n/);
      expect(c.text()).not.toContain("typed-into-attach");
      target.kill("SIGTERM");
      await c.waitFor(() => c.exit !== null, "EXIT after the target ended");
    } finally {
      target.kill("SIGKILL");
    }
    let refusal: HttpRefusal | null = null;
    try {
      (await attach("pid=4194000")).close();
    } catch (error) {
      refusal = error as HttpRefusal;
    }
    expect(refusal).toBeInstanceOf(HttpRefusal);
    expect(JSON.parse(refusal!.body)).toMatchObject({ statusCode: 404, code: "PID_NOT_FOUND" });
  });

  it("refuses to attach to the host's init process (pid 1)", async () => {
    const res = await stack.api("/api/v1/terminal/create", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ terminal_id: 76, pid: 1 }) });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "INVALID_PID", message: expect.stringContaining("init") });
    expect(readFileSync("/proc/1/status", "utf8")).toMatch(/^TracerPid:\s+0$/m);
  });

  it("refuses to attach to an agent's helper processes (PTY host, file servers), known by their process tag", async () => {
    // An agent starts a PTY host only where it would fork, and file servers only in multi-user
    // mode: stand-ins carrying their tags (launch.ts processTag) take their place here.
    for (const owner of ["xpty-host", "xfiles"]) {
      const helper = spawn("sleep", ["60"], { env: { PATH: "/usr/bin:/bin", [PROCESS_TAG_ENV]: `0123456789abcdef.1-2.${owner}` }, stdio: "ignore" });
      try {
        const res = await stack.api("/api/v1/terminal/create", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ terminal_id: 77, pid: helper.pid }) });
        expect(res.status).toBe(400);
        expect(await res.json()).toMatchObject({ code: "INVALID_PID" });
        expect(readFileSync(`/proc/${helper.pid}/status`, "utf8")).toMatch(/^TracerPid:\s+0$/m);
      } finally {
        helper.kill("SIGKILL");
      }
    }
  });

  it("refuses a thread's id, so the agent, init and any process stay out of reach by their threads' ids", async () => {
    // `strace -f -p <tid>` attaches the thread's whole process: the agent's own threads were
    // followed (and the agent slowed at every write) although its pid is refused.
    const threadsOf = (pid: number) => readdirSync(`/proc/${pid}/task`).map(Number).filter((tid) => tid !== pid);
    const agentPid = stack.agent.pid!;
    const targets = [threadsOf(agentPid)[0]!, ...threadsOf(1).slice(0, 1)];
    for (const tid of targets) {
      const res = await create({ terminal_id: 78, pid: tid });
      expect(res).toMatchObject({ status: 400, body: { statusCode: 400, code: "INVALID_PID", message: expect.stringContaining("thread of process") } });
    }
    expect(readFileSync(`/proc/${agentPid}/status`, "utf8")).toMatch(/^TracerPid:\s+0$/m);
    expect((await stack.api("/api/v1/terminal/sessions").then((r) => r.json())) as unknown[]).not.toContainEqual(expect.objectContaining({ id: 78 }));
  });

  it("refuses a kernel thread, which ptrace cannot follow, instead of starting a session that ends at once", async (ctx) => {
    const kernelThread = readdirSync("/proc")
      .filter((n) => /^\d+$/.test(n) && n !== "1")
      .map(Number)
      .find((pid) => {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
          return (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[6]) & 0x00200000) !== 0;
        } catch {
          return false;
        }
      });
    if (kernelThread === undefined) return ctx.skip(); // a PID namespace without kernel threads
    const res = await create({ terminal_id: 79, pid: kernelThread });
    expect(res).toMatchObject({ status: 400, body: { statusCode: 400, code: "INVALID_PID", message: expect.stringContaining("kernel thread") } });
  });

  it("follows a process whose working directory was removed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edgetty-gone-"));
    const target: ChildProcess = spawn("sh", ["-c", "while :; do echo gone-$$; sleep 0.1; done"], { cwd: dir, stdio: ["ignore", "pipe", "ignore"] });
    try {
      rmSync(dir, { recursive: true });
      const c = await attach(`pid=${target.pid}`);
      expect(c.info?.shell).toBe("attach:sh");
      await c.waitForText(`gone-${target.pid}`);
    } finally {
      target.kill("SIGKILL");
    }
  });
});
