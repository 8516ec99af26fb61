/**
 * Wrappers around the agent's tunnelled Open Terminal app (app.ts):
 *
 * - `headAsGet`: `HEAD` on any GET route answers as GET would, without the body (`/proxy/…`
 *   passes HEAD on to the upstream as it is).
 * - `multiUserApp`: multi-user mode (os-users.ts). A call that asserts `X-User-Id` acts as that
 *   user's OS account: `/files/*` go to the account's file server (user-files.ts, a process
 *   running as the account, so the kernel enforces what it may reach), `/files/cwd` keeps the
 *   session's directory in the agent's store (shared with the execute API) once the account's
 *   server has checked it, `/system` names the account, `/ports` lists only the account's
 *   listeners. `/proxy/…` and `/info` are the same for everyone, as in the reference. A call
 *   without the header is the single user (the agent's own account), unchanged.
 */
import { ApiError } from "../../../shared/errors.ts";
import { OtCode } from "../../../shared/open-terminal.ts";
import type { OsUsers } from "../os-users.ts";
import type { Account } from "../spawn.ts";
import { systemPrompt } from "./app.ts";
import type { CwdStore } from "./cwd-store.ts";
import { listPorts } from "./ports.ts";
import type { TunnelHandler } from "./tunnel-server.ts";
import { HelperUnavailable, type UserFiles } from "./user-files.ts";

/** Longest `/files/cwd` answer read back from an account's file server, in bytes. */
const CWD_REPLY_MAX_BYTES = 64 << 10; // 64 KiB

/** `handler` with HEAD answered as GET without a body (except on `/proxy/…`, which forwards it). */
export function headAsGet(handler: TunnelHandler): TunnelHandler {
  return async (request, caller, signal) => {
    if (request.method !== "HEAD" || new URL(request.url).pathname.startsWith("/proxy/")) return handler(request, caller, signal);
    const response = await handler(new Request(request.url, { method: "GET", headers: request.headers }), caller, signal);
    await response.body?.cancel().catch(() => {});
    return new Response(null, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

export interface MultiUserAppOptions {
  users: OsUsers;
  files: UserFiles;
  /** Session working directories (keyed by scope), shared with the execute API. */
  cwds: CwdStore;
  info?: string;
  systemPrompt?: string;
}

function detail(status: number, code: string, text: string): Response {
  return Response.json({ detail: text, code }, { status });
}

/** `base` (the single-user app) with multi-user mode for calls that assert `X-User-Id`. */
export function multiUserApp(base: TunnelHandler, opts: MultiUserAppOptions): TunnelHandler {
  const { users, files, cwds } = opts;
  return async (request, caller, signal) => {
    const userId = request.headers.get("X-User-Id");
    const path = new URL(request.url).pathname;
    // An empty X-User-Id is no user (the edge gives both the same scope): the single user.
    if (!userId || path.startsWith("/proxy/") || path === "/info") return base(request, caller, signal);
    let account: Account;
    try {
      account = await users.resolve(caller.scope, userId);
    } catch (error) {
      if (error instanceof ApiError) return detail(error.status, error.code, error.message);
      throw error;
    }
    const sessionCwd = () => cwds.get(caller.scope, caller.session);
    try {
      if (path === "/system" && request.method === "GET") {
        return Response.json({ prompt: systemPrompt(account.home, opts.systemPrompt, opts.info, account) });
      }
      if (path === "/ports" && request.method === "GET") return Response.json(await listPorts(process.pid, account.uid));
      if (path === "/files/cwd" && request.method === "GET") return Response.json({ cwd: sessionCwd() ?? account.home, home: account.home, root: { path: account.home, label: "Home" } });
      if (path === "/files/cwd" && request.method === "POST") {
        // The account's server checks the directory as the account; the agent remembers it.
        const response = await files.fetch(account, request, undefined, signal);
        if (response.status !== 200) return response;
        const text = await new Response(response.body).text();
        if (text.length > CWD_REPLY_MAX_BYTES) return detail(502, OtCode.BAD_GATEWAY, "Malformed answer from the file server");
        const { cwd } = JSON.parse(text) as { cwd: string };
        cwds.set(caller.scope, caller.session, cwd);
        return Response.json({ cwd });
      }
      if (path.startsWith("/files/")) return await files.fetch(account, request, sessionCwd(), signal);
    } catch (error) {
      if (error instanceof HelperUnavailable) return detail(503, "FILE_SERVER_UNAVAILABLE", error.message);
      throw error;
    }
    return base(request, caller, signal);
  };
}
