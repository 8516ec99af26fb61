/**
 * Who is calling: the admin (the API key as a bearer token, or a browser session cookie that
 * a sign-in with that key set), or an agent (its server's agent token). Tokens are compared as
 * SHA-256 digests in constant time and never logged.
 */
import { ApiError } from "../shared/errors.ts";

export const SESSION_COOKIE = "edgetty_session";
/** How long a browser sign-in lasts, in seconds. */
export const SESSION_TTL_S = 12 * 60 * 60;

export type Principal = { role: "admin" };

const encoder = new TextEncoder();

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Constant-time equality of two strings (compared as digests, so lengths don't leak). */
export async function safeEqual(a: string, b: string): Promise<boolean> {
  const [da, db] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(a)),
    crypto.subtle.digest("SHA-256", encoder.encode(b)),
  ]);
  return crypto.subtle.timingSafeEqual(da, db);
}

export function bearerToken(request: Request): string | null {
  const header = request.headers.get("Authorization");
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return m ? m[1]! : null;
}

async function hmac(key: string, message: string): Promise<string> {
  const k = await crypto.subtle.importKey("raw", encoder.encode(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const sig = await crypto.subtle.sign("HMAC", k, encoder.encode(message));
  return btoa(String.fromCharCode(...new Uint8Array(sig))).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

function cookieValue(request: Request, name: string): string | null {
  const header = request.headers.get("Cookie");
  if (!header) return null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** A signed, expiring session value: `admin.<expiry ms>.<hmac>` keyed by the API key. */
export async function issueSessionCookie(apiKey: string, secure: boolean, now = Date.now()): Promise<string> {
  const expires = now + SESSION_TTL_S * 1000;
  const payload = `admin.${expires}`;
  const value = `${payload}.${await hmac(apiKey, `session:${payload}`)}`;
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_TTL_S}${secure ? "; Secure" : ""}`;
}

export function clearSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? "; Secure" : ""}`;
}

async function sessionPrincipal(request: Request, apiKey: string, now = Date.now()): Promise<Principal | null> {
  const value = cookieValue(request, SESSION_COOKIE);
  const m = value ? /^(admin)\.(\d{1,16})\.([A-Za-z0-9_-]+)$/.exec(value) : null;
  if (!m || Number(m[2]) < now) return null;
  const expected = await hmac(apiKey, `session:${m[1]}.${m[2]}`);
  return (await safeEqual(expected, m[3]!)) ? { role: "admin" } : null;
}

/** The caller, or null. `allowCookie` is off for APIs whose clients send bearer tokens only. */
export async function authenticate(request: Request, apiKey: string | undefined, allowCookie = true): Promise<Principal | null> {
  if (!apiKey) return null;
  const token = bearerToken(request);
  if (token !== null) return (await safeEqual(token, apiKey)) ? { role: "admin" } : null;
  return allowCookie ? sessionPrincipal(request, apiKey) : null;
}

export function unauthorized(): ApiError {
  return new ApiError(401, "UNAUTHORIZED", "Missing or invalid token: send Authorization: Bearer <api key>");
}
