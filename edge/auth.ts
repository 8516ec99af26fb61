/**
 * Who is calling: the admin (the API key as a bearer token, or a browser session cookie that a
 * sign-in with that key set), or an agent (its server's agent token, checked by the agent-link
 * routes). Tokens are compared as SHA-256 digests in constant time and never logged.
 *
 * A cookie is `admin.<expiry ms>.<nonce>.<hmac>`: the HMAC (keyed by the API key) lets forged
 * values be refused without a lookup; a server-side record (browser-sessions.ts) lets sign-out
 * revoke it. The browser sends a cookie wherever the request comes from, so a cookie carries no
 * authority across origins (`sameOrigin`): state-changing calls and WebSocket upgrades that it
 * authenticates must come from the edge's own origin.
 */
import { browserSessionLive, recordBrowserSession, revokeBrowserSession } from "./browser-sessions.ts";
import { accessConfigFor, ADMIN_KEY_IDENTITY, identifyAccess, identifyBearer } from "./caller.ts";
import type { Env } from "./env.ts";
import { getUser, type Identity } from "./identities.ts";
import { API_TOKEN_PREFIX } from "./api-tokens.ts";
import { SHARE_TOKEN_PREFIX, shareTokenFromProtocols } from "./share-links.ts";

export const SESSION_COOKIE = "edgetty_session";
/** How long a browser sign-in lasts, in seconds. */
export const SESSION_TTL_S = 12 * 60 * 60;

/**
 * An authenticated caller. `via` says which credential: a bearer token (the API key or a
 * per-user `ett_…` token, any client), the browser's session cookie (`session`: the digest of
 * its server-side record), or a Cloudflare Access assertion mapped to a user. `identity` is who
 * it is (identities.ts: the admin key's, or a user's); `role` is that identity's role, so a
 * user's credential is `role: "user"` unless the user is an admin.
 */
export type Principal =
  | { role: Identity["role"]; via: "bearer" | "access"; identity: Identity }
  | { role: Identity["role"]; via: "cookie"; session: string; expiresAt: number; identity: Identity };

/** The env an authentication reads: D1, the API key and the Access settings. */
export type AuthEnv = Pick<Env, "DB" | "EDGETTY_API_KEY" | "EDGETTY_ACCESS_TEAM_DOMAIN" | "EDGETTY_ACCESS_AUD">;

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

/** The API key's SHA-256, kept per isolate (one key per deployment): every bearer call compares against it. */
let keyDigest: { key: string; digest: ArrayBuffer } | null = null;

/**
 * {@link safeEqual} of a caller's `token` and the deployment's API `key`, hashing only the token:
 * the key's digest is computed once per isolate (the comparison stays constant-time on digests).
 * The digest is kept as bytes, never as a promise: no request waits on another request's work.
 */
export async function equalsApiKey(token: string, key: string): Promise<boolean> {
  if (keyDigest?.key !== key) keyDigest = { key, digest: await crypto.subtle.digest("SHA-256", encoder.encode(key)) };
  const dk = keyDigest.digest;
  const dt = await crypto.subtle.digest("SHA-256", encoder.encode(token));
  return crypto.subtle.timingSafeEqual(dt, dk);
}

/** The token of an `Authorization: Bearer …` header, or null. */
export function bearerToken(request: Request): string | null {
  const header = request.headers.get("Authorization");
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return m ? m[1]! : null;
}

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

/**
 * A random URL-safe token of `bytes` random bytes. Never starts with `-`: operators paste tokens
 * after a flag (`--token T`), and a CLI parser takes a leading dash for another option.
 */
export function randomToken(bytes = 24): string {
  for (;;) {
    const token = base64url(crypto.getRandomValues(new Uint8Array(bytes)));
    if (!token.startsWith("-")) return token;
  }
}

async function hmac(key: string, message: string): Promise<string> {
  const k = await crypto.subtle.importKey("raw", encoder.encode(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return base64url(new Uint8Array(await crypto.subtle.sign("HMAC", k, encoder.encode(message))));
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

/**
 * Signs a browser in: records a new session and answers its `Set-Cookie` header value. `user`
 * is the identity of a per-user token signed in with (its user, role and read-only scope are
 * carried, signed, in the cookie; the session is tied to the token, ending when it is revoked
 * or expires); omitted, the admin (the API key).
 */
export async function issueSessionCookie(env: Pick<Env, "DB">, apiKey: string, secure: boolean, now = Date.now(), user?: Identity): Promise<string> {
  // A session never outlives the token it was signed in with (nor its revocation: browser-sessions.ts).
  const expires = Math.min(now + SESSION_TTL_S * 1000, user?.expiresAt ?? Infinity);
  const maxAge = Math.max(0, Math.floor((expires - now) / 1000));
  const subject = user === undefined ? "admin" : `user~${user.userId}~${user.role}~${user.readOnly ? "ro" : "rw"}`;
  const payload = `${subject}.${expires}.${randomToken(16)}`;
  const value = `${payload}.${await hmac(apiKey, `session:${payload}`)}`;
  await recordBrowserSession(env.DB, await sha256Hex(value), expires, now, user?.tokenId ?? null, subject);
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${secure ? "; Secure" : ""}`;
}

/** The `Set-Cookie` value that makes the browser drop its cookie. */
export function clearSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? "; Secure" : ""}`;
}

/** Signs out: the cookie's server-side record is deleted, so copies of it stop working too. */
export async function revokeSession(env: Pick<Env, "DB">, principal: Principal): Promise<void> {
  if (principal.via === "cookie") await revokeBrowserSession(env.DB, principal.session);
}

/**
 * The cookie's caller: `admin.<expiry>.<nonce>.<hmac>` is the admin; `user~<id>~<role>~<ro|rw>.…`
 * a user, who must still exist and be enabled (checked on every request); their role is the
 * lower of the one signed in with and the user's current one.
 */
async function sessionPrincipal(request: Request, env: Pick<Env, "DB">, apiKey: string, now = Date.now()): Promise<Principal | null> {
  const value = cookieValue(request, SESSION_COOKIE);
  const m = value ? /^((admin|user~([a-z0-9][a-z0-9._-]{0,62})~(admin|user)~(ro|rw))\.(\d{1,16})\.[A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{1,64})$/.exec(value) : null;
  if (!value || !m || Number(m[6]) < now) return null;
  if (!(await safeEqual(await hmac(apiKey, `session:${m[1]}`), m[7]!))) return null;
  const session = await sha256Hex(value);
  if (!(await browserSessionLive(env.DB, session, now))) return null;
  const identity = await sessionIdentity(env.DB, m[2]!);
  return identity ? { role: identity.role, via: "cookie", session, expiresAt: Number(m[6]), identity } : null;
}

/**
 * Who a session cookie's subject is now: `admin` the admin key's identity; `user~<id>~<role>~<ro|rw>`
 * the user, if they still exist and are enabled, with the lower of the signed role and their
 * current one. Null otherwise (also for a malformed subject).
 */
export async function sessionIdentity(db: D1Database, subject: string): Promise<Identity | null> {
  if (subject === "admin") return ADMIN_KEY_IDENTITY;
  const m = /^user~([a-z0-9][a-z0-9._-]{0,62})~(admin|user)~(ro|rw)$/.exec(subject);
  if (!m) return null;
  const user = await getUser(db, m[1]!);
  if (!user || user.disabled) return null;
  const role = m[2] === "admin" && user.role === "admin" ? "admin" : "user";
  return { userId: user.id, role, tokenId: null, readOnly: m[3] === "ro" };
}

/**
 * The caller, or null. A bearer token (or a share link's token offered as a WebSocket
 * subprotocol), when sent, decides alone (a wrong one is not rescued by
 * a cookie): a per-user token (`ett_…`, its D1 row) or the API key. Else the session cookie;
 * else, when Access is configured, a `Cf-Access-Jwt-Assertion` mapped to an enabled user.
 * `allowCookie` is off for APIs whose clients send bearer tokens only.
 */
export async function authenticate(request: Request, env: AuthEnv, allowCookie = true): Promise<Principal | null> {
  const apiKey = env.EDGETTY_API_KEY;
  // A browser WebSocket cannot send a header: a share link's token may ride as a subprotocol.
  const token = bearerToken(request) ?? shareTokenFromProtocols(request);
  if (token !== null) {
    const identity = await identifyBearer(env.DB, token, apiKey);
    return identity ? { role: identity.role, via: "bearer", identity } : null;
  }
  if (allowCookie && apiKey) {
    const session = await sessionPrincipal(request, env, apiKey);
    if (session) return session;
  }
  const access = await identifyAccess(env.DB, request, accessConfigFor(env));
  return access ? { role: access.role, via: "access", identity: access } : null;
}

/**
 * What a 401 tells a caller, by what it sent: a per-user API token or a share link's token that
 * did not authenticate is named as such (never called an "API key"); a session cookie that no
 * longer works says to sign in again; anything else gets the family's own text (`fallback`,
 * the Open Terminal family's being the reference's exact "Invalid API key").
 */
export function unauthorizedMessage(request: Request, fallback: string): string {
  const token = bearerToken(request) ?? shareTokenFromProtocols(request);
  if (token !== null) {
    // By prefix: a token cut short or mistyped is still named for what it was meant to be.
    if (token.startsWith(API_TOKEN_PREFIX)) return "Invalid, expired or revoked API token";
    if (token.startsWith(SHARE_TOKEN_PREFIX)) return "Invalid, expired or revoked share link";
    return fallback;
  }
  if (cookieValue(request, SESSION_COOKIE) !== null) return "Session expired or signed out: sign in again";
  return fallback;
}

/** Methods that change nothing, so a cookie may authenticate them from anywhere (reads only). */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** True when a cookie-authenticated request must pass the same-origin check. */
export function needsSameOrigin(request: Request): boolean {
  return !SAFE_METHODS.has(request.method) || request.headers.get("Upgrade")?.toLowerCase() === "websocket";
}

/**
 * Whether a request comes from the edge's own origin, by what browsers send: `Origin`; without
 * it `Sec-Fetch-Site` (only `same-origin` passes); without either, `Referer`'s origin. A request
 * with none of them was not made by a browser, so no browser's cookie is being ridden: it passes.
 */
export function sameOrigin(request: Request): boolean {
  const own = new URL(request.url).origin;
  const origin = request.headers.get("Origin");
  if (origin !== null) return origin === own;
  const site = request.headers.get("Sec-Fetch-Site");
  if (site !== null) return site === "same-origin";
  const referer = request.headers.get("Referer");
  if (referer === null) return true;
  try {
    return new URL(referer).origin === own;
  } catch {
    return false;
  }
}
