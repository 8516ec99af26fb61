/**
 * Per-user API tokens: their format, generation and verification. A token is shown once, at
 * creation, as `ett_<id>_<secret>`: `id` (16 hex digits) is public and names the D1 row; the row
 * holds only the SHA-256 of the whole token, compared in constant time. Tokens are never logged.
 */
import { safeEqual, sha256Hex } from "./auth.ts";

/** Prefix of every per-user API token, so leaked tokens are easy to recognise and scan for. */
export const API_TOKEN_PREFIX = "ett_";
/** Random bytes in a token's secret part (256 bits). */
export const API_TOKEN_SECRET_BYTES = 32;
/** Random bytes in a token's public id. */
export const API_TOKEN_ID_BYTES = 8;

const TOKEN_RE = /^ett_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** A freshly made token: `token` goes to the user once; `id` and `hash` are stored. */
export interface NewApiToken {
  id: string;
  token: string;
  hash: string;
}

function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

/** Generates a new token from the Web Crypto RNG. */
export async function generateApiToken(): Promise<NewApiToken> {
  const id = [...randomBytes(API_TOKEN_ID_BYTES)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const token = `${API_TOKEN_PREFIX}${id}_${base64url(randomBytes(API_TOKEN_SECRET_BYTES))}`;
  return { id, token, hash: await sha256Hex(token) };
}

/** The public id of a well-formed token, else null (the caller then tries other credentials). */
export function apiTokenId(token: string): string | null {
  const m = TOKEN_RE.exec(token);
  return m ? m[1]! : null;
}

/** True when `token` hashes to `storedHash` (hex SHA-256), compared in constant time. */
export async function apiTokenMatches(token: string, storedHash: string): Promise<boolean> {
  return safeEqual(await sha256Hex(token), storedHash);
}
