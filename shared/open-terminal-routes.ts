/**
 * The routes edgetty serves for the Open Terminal family (top level for the default server, and
 * under `/api/v1/terminals/{server_id}/` for any server), with who may call them, and the
 * discovery answers that need no agent (`/health`, `/api/config`). The edge's router, its CORS
 * preflights and the OpenAPI document follow this list; a test holds them together.
 */

/** `GET /api/config`. */
export interface ApiConfig {
  features: { terminal: boolean; notebooks: boolean; system: boolean };
}

/** `GET /health` (no auth). */
export function healthBody(): { status: "ok" } {
  return { status: "ok" };
}

/**
 * `GET /api/config` (no auth in the reference): feature flags for client-side discovery.
 * edgetty serves interactive terminals and `/system`; it has no notebooks.
 */
export function apiConfig(opts: { terminal?: boolean; system?: boolean } = {}): ApiConfig {
  return { features: { terminal: opts.terminal ?? true, notebooks: false, system: opts.system ?? true } };
}

/** How a route is carried: answered by the edge, the execute relay, or the agent's HTTP tunnel. */
export type OtCarrier = "edge" | "exec" | "tunnel";

/** One route of this family; `auth: false` routes answer without a bearer token. */
export interface OtRoute {
  method: "GET" | "POST" | "DELETE" | "ANY";
  path: string;
  auth: boolean;
  carrier: OtCarrier;
  websocket?: true;
}

const edge = (method: OtRoute["method"], path: string, auth = true): OtRoute => ({ method, path, auth, carrier: "edge" });
const exec = (method: OtRoute["method"], path: string): OtRoute => ({ method, path, auth: true, carrier: "exec" });
const tunnel = (method: OtRoute["method"], path: string): OtRoute => ({ method, path, auth: true, carrier: "tunnel" });

/** Every route of the family. `{path}` in `/files/serve/{path}` and `/proxy/{port}/{path}` spans slashes. */
export const OPEN_TERMINAL_ROUTES: readonly OtRoute[] = [
  edge("GET", "/health", false),
  edge("GET", "/api/config", false),
  edge("GET", "/openapi.json", false),
  edge("GET", "/docs", false),
  tunnel("GET", "/system"),
  tunnel("GET", "/info"),
  exec("GET", "/execute"),
  exec("POST", "/execute"),
  exec("GET", "/execute/{process_id}/status"),
  exec("POST", "/execute/{process_id}/input"),
  exec("DELETE", "/execute/{process_id}"),
  tunnel("GET", "/files/cwd"),
  tunnel("POST", "/files/cwd"),
  tunnel("GET", "/files/list"),
  tunnel("GET", "/files/read"),
  tunnel("GET", "/files/display"),
  tunnel("GET", "/files/view"),
  tunnel("GET", "/files/serve/{path}"),
  tunnel("POST", "/files/write"),
  tunnel("POST", "/files/replace"),
  tunnel("GET", "/files/grep"),
  tunnel("GET", "/files/glob"),
  tunnel("POST", "/files/mkdir"),
  tunnel("DELETE", "/files/delete"),
  tunnel("POST", "/files/move"),
  tunnel("POST", "/files/upload"),
  tunnel("POST", "/files/archive"),
  tunnel("GET", "/ports"),
  tunnel("ANY", "/proxy/{port}/{path}"),
  edge("POST", "/api/terminals"),
  edge("GET", "/api/terminals"),
  edge("GET", "/api/terminals/{session_id}"),
  edge("DELETE", "/api/terminals/{session_id}"),
  // First-message auth ({"type":"auth","token":…}), not a header.
  { method: "GET", path: "/api/terminals/{session_id}", auth: false, carrier: "edge", websocket: true },
];

/** Each route's path as a pattern: `{path}` spans slashes (the last segment of serve and proxy), other parameters one segment. */
const ROUTE_PATTERNS: readonly { route: OtRoute; pattern: RegExp }[] = OPEN_TERMINAL_ROUTES.map((route) => ({
  route,
  pattern: new RegExp(`^${route.path.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{path\}/g, ".*").replace(/\{[a-z_]+\}/g, "[^/]+")}$`),
}));

/**
 * The routes serving `path` (the family's, without a mount prefix), for any method: empty for a
 * path the family does not serve (FastAPI's 404), else the caller knows a 405 from a 404.
 */
export function routesFor(path: string): OtRoute[] {
  return ROUTE_PATTERNS.filter((p) => p.pattern.test(path)).map((p) => p.route);
}

/** True when `path` (the family's, without a mount prefix) is carried by the agent's HTTP tunnel. */
export function isTunnelPath(path: string): boolean {
  return /^\/(files\/|ports$|proxy\/|system$|info$)/.test(path);
}
