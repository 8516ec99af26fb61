/**
 * URL servers: an existing Open Terminal server (its base URL and API key) that the edge
 * proxies `/api/v1/terminals/{server_id}/{path}` to, after the same checks as agent servers.
 *
 * The key is stored encrypted (AES-256-GCM, key derived with HKDF-SHA-256 from
 * `EDGETTY_SECRETS_KEY`, else from the admin API key — rotating that secret means setting the
 * URL servers' keys again). Upstream gets the sanitised path and query, the headers of
 * {@link forwardedHeaders} (the same an agent server's Open Terminal routes get) and
 * `Authorization: Bearer <stored key>`; never the caller's Authorization, cookies or hop-by-hop
 * headers. Bodies stream both ways; redirects are refused (502); upstream
 * `Set-Cookie`/`Clear-Site-Data` are dropped.
 */
import { ApiError } from "../shared/errors.ts";
import { ADMIN_KEY_IDENTITY } from "./caller.ts";
import type { Env } from "./env.ts";
import type { Identity } from "./identities.ts";

/** Longest upstream URL kept, in characters. */
export const URL_SERVER_URL_MAX_CHARS = 2000;
/** Longest upstream key kept, in characters. */
export const URL_SERVER_KEY_MAX_CHARS = 1000;
/** Longest X-Session-Id forwarded, in characters. */
export const SESSION_ID_MAX_CHARS = 200;

const encoder = new TextEncoder();

async function aesKey(env: Pick<Env, "EDGETTY_API_KEY" | "EDGETTY_SECRETS_KEY">): Promise<CryptoKey> {
  const secret = env.EDGETTY_SECRETS_KEY || env.EDGETTY_API_KEY;
  if (!secret) throw new ApiError(500, "NO_SECRET", "Set EDGETTY_SECRETS_KEY (or EDGETTY_API_KEY) to store URL server keys");
  const base = await crypto.subtle.importKey("raw", encoder.encode(secret), "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: encoder.encode("edgetty url-server keys"), info: encoder.encode("v1") },
    base,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const unb64 = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/** Encrypts a URL server's key for D1: `v1.<iv>.<ciphertext>` (base64). */
export async function sealKey(env: Env, key: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, await aesKey(env), encoder.encode(key)));
  return `v1.${b64(iv)}.${b64(sealed)}`;
}

/** Decrypts what {@link sealKey} made; null when it cannot (another secret, or tampered). */
export async function openKey(env: Env, sealed: string): Promise<string | null> {
  const m = /^v1\.([A-Za-z0-9+/=]+)\.([A-Za-z0-9+/=]+)$/.exec(sealed);
  if (!m) return null;
  try {
    const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: unb64(m[1]!) }, await aesKey(env), unb64(m[2]!));
    return new TextDecoder().decode(plain);
  } catch {
    return null;
  }
}

/** Checks an upstream base URL: http(s), no credentials, query or fragment; answers it without a trailing `/`. */
export function parseUpstreamUrl(value: unknown): string {
  if (typeof value !== "string" || value.length > URL_SERVER_URL_MAX_CHARS) throw new ApiError(400, "INVALID_PARAMETERS", "url must be an http(s) URL");
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ApiError(400, "INVALID_PARAMETERS", "url must be an http(s) URL");
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.username || url.password || url.search || url.hash) {
    throw new ApiError(400, "INVALID_PARAMETERS", "url must be an http(s) URL without credentials, query or fragment");
  }
  return url.href.replace(/\/+$/, "");
}

/** Makes a registered server a URL server with this upstream and key. */
export async function setUrlServer(env: Env, id: string, input: { url?: unknown; key?: unknown }): Promise<{ id: string; kind: "url"; url: string }> {
  const url = parseUpstreamUrl(input.url);
  if (typeof input.key !== "string" || input.key.length > URL_SERVER_KEY_MAX_CHARS) throw new ApiError(400, "INVALID_PARAMETERS", `key must be a string of at most ${URL_SERVER_KEY_MAX_CHARS} characters`);
  const result = await env.DB.prepare("UPDATE servers SET kind = 'url', url = ?, key_enc = ? WHERE id = ?").bind(url, await sealKey(env, input.key.trim()), id).run();
  if ((result.meta.changes ?? 0) === 0) throw new ApiError(404, "SERVER_NOT_FOUND", `No server '${id}'`);
  return { id, kind: "url", url };
}

/** The stored upstream of a URL server, or null when the server is an agent server or has none. */
export async function urlServerUpstream(env: Env, id: string): Promise<{ url: string; key: string } | null> {
  const row = await env.DB.prepare("SELECT kind, url, key_enc FROM servers WHERE id = ?").bind(id).first<{ kind: string; url: string; key_enc: string }>();
  if (!row || row.kind !== "url" || !row.url) return null;
  const key = await openKey(env, row.key_enc);
  return key === null ? null : { url: row.url, key };
}

/**
 * The `X-User-Id` (and WebSocket `?user_id=`) a terminal server is told: a user's credential is
 * that user, whatever the caller asserts; the API key acts for the user it names (Open WebUI
 * sends one key for all its users and tells them apart by `X-User-Id`), else for no user (null:
 * none is sent, the server's single-user mode).
 */
export function forwardedUserId(identity: Identity, asserted: string | null): string | null {
  if (identity !== ADMIN_KEY_IDENTITY) return identity.userId;
  return asserted === null || asserted === "" ? null : asserted.slice(0, SESSION_ID_MAX_CHARS);
}

/**
 * The request headers a terminal server (a URL server, or an agent server's Open Terminal
 * routes) gets from a proxied call: `X-User-Id` ({@link forwardedUserId}), the caller's
 * `X-Session-Id` (at most SESSION_ID_MAX_CHARS) and `Content-Type`. Nothing else from the
 * caller: not its Authorization, cookies, hop-by-hop or any other header.
 */
export function forwardedHeaders(request: Request, identity: Identity): Headers {
  const headers = new Headers();
  const userId = forwardedUserId(identity, request.headers.get("X-User-Id"));
  if (userId !== null) headers.set("X-User-Id", userId);
  const sessionId = request.headers.get("X-Session-Id");
  if (sessionId) headers.set("X-Session-Id", sessionId.slice(0, SESSION_ID_MAX_CHARS));
  const contentType = request.headers.get("Content-Type");
  if (contentType) headers.set("Content-Type", contentType);
  return headers;
}

/**
 * Edges a proxied call may have passed through, counted in URL_SERVER_HOPS_HEADER: a URL server
 * may be another edgetty (or this one, by mistake), and a chain that comes back to itself would
 * otherwise recurse until the platform stops it. Past it: 508 (HTTP) or close 4508 (WebSocket).
 */
export const URL_SERVER_HOPS_MAX = 4;
/** The header counting the edges a proxied call passed through (set on calls to URL servers). */
export const URL_SERVER_HOPS_HEADER = "X-Edgetty-Hops";

/** The edges `request` passed through before this one (0 for a client's own request). */
export function hopsOf(request: Request): number {
  const n = Number(request.headers.get(URL_SERVER_HOPS_HEADER) ?? "0");
  return Number.isInteger(n) && n > 0 ? Math.min(n, URL_SERVER_HOPS_MAX + 1) : 0;
}

/** The answer to a proxied call that has passed through too many edges. */
export function proxyLoopResponse(): Response {
  const error = `Terminal proxy loop: the call passed through more than ${URL_SERVER_HOPS_MAX} edges (a URL server pointing back at an edge?)`;
  return Response.json({ error, code: "PROXY_LOOP" }, { status: 508 });
}

/** Response headers never passed back: hop-by-hop, and what would let a server set state on the edge's origin. */
const DROPPED_RESPONSE_HEADERS = ["connection", "keep-alive", "transfer-encoding", "content-encoding", "content-length", "set-cookie", "clear-site-data", "proxy-authenticate", "upgrade", "trailer"];

/**
 * Proxies one request to a URL server: `path` is the sanitised path, `identity` the caller and
 * `access` what the proxy's checks granted it for this request.
 * Upstream failures answer 502 `{"error": "Terminal proxy error: …"}`.
 */
export async function proxyToUrlServer(request: Request, upstream: { url: string; key: string }, path: string, identity: Identity, access: "read" | "write"): Promise<Response> {
  let search = new URL(request.url).search;
  // A screenshot is saved on the host unless `save=false` (seed 002): a read-only caller's never
  // is, here as on an agent server (screen-api.ts). Other queries go as they came.
  if (access !== "write" && /(^|\/)api\/v1\/terminal\/screenshot$/.test(path)) {
    const params = new URLSearchParams(search);
    params.set("save", "false");
    search = `?${params}`;
  }
  const target = `${upstream.url}/${path}${search}`;
  const hops = hopsOf(request);
  if (hops >= URL_SERVER_HOPS_MAX) return proxyLoopResponse();
  const headers = forwardedHeaders(request, identity);
  headers.set("Authorization", `Bearer ${upstream.key}`);
  headers.set(URL_SERVER_HOPS_HEADER, String(hops + 1));
  const hasBody = request.method !== "GET" && request.method !== "HEAD";
  let response: Response;
  try {
    response = await fetch(target, { method: request.method, headers, redirect: "manual", ...(hasBody ? { body: request.body } : {}) });
  } catch (error) {
    return Response.json({ error: `Terminal proxy error: ${(error as Error).message}`, code: "PROXY_ERROR" }, { status: 502 });
  }
  if (response.status >= 300 && response.status < 400) {
    await response.body?.cancel();
    return Response.json({ error: "Terminal proxy error: upstream redirected", code: "PROXY_ERROR" }, { status: 502 });
  }
  const out = new Headers(response.headers);
  for (const name of DROPPED_RESPONSE_HEADERS) out.delete(name);
  return new Response(response.body, { status: response.status, headers: out });
}
