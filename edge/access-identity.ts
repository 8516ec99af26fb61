/**
 * Cloudflare Access identities: behind Access, every request carries `Cf-Access-Jwt-Assertion`,
 * an RS256 JWT signed by the team's keys (`https://<team>.cloudflareaccess.com/cdn-cgi/access/certs`)
 * with the application's AUD tag as audience. It is verified with `jose` (signature, issuer,
 * audience, expiry) and yields the signed-in email, which the registry maps to a user. Off unless
 * both the team domain and the audience are configured.
 */
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey } from "jose";

/** The request header Access adds. */
export const ACCESS_JWT_HEADER = "Cf-Access-Jwt-Assertion";
/** Longest assertion looked at, in characters (Access JWTs are ~1 KiB). */
export const ACCESS_JWT_MAX_CHARS = 16 * 1024;
/** Clock skew tolerated on `exp`/`nbf`, in seconds. */
export const ACCESS_CLOCK_TOLERANCE_S = 30;

/** Where Access identities come from: the team's issuer URL, the app's AUD tag and its keys. */
export interface AccessConfig {
  issuer: string;
  audience: string;
  keys: JWTVerifyGetKey;
}

/**
 * The Access config for `teamDomain` (`myteam` or `myteam.cloudflareaccess.com`) and `audience`,
 * or null when either is unset. `jwks` replaces the team's published keys (tests, pinned keys).
 */
export function accessConfig(teamDomain: string | undefined, audience: string | undefined, jwks?: JSONWebKeySet): AccessConfig | null {
  if (!teamDomain || !audience) return null;
  const host = teamDomain.includes(".") ? teamDomain.replace(/^https:\/\//, "").replace(/\/+$/, "") : `${teamDomain}.cloudflareaccess.com`;
  const issuer = `https://${host}`;
  const keys = jwks ? createLocalJWKSet(jwks) : createRemoteJWKSet(new URL(`${issuer}/cdn-cgi/access/certs`));
  return { issuer, audience, keys };
}

/** The verified email of the request's Access assertion, lower-cased; null when absent or invalid. */
export async function accessEmail(request: Request, config: AccessConfig | null): Promise<string | null> {
  if (!config) return null;
  const jwt = request.headers.get(ACCESS_JWT_HEADER);
  if (!jwt || jwt.length > ACCESS_JWT_MAX_CHARS) return null;
  try {
    const { payload } = await jwtVerify(jwt, config.keys, {
      issuer: config.issuer,
      audience: config.audience,
      algorithms: ["RS256"],
      clockTolerance: ACCESS_CLOCK_TOLERANCE_S,
      requiredClaims: ["exp", "email"],
    });
    return typeof payload.email === "string" && payload.email.includes("@") ? payload.email.toLowerCase() : null;
  } catch {
    // A bad signature, wrong audience, expiry or unreachable key set: not an identity.
    return null;
  }
}
