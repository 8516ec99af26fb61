/**
 * An API family: one itty-router whose routes each declare who may call them, mounted where the
 * family lives, rendering every error through the family's own error type.
 *
 *   const api = new ApiFamily("session", SessionApiError, MOUNTS);
 *   api.route("POST", "/api/v1/terminal/create", "admin", handler, { json: true });
 *
 * Before a handler runs, its route's guard: authenticates the caller as its access level
 * demands (401 otherwise); refuses a cookie-authenticated state change, WebSocket upgrade or GET
 * with side effects (`sideEffects`) that does not come from the edge's own origin (403; any
 * cookie-authenticated call, on a route with `cookieSameOrigin: "always"`); refuses a JSON route's body sent as anything
 * but JSON (415); and resolves the addressed server (the terminals family's 400/404).
 */
import { Router, type IRequest, type RouterType } from "itty-router";
import { authenticate, needsSameOrigin, sameOrigin, unauthorizedMessage, type Principal } from "./auth.ts";
import { gatedCall, type ProxiedRequest } from "./caller-gate.ts";
import { readConfig, type Config, type Env } from "./env.ts";
import { asFamilyError, type FamilyErrorType } from "./errors.ts";
import { hasBody, isJsonContentType } from "./http.ts";
import type { Access as Grant } from "./proxy-checks.ts";
import { resolveScope, ROOT_MOUNT, SERVER_MOUNT, type Mount, type Scope } from "./scope.ts";

/**
 * Who may call a route:
 * - `public`: anyone (the caller is still identified, for routes that show more to the admin);
 * - `read`: any authenticated caller, and the route changes nothing. A user (role `user`) passes
 *   only on an unscoped route (the terminals list, their own browser session) or under the mount
 *   of a server whose proxy checks they passed (caller-gate.ts: they hold a grant on it);
 * - `write`: the admin, or a user under the mount of a server they hold a `write` grant on
 *   (the server-scoped routes that change something: create, input, execute, files);
 * - `admin`: admins only (the API key, a browser signed in with it, an admin user's credential);
 *   a user's credential never passes (403 ADMIN_ONLY); an admin's read-only token only reads;
 * - `agent`: a host's agent, with its server's agent token (`?server=` names the server).
 *
 * A `read` or `write` route under a server's mount also learns the caller's access for this
 * request (`request.access`: a WebSocket attach with `read` is read-only) and the terminals it
 * may reach (`request.terminals`, see {@link mayReach}). A share link's bearer passes only under
 * the mount of its terminal's server, on that terminal's read routes (the gate's checks).
 */
export type Access = "public" | "read" | "write" | "admin" | "agent";

export type Method = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "ALL";

export interface RouteOptions {
  /** The body is JSON: a non-empty body of another content type is refused 415. */
  json?: boolean;
  /** Mount on only these of the family's mounts (default: all of them). */
  mounts?: readonly Mount["name"][];
  /**
   * When a cookie-authenticated call must come from the edge's own origin: `unsafe` (default)
   * for state changes and WebSocket upgrades; `always` for every method (a family that answers
   * CORS, where a cross-origin page must authenticate with its bearer token).
   */
  cookieSameOrigin?: "unsafe" | "always";
  /**
   * For a GET that changes something on some requests (the session API's screenshot with
   * `save`): true when this one does, so a cookie-authenticated call must come from the edge's
   * own origin as a state change would (403 ORIGIN_CHECK_FAILED). Read from the request alone,
   * before the handler runs; answer true when unsure.
   */
  sideEffects?: (request: Request) => boolean;
  /**
   * A GET route answers HEAD too: the same guard and handler, the answer's status and headers
   * without its body (RFC 9110 §9.3.2), as HTTP servers do by default.
   */
  head?: boolean;
}

/** A request as a route's handler sees it: itty's, plus what the guard established. */
export type RouteRequest = IRequest & {
  /** The authenticated caller (null on a public route called without credentials). */
  principal: Principal | null;
  /** The server addressed (an agent route: the agent's own server). */
  scope: Scope;
  config: Config;
  /**
   * The caller's access for this request: `write` for the admin (`read` with a read-only token),
   * a user's grant on the terminal the request addresses or on its server; `read` for public
   * and agent routes.
   */
  access: Grant;
  /** The only terminals the caller may reach here (per-terminal grants, a share link); null: any. */
  terminals: ReadonlySet<number> | null;
  /**
   * The caller may write to the whole server (what creating a terminal takes): the admin with a
   * token that writes, a user with a server-wide `write` grant; false on public and agent routes.
   */
  serverWrite: boolean;
};

/** True when the request's caller may reach terminal `terminalId` (handlers check the id they act on). */
export function mayReach(request: RouteRequest, terminalId: number): boolean {
  return request.terminals === null || request.terminals.has(terminalId);
}

/** A route's handler; `undefined` passes the request on to the next matching route. */
export type RouteHandler = (request: RouteRequest, env: Env, ctx: ExecutionContext) => Promise<Response | undefined> | Response | undefined;

/** Verifies an agent's token for its server; answers the server id or null. */
export type AgentVerifier = (request: Request, env: Env) => Promise<string | null>;

type FamilyRouter = RouterType<IRequest, [Env, ExecutionContext]>;

export class ApiFamily {
  readonly router: FamilyRouter;
  /** Options every route of this family gets unless its own options say otherwise. */
  defaults: RouteOptions = { head: true };
  /** Whether the family's routes address a server (mounted under a server's prefix too). */
  private readonly scoped: boolean;

  /**
   * @param name for logs
   * @param errors the family's error type: everything thrown in its routes renders through it
   * @param mounts where the family's routes live (ROOT_MOUNT only for unscoped families)
   * @param verifyAgent how `agent` routes check their caller
   */
  constructor(
    readonly name: string,
    readonly errors: FamilyErrorType,
    private readonly mounts: readonly Mount[] = [ROOT_MOUNT],
    private readonly verifyAgent?: AgentVerifier,
  ) {
    this.scoped = mounts.includes(SERVER_MOUNT);
    this.router = Router<IRequest, [Env, ExecutionContext]>({
      catch: (error, request) => asFamilyError(errors, error, `${name} ${request.method} ${new URL(request.url).pathname}`).response(),
    });
  }

  /** Declares a route: its method, path (itty syntax), who may call it, and its handler. */
  route(method: Method, path: string, access: Access, handler: RouteHandler, own: RouteOptions = {}): this {
    const options = { ...this.defaults, ...own };
    for (const mount of this.mounts) {
      if (options.mounts && !options.mounts.includes(mount.name)) continue;
      const guarded = this.guard(mount, access, options, handler);
      this.router[method.toLowerCase() as Lowercase<Method>](mount.prefix + path, guarded);
      if (method === "GET" && options.head) this.router.head(mount.prefix + path, withoutBody(guarded));
    }
    return this;
  }

  /** Answers the request if one of this family's routes takes it; undefined otherwise. */
  fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response | undefined> {
    return this.router.fetch(request as IRequest, env, ctx) as Promise<Response | undefined>;
  }

  private error(status: number, code: string, message: string): Error {
    return new this.errors(status, code, message);
  }

  /**
   * A user (not an admin) on a non-public route: never an `admin` route; a server-scoped route
   * only under the mount of the server the gate checked them for, and a `write` route only with
   * a `write` grant on it; unscoped `read` routes pass.
   */
  private checkUser(mount: Mount, access: Access, scope: Scope, proxied: ProxiedRequest | null, share: boolean): void {
    const adminOnly = () => this.error(403, "ADMIN_ONLY", "This route is for admins; users reach their servers under /api/v1/terminals/");
    if (access === "admin") throw adminOnly();
    // A share link reaches its terminal's routes only (under its server's mount, checked by the gate).
    if (!this.scoped && access === "read" && !share) return;
    if (!onCheckedServer(mount, scope, proxied)) throw adminOnly();
    if (access === "write" && proxied.access !== "write") throw this.error(403, "READ_ONLY", "Read-only access");
  }

  private guard(mount: Mount, access: Access, options: RouteOptions, handler: RouteHandler) {
    return async (request: IRequest, env: Env, ctx: ExecutionContext): Promise<Response | undefined> => {
      const config = readConfig(env);
      const routed = request as RouteRequest;
      if (access === "agent") {
        const serverId = this.verifyAgent ? await this.verifyAgent(request, env) : null;
        if (serverId === null) throw this.error(401, "UNAUTHORIZED", this.errors.unauthorizedMessage);
        routed.principal = null;
        routed.scope = { serverId, base: "" };
        routed.access = "read";
        routed.terminals = null;
        routed.serverWrite = false;
      } else {
        // The gate (caller-gate.ts) already identified callers under a server's mount.
        const gated = gatedCall(request);
        routed.principal = gated ? gated.principal : await authenticate(request, env);
        if (access !== "public" && routed.principal === null) throw this.error(401, "UNAUTHORIZED", unauthorizedMessage(request, this.errors.unauthorizedMessage));
        // Under a server's mount every call is audited (caller-gate.ts): a side effect, whatever the method.
        const originMatters = options.cookieSameOrigin === "always" || mount.name === "server" || needsSameOrigin(request) || (options.sideEffects?.(request) ?? false);
        if (routed.principal?.via === "cookie" && originMatters && !sameOrigin(request)) {
          // A public route does not need the caller: it just does not see them.
          if (access === "public") routed.principal = null;
          else throw this.error(403, "ORIGIN_CHECK_FAILED", "A request signed in by cookie must come from this edge's own origin");
        }
        routed.scope = await resolveScope(mount, request.params, env, config);
        const proxied = gated?.proxied ?? null;
        routed.access = "read";
        routed.terminals = null;
        routed.serverWrite = false;
        if (routed.principal && routed.principal.role !== "admin") {
          // A public route shows a user no more than an anonymous caller, but on a server they may use.
          if (access === "public") {
            if (!this.scoped || !onCheckedServer(mount, routed.scope, proxied)) routed.principal = null;
          } else this.checkUser(mount, access, routed.scope, proxied, routed.principal.identity.share !== undefined);
          if (routed.principal && onCheckedServer(mount, routed.scope, proxied)) {
            routed.access = proxied.access;
            routed.terminals = proxied.terminals;
            routed.serverWrite = proxied.serverAccess === "write" && routed.principal.identity.share === undefined;
          }
        } else if (routed.principal) {
          // The admin: everything, but a read-only token only reads (in this family's shape).
          routed.access = routed.principal.identity.readOnly ? "read" : "write";
          routed.serverWrite = routed.access === "write";
          const changes = access === "write" || (access === "admin" && needsSameOrigin(request));
          if (changes && routed.access !== "write") throw this.error(403, "READ_ONLY", "Read-only access: this token may only read");
        }
      }
      if (options.json && hasBody(request) && !isJsonContentType(request.headers.get("Content-Type"))) {
        throw this.error(415, "UNSUPPORTED_MEDIA_TYPE", "Send the body as JSON with Content-Type: application/json");
      }
      routed.config = config;
      return handler(routed, env, ctx);
    };
  }
}

/** `handler` for HEAD: its answer's status and headers, its body cancelled unread. */
function withoutBody(handler: (request: IRequest, env: Env, ctx: ExecutionContext) => Promise<Response | undefined>) {
  return async (request: IRequest, env: Env, ctx: ExecutionContext): Promise<Response | undefined> => {
    const response = await handler(request, env, ctx);
    if (response === undefined || response.body === null) return response;
    await response.body.cancel();
    return new Response(null, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

/** True when the route is under the mount of the server the gate checked the caller for. */
function onCheckedServer(mount: Mount, scope: Scope, proxied: ProxiedRequest | null): proxied is ProxiedRequest {
  return mount.name === "server" && proxied !== null && proxied.serverId === scope.serverId;
}

/** Runs `families` in order; the first that has a route for the request answers. */
export async function dispatch(families: readonly ApiFamily[], request: Request, env: Env, ctx: ExecutionContext): Promise<Response | undefined> {
  for (const family of families) {
    const response = await family.fetch(request, env, ctx);
    if (response !== undefined) return response;
  }
  return undefined;
}
