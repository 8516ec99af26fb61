/**
 * CORS for the HTTP APIs: origins listed in EDGETTY_CORS_ORIGINS (shared/limits.ts; any by
 * default, as the reference Open Terminal; `none` turns CORS off) get CORS headers, and never with
 * credentials (no `Access-Control-Allow-Credentials`), so a cross-origin page must hold a bearer
 * token: a browser does not let such a page read an answer to a request that carried the session
 * cookie, and a cookie-authenticated state change from another origin is refused by the families
 * (family.ts; the Open Terminal family refuses reads too). Preflights are answered here, before
 * authentication (a browser sends them without credentials). WebSocket upgrades are not touched:
 * their origin check is EDGETTY_ALLOWED_ORIGINS.
 *
 * For the Open Terminal family (Open WebUI's per-user "direct" terminals call it from the
 * browser) a preflight allows the headers the page asks for (`X-Session-Id`, `X-User-Id`…) and
 * every method `/proxy/{port}/…` forwards; `Content-Disposition` is readable (archive downloads).
 * There the Worker also authenticates a request from another origin by its bearer token only
 * (index.ts), so the session cookie never acts cross-origin.
 */
import { readConfig, type Env } from "./env.ts";

/** How long a browser may cache a preflight answer, in seconds. */
export const CORS_MAX_AGE_S = 600;
/** Longest `Access-Control-Request-Headers` echoed back, in characters. */
const REQUEST_HEADERS_MAX_CHARS = 2048;
const HEADER_LIST_RE = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$/;

/** True when the request comes from a page of another origin than the edge's. */
export function isCrossOrigin(request: Request): boolean {
  const origin = request.headers.get("Origin");
  return origin !== null && origin !== new URL(request.url).origin;
}

function allowedOrigin(request: Request, env: Env): string | null {
  const origin = request.headers.get("Origin");
  if (!origin || origin === new URL(request.url).origin) return null;
  let list: string[];
  try {
    list = readConfig(env).corsOrigins;
  } catch {
    return null; // a bad configuration is reported by the router's answer itself
  }
  return list.includes("*") || list.includes(origin) ? origin : null;
}

/** The answer to a CORS preflight, or null when `request` is not one. */
export function corsPreflight(request: Request, env: Env): Response | null {
  if (request.method !== "OPTIONS" || !request.headers.has("Access-Control-Request-Method")) return null;
  const origin = allowedOrigin(request, env);
  const headers = new Headers({ Vary: "Origin" });
  if (origin) {
    headers.set("Access-Control-Allow-Origin", origin);
    headers.set("Access-Control-Allow-Methods", "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT");
    // The headers the page asks for (a well-formed token list), else the two every API needs.
    const asked = (request.headers.get("Access-Control-Request-Headers") ?? "").trim().slice(0, REQUEST_HEADERS_MAX_CHARS);
    headers.set("Access-Control-Allow-Headers", HEADER_LIST_RE.test(asked) ? asked : "Authorization, Content-Type");
    headers.set("Access-Control-Max-Age", String(CORS_MAX_AGE_S));
  }
  // 200 with a short text body, as the reference's CORS middleware answers (its page says "200").
  headers.set("Content-Type", "text/plain; charset=utf-8");
  return new Response("OK", { status: 200, headers });
}

/** `response` with CORS headers when the request's origin is allowed. */
export function withCors(request: Request, env: Env, response: Response): Response {
  if (response.status === 101 || !request.headers.has("Origin")) return response;
  const origin = allowedOrigin(request, env);
  if (!origin) return response;
  const out = new Response(response.body, response);
  out.headers.set("Access-Control-Allow-Origin", origin);
  out.headers.set("Access-Control-Expose-Headers", "Content-Disposition");
  out.headers.append("Vary", "Origin");
  return out;
}
