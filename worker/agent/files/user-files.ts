/**
 * The agent's side of multi-user file access: one files-helper process (files-helper.ts) per OS
 * account, started on the account's first file call as that account (setpriv: its uid, gid and
 * own groups) and stopped after FILE_HELPER_IDLE_MS without calls. A call is forwarded to it as
 * HTTP over its Unix socket with both bodies streamed (backpressure end to end, so memory stays
 * bounded as in the single-user app).
 *
 * Sockets live in a folder the agent makes under the temp folder (mode 0711, root's), one
 * subfolder per account (mode 0700, the account's): only root and the account itself can connect,
 * and the account's own processes gain nothing by it (the helper acts as the account).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, chmodSync, chownSync } from "node:fs";
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { loginEnv } from "../kinds/user.ts";
import { launchAsAccount, type Account } from "../spawn.ts";
import { HELPER_CWD_HEADER } from "./files-helper.ts";

/**
 * Helpers running at once, at most; past it the longest idle one is stopped (503 when none is
 * idle). Each is a Node process: about 100 MB resident in a checkout (tsx), less bundled.
 */
export const FILE_HELPERS_MAX = 16;
/** A helper with no call for this long is stopped, in milliseconds. */
export const FILE_HELPER_IDLE_MS = 10 * 60_000;
/** Longest a helper may take to start listening, in milliseconds (it compiles on first start). */
export const FILE_HELPER_START_TIMEOUT_MS = 60_000;
/** Calls in flight to one helper at once (sockets of its connection pool). */
export const FILE_HELPER_MAX_SOCKETS = 64;
/** Newest part of a helper's stderr kept (for its exit's log line), in bytes. */
const HELPER_STDERR_MAX_BYTES = 4096;

/** How to start the agent again as a helper: the command line up to (not including) `files-helper`. */
export interface HelperProgram {
  file: string;
  args: string[];
}

interface Helper {
  account: Account;
  child: ChildProcess;
  pool: HttpAgent;
  socket: string;
  ready: Promise<void>;
  active: number;
  lastUsed: number;
  idleTimer: NodeJS.Timeout | undefined;
}

/** A call could not reach the account's helper; the answer is 503 with this text. */
export class HelperUnavailable extends Error {
  override name = "HelperUnavailable";
}

/** Bytes of a helper's answer buffered ahead of the reader (then the socket is paused). */
const BODY_BUFFER_BYTES = 256 << 10; // 256 KiB

/**
 * `res` as a web stream that errors when the helper cut its answer short (a file it could not
 * read mid-archive), so the cut reaches the client as a cut, not as a complete download.
 */
function webBody(res: IncomingMessage): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        const fail = (error: Error) => {
          try {
            controller.error(error);
          } catch {
            /* already closed */
          }
        };
        res.on("data", (chunk: Buffer) => {
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          if ((controller.desiredSize ?? 0) <= 0) res.pause();
        });
        res.on("end", () => (res.complete ? controller.close() : fail(new Error("the file server cut its answer short"))));
        res.on("error", fail);
        res.on("close", () => {
          if (!res.complete) fail(new Error("the file server cut its answer short"));
        });
      },
      pull() {
        res.resume();
      },
      cancel() {
        res.destroy();
      },
    },
    { highWaterMark: BODY_BUFFER_BYTES, size: (chunk) => chunk.byteLength },
  );
}

export class UserFiles {
  private readonly helpers = new Map<number, Helper>();
  private dir: string | null = null;

  constructor(
    private readonly program: HelperProgram,
    private readonly setpriv: string,
    /** The agent's process tag for helpers (launch.ts), or null. */
    private readonly tag: string | null,
    private readonly log: (line: string) => void = () => {},
  ) {}

  /**
   * Forwards `request` (a `/files/*` call) to `account`'s helper; `cwd` is the caller's session
   * working directory, if any. Rejects with HelperUnavailable when the helper cannot be started.
   */
  async fetch(account: Account, request: Request, cwd: string | undefined, signal: AbortSignal): Promise<Response> {
    const helper = this.helperFor(account);
    helper.active++;
    helper.lastUsed = Date.now();
    clearTimeout(helper.idleTimer);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      helper.active--;
      helper.lastUsed = Date.now();
      if (helper.active === 0) this.scheduleIdle(helper);
    };
    try {
      await helper.ready;
      const response = await this.forward(helper, request, cwd, signal);
      if (!response.body) release();
      else {
        // Released when the body is done or dropped.
        const body = response.body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({ flush: release }));
        signal.addEventListener("abort", release, { once: true });
        return new Response(body, response);
      }
      return response;
    } catch (error) {
      release();
      throw error;
    }
  }

  /** Stops every helper and removes the socket folder. */
  stopAll(): void {
    for (const helper of this.helpers.values()) this.stop(helper);
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }

  private socketDir(): string {
    if (!this.dir) {
      this.dir = mkdtempSync(join(tmpdir(), "edgetty-files-"));
      chmodSync(this.dir, 0o711);
    }
    return this.dir;
  }

  private helperFor(account: Account): Helper {
    const existing = this.helpers.get(account.uid);
    if (existing) return existing;
    if (this.helpers.size >= FILE_HELPERS_MAX) {
      let idlest: Helper | undefined;
      for (const h of this.helpers.values()) if (h.active === 0 && (!idlest || h.lastUsed < idlest.lastUsed)) idlest = h;
      if (!idlest) throw new HelperUnavailable(`Too many users' file servers at once (${FILE_HELPERS_MAX})`);
      this.stop(idlest);
    }
    const dir = join(this.socketDir(), String(account.uid));
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, account.uid, account.gid);
    const socket = join(dir, "files.sock");
    const env = { ...loginEnv(account, account.shell), EDGETTY_FILES_SOCKET: socket };
    const cmd = launchAsAccount(account, this.setpriv, this.program.file, [...this.program.args, "files-helper"], env, this.tag);
    const child = spawn(cmd.file, cmd.args, { env: cmd.env, cwd: "/", stdio: ["pipe", "pipe", "pipe"] });
    const helper: Helper = {
      account,
      child,
      pool: new HttpAgent({ keepAlive: true, maxSockets: FILE_HELPER_MAX_SOCKETS, socketPath: socket } as ConstructorParameters<typeof HttpAgent>[0]),
      socket,
      ready: Promise.resolve(),
      active: 0,
      lastUsed: Date.now(),
      idleTimer: undefined,
    };
    helper.ready = new Promise<void>((resolve, reject) => {
      let stderr = "";
      let out = "";
      const timer = setTimeout(() => fail(`did not start within ${FILE_HELPER_START_TIMEOUT_MS} ms`), FILE_HELPER_START_TIMEOUT_MS);
      const fail = (why: string) => {
        clearTimeout(timer);
        this.stop(helper);
        reject(new HelperUnavailable(`The file server of ${account.name} ${why}${stderr ? `: ${stderr.trim().slice(-500)}` : ""}`));
      };
      child.stderr!.on("data", (chunk: Buffer) => {
        stderr = (stderr + chunk.toString("utf8")).slice(-HELPER_STDERR_MAX_BYTES);
      });
      child.stdout!.on("data", (chunk: Buffer) => {
        out += chunk.toString("utf8");
        if (out.includes("ready\n")) {
          clearTimeout(timer);
          resolve();
        } else if (out.length > HELPER_STDERR_MAX_BYTES) out = "";
      });
      child.on("error", (error) => fail(`could not start (${error.message})`));
      child.on("exit", (code, sig) => {
        clearTimeout(timer);
        if (this.helpers.get(account.uid) === helper) {
          this.helpers.delete(account.uid);
          // Not stopped by us: it failed (the next call starts a new one).
          this.log(`multi-user: the file server of ${account.name} exited (${sig ?? code})${stderr ? `: ${stderr.trim().slice(-500)}` : ""}`);
        }
        helper.pool.destroy();
        reject(new HelperUnavailable(`The file server of ${account.name} exited (${sig ?? code})${stderr ? `: ${stderr.trim().slice(-500)}` : ""}`));
      });
    });
    helper.ready.catch(() => {});
    child.stdin!.on("error", () => {});
    this.helpers.set(account.uid, helper);
    this.log(`multi-user: started the file server of ${account.name} (pid ${child.pid})`);
    return helper;
  }

  private scheduleIdle(helper: Helper): void {
    clearTimeout(helper.idleTimer);
    helper.idleTimer = setTimeout(() => {
      if (helper.active === 0) this.stop(helper);
    }, FILE_HELPER_IDLE_MS);
    helper.idleTimer.unref();
  }

  private stop(helper: Helper): void {
    clearTimeout(helper.idleTimer);
    if (this.helpers.get(helper.account.uid) === helper) this.helpers.delete(helper.account.uid);
    helper.pool.destroy();
    // Closing stdin ends it; SIGTERM in case it is stuck.
    helper.child.stdin?.end();
    if (helper.child.exitCode === null && helper.child.signalCode === null) helper.child.kill("SIGTERM");
  }

  private forward(helper: Helper, request: Request, cwd: string | undefined, signal: AbortSignal): Promise<Response> {
    const url = new URL(request.url);
    const headers: Record<string, string> = {};
    request.headers.forEach((value, key) => {
      if (key !== "host" && key !== "connection" && key !== HELPER_CWD_HEADER.toLowerCase()) headers[key] = value;
    });
    if (cwd) headers[HELPER_CWD_HEADER] = encodeURIComponent(cwd);
    const method = request.method;
    return new Promise<Response>((resolve, reject) => {
      const req = httpRequest({ agent: helper.pool, socketPath: helper.socket, method, path: url.pathname + url.search, headers, signal }, (res: IncomingMessage) => {
        const out = new Headers();
        for (const [key, value] of Object.entries(res.headers)) {
          if (typeof value === "string") out.set(key, value);
          else if (Array.isArray(value)) for (const v of value) out.append(key, v);
        }
        out.delete("connection");
        out.delete("keep-alive");
        out.delete("transfer-encoding");
        const status = res.statusCode ?? 502;
        const body = status === 204 || status === 304 || method === "HEAD" ? null : webBody(res);
        if (!body) res.resume();
        resolve(new Response(body, { status, headers: out }));
      });
      req.on("error", (error) => reject(new HelperUnavailable(`The file server of ${helper.account.name} failed: ${error.message}`)));
      if (request.body && method !== "GET" && method !== "HEAD") {
        Readable.fromWeb(request.body as unknown as NodeReadableStream<Uint8Array>).on("error", (error) => req.destroy(error)).pipe(req);
      } else req.end();
    });
  }
}
