/**
 * CORS for the HTTP APIs: only origins listed in EDGETTY_CORS_ORIGINS (shared/limits.ts) get
 * CORS headers, and never with credentials, so a cross-origin page must hold a bearer token (the
 * session cookie stays same-origin). Preflights are answered here, before authentication (a
 * browser sends them without credentials). WebSocket upgrades are not touched: their origin
 * check is EDGETTY_ALLOWED_ORIGINS.
 */
import { readConfig, type Env } from "./env.ts";

/** How long a browser may cache a preflight answer, in seconds. */
export const CORS_MAX_AGE_S = 600;

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
    headers.set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE");
    headers.set("Access-Control-Allow-Headers", "Authorization, Content-Type");
    headers.set("Access-Control-Max-Age", String(CORS_MAX_AGE_S));
  }
  return new Response(null, { status: 204, headers });
}

/** `response` with CORS headers when the request's origin is allowed. */
export function withCors(request: Request, env: Env, response: Response): Response {
  if (response.status === 101 || !request.headers.has("Origin")) return response;
  const origin = allowedOrigin(request, env);
  if (!origin) return response;
  const out = new Response(response.body, response);
  out.headers.set("Access-Control-Allow-Origin", origin);
  out.headers.append("Vary", "Origin");
  return out;
}
