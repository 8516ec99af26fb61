import { describe, expect, it } from "vitest";
import { decodeStraceLine, exitLine } from "../../worker/agent/kinds/pid-follow.ts";
import { classifySshFailure, prepareSsh } from "../../worker/agent/kinds/ssh.ts";
import { ApiError } from "../../shared/errors.ts";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { until } from "../support/waiters.ts";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loginEnv } from "../../worker/agent/kinds/user.ts";
import { displayEndpoints, displayNumber } from "../../worker/agent/kinds/display.ts";

describe("PID attach's strace decoding", () => {
  it("turns writes to fds 1 and 2 back into their bytes", () => {
    expect(decodeStraceLine('write(1, "\\x68\\x69\\x0a", 3) = 3')?.toString()).toBe("hi\n");
    expect(decodeStraceLine('[pid  4242] write(2, "\\x45", 1) = 1')?.toString()).toBe("E");
    expect(decodeStraceLine('writev(1, [{iov_base="\\x61\\x62", iov_len=2}, {iov_base="\\x63", iov_len=1}], 2) = 3')?.toString()).toBe("abc");
    expect(decodeStraceLine('write(1, "\\x41\\x42", 2 <unfinished ...>')?.toString()).toBe("AB");
  });

  it("ignores other descriptors and other lines", () => {
    expect(decodeStraceLine('write(3, "\\x68", 1) = 1')).toBeNull();
    expect(decodeStraceLine("--- SIGCHLD {si_signo=SIGCHLD} ---")).toBeNull();
    expect(decodeStraceLine('read(0, "\\x68", 1) = 1')).toBeNull();
  });

  it("recognises the target's end", () => {
    expect(exitLine("+++ exited with 3 +++")).toBe("exited with 3");
    expect(exitLine("[pid 12] +++ killed by SIGTERM +++")).toBe("killed by SIGTERM");
    expect(exitLine('write(1, "\\x68", 1) = 1')).toBeNull();
  });
});

describe("SSH failure classification", () => {
  const target = "u@h:22";
  it("names each failure by ssh's last log line", () => {
    expect(classifySshFailure("u@h: Permission denied (publickey,password).\n", null, target)).toEqual({
      code: "SSH_AUTH_FAILED",
      message: "SSH to u@h:22 failed: u@h: Permission denied (publickey,password).",
    });
    expect(classifySshFailure("ssh: connect to host h port 22: Connection refused\n", null, target).code).toBe("SSH_CONNECTION_REFUSED");
    expect(classifySshFailure("ssh: Could not resolve hostname nope: Name or service not known\n", null, target).code).toBe("SSH_UNKNOWN_HOST");
    expect(classifySshFailure("@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nHost key verification failed.\n", null, target).code).toBe("SSH_HOST_KEY_MISMATCH");
    expect(classifySshFailure("ssh: connect to host h port 22: Connection timed out\n", null, target).code).toBe("SSH_TIMEOUT");
    expect(classifySshFailure("", "SOCKS5 proxy p:1080: Socks5 Authentication failed", target).code).toBe("SOCKS5_FAILED");
    expect(classifySshFailure("", null, target)).toEqual({ code: "SSH_CONNECT_FAILED", message: "SSH to u@h:22 failed: ssh exited before logging in" });
  });
});

describe("SSH parameters as the agent receives them", () => {
  it("refuses a host, user or proxy host that could act as an option, a % token or a second line, writing nothing", async () => {
    const runtimeDir = mkdtempSync(join(tmpdir(), "edgetty-ssh-check-"));
    try {
      const base = { host: "example.org", user: "u", port: 22 };
      const params = { terminal_id: 5, ephemeral: false, cwd_auto_create: false, welcome: false, debug: false, cols: 80, rows: 24, env: {} };
      for (const ssh of [
        { ...base, host: "-oProxyCommand=id" },
        { ...base, host: "a\nProxyCommand id" },
        { ...base, host: "h%h" },
        { ...base, user: "-oProxyCommand=id" },
        { ...base, user: "u%r" },
        { ...base, user: "u\nx" },
        { ...base, socks5: { host: "-x", port: 1080 } },
      ]) {
        const refusal = await prepareSsh({ params, ssh, runtimeDir, dataDir: runtimeDir, log: () => undefined }).then(
          (launch) => (launch.dispose(), null),
          (error: unknown) => error,
        );
        expect(refusal, JSON.stringify(ssh)).toBeInstanceOf(ApiError);
        expect(refusal).toMatchObject({ status: 400, code: "INVALID_PARAMETERS" });
      }
      expect(readdirSync(runtimeDir)).toEqual([]);
    } finally {
      rmSync(runtimeDir, { recursive: true, force: true });
    }
  });
});

const NOBODY = 65_534;
const asRoot = process.getuid?.() === 0 && existsSync("/usr/bin/setpriv") && existsSync("/usr/bin/strace");

describe.runIf(asRoot)("PID attach from an agent that is not root", () => {
  /** checkAttachable(pid) as an agent running as nobody would answer it: "ok <name>" or "<status> <code>". */
  function checkAsNobody(pid: number): string {
    const module = fileURLToPath(new URL("../../worker/agent/kinds/pid-attach.ts", import.meta.url));
    const script = `import(${JSON.stringify(module)}).then((m) => { try { console.log("ok " + m.checkAttachable(${pid}).name); } catch (e) { console.log(e.status + " " + e.code); } })`;
    return execFileSync("setpriv", [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", process.execPath, "--import", "tsx", "-e", script], { encoding: "utf8" }).trim();
  }

  /** A `sleep` started through setpriv with `ids`, once it runs with them. */
  async function sleeper(ids: string[]): Promise<{ pid: number; stop(): void }> {
    const child = spawn("setpriv", [...ids, "sleep", "60"], { stdio: "ignore" });
    const pid = child.pid!;
    await until("the sleeper to run", () => readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "sleep");
    return { pid, stop: () => child.kill("SIGKILL") };
  }

  it("refuses, as the kernel would, a process of its user that runs with another user or group id", async () => {
    const yama = existsSync("/proc/sys/kernel/yama/ptrace_scope") ? Number(readFileSync("/proc/sys/kernel/yama/ptrace_scope", "utf8")) : 0;
    const plain = await sleeper([`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups"]);
    const setuid = await sleeper([`--ruid=${NOBODY}`, "--euid=0", `--regid=${NOBODY}`, "--clear-groups"]);
    const otherGroup = await sleeper([`--reuid=${NOBODY}`, "--regid=0", "--clear-groups"]);
    try {
      if (yama === 0) expect(checkAsNobody(plain.pid)).toBe("ok sleep");
      expect(checkAsNobody(setuid.pid)).toBe("403 PID_ATTACH_FORBIDDEN");
      expect(checkAsNobody(otherGroup.pid)).toBe("403 PID_ATTACH_FORBIDDEN");
    } finally {
      for (const p of [plain, setuid, otherGroup]) p.stop();
    }
  });
});

describe("accounts", () => {
  it("gives another user a login environment with nothing of the agent's but the locale", () => {
    const env = loginEnv({ name: "ann", uid: 1001, gid: 1001, home: "/home/ann", shell: "/bin/bash" }, "/bin/bash", {
      LANG: "C.UTF-8",
      EDGETTY_AGENT_TOKEN: "secret",
      HOME: "/root",
      PATH: "/root/bin:/usr/bin",
    });
    expect(env).toEqual({ LANG: "C.UTF-8", HOME: "/home/ann", USER: "ann", LOGNAME: "ann", SHELL: "/bin/bash", MAIL: "/var/mail/ann", PATH: "/usr/local/bin:/usr/bin:/bin:/usr/games" });
  });
});

describe("displays", () => {
  it("probes the X socket and the seed's 4000+N port", () => {
    expect(displayNumber(":7.0")).toBe(7);
    expect(displayEndpoints(7)).toEqual([{ path: "/tmp/.X11-unix/X7" }, { host: "127.0.0.1", port: 4007 }, { host: "127.0.0.1", port: 6007 }]);
  });
});
