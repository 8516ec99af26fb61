/**
 * The rest of the Open Terminal API at one mount: `/api/terminals` (sessions and their raw
 * WebSocket), discovery (`/health`, `/api/config`, `/openapi.json`, `/system`, `/info`) and ports
 * (`/ports`, `/proxy/{port}/…`). `/api/terminals` answers errors as `{"error"}`; the rest as FastAPI's
 * `{"detail"}`; both become EdgettyErrors.
 */
import type { ApiConfig } from "../shared/open-terminal-routes.ts";
import type { TerminalInfo } from "../shared/open-terminal-terminals.ts";
import { EdgettyError } from "./errors.ts";
import { RawTerminalConnection } from "./raw-terminal-connection.ts";
import type { RequestOptions, Transport } from "./transport.ts";

/** `/api/terminals` at one mount: sessions named by `X-Session-Id` (else their terminal id), owned by `X-User-Id`. */
export class OtTerminalsApi {
  constructor(private readonly t: Transport) {}

  /** `POST /api/terminals`: a new ephemeral session (or the caller's live one of the same `X-Session-Id`). */
  create(): Promise<TerminalInfo> {
    return this.t.json("POST", "/api/terminals");
  }

  /** `GET /api/terminals`: this caller's sessions. */
  list(): Promise<TerminalInfo[]> {
    return this.t.json("GET", "/api/terminals");
  }

  /** `GET /api/terminals/{id}`. 404 `Session not found`. */
  get(id: string): Promise<TerminalInfo> {
    return this.t.json("GET", `/api/terminals/${encodeURIComponent(id)}`);
  }

  /** `DELETE /api/terminals/{id}`: ends the session. */
  delete(id: string): Promise<{ status: "deleted" }> {
    return this.t.json("DELETE", `/api/terminals/${encodeURIComponent(id)}`);
  }

  /**
   * The WebSocket `/api/terminals/{id}`: authenticates with the client's token as the first
   * message, resolves once the repaint arrived. Close 4001 (bad key), 4003 (server disabled,
   * denied, unreachable), 4004 (no such session or server), 4009 (too many clients) reject with
   * an EdgettyError carrying `closeCode`.
   */
  async connect(id: string, options: { userId?: string; token?: string } = {}): Promise<RawTerminalConnection> {
    const token = options.token ?? this.t.options.token;
    if (!token) throw new EdgettyError(401, "UNAUTHORIZED", "the terminal WebSocket authenticates with a token: give options.token", "none");
    const userId = options.userId ?? this.t.options.userId;
    const channel = await this.t.openChannel(`/api/terminals/${encodeURIComponent(id)}`, { user_id: userId });
    return RawTerminalConnection.attach(channel, token);
  }
}

/** Discovery and ports at one mount. */
export class OpenTerminalInfoApi {
  constructor(private readonly t: Transport) {}

  /** `GET /health` (no auth). */
  health(): Promise<{ status: "ok" }> {
    return this.t.json("GET", "/health");
  }

  /** `GET /api/config` (no auth): which features the server has. */
  config(): Promise<ApiConfig> {
    return this.t.json("GET", "/api/config");
  }

  /** `GET /openapi.json`: the model tools' OpenAPI document. */
  openapi(): Promise<Record<string, unknown>> {
    return this.t.json("GET", "/openapi.json");
  }

  /** `GET /system`: how to use this terminal, for a model's system prompt. */
  system(): Promise<{ prompt: string }> {
    return this.t.json("GET", "/system");
  }

  /** `GET /info`: the agent's info text (404 when it has none). */
  info(): Promise<{ info: string }> {
    return this.t.json("GET", "/info");
  }

  /** `GET /ports`: TCP listeners of processes the agent started. */
  ports(): Promise<{ ports: { port: number; pid: number; process: string }[] }> {
    return this.t.json("GET", "/ports");
  }

  /**
   * `/proxy/{port}/{path}`: any method to `localhost:{port}` on the host. Answers the Response as
   * is, like fetch — an upstream's error status is its own answer, so nothing is thrown for it.
   */
  proxy(port: number, path = "", options: RequestOptions & { method?: string } = {}): Promise<Response> {
    const { method = "GET", ...rest } = options;
    return this.t.fetch(method, `/proxy/${port}/${path.replace(/^\/+/, "")}`, rest);
  }
}
