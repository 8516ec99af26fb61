/**
 * Who is calling, as an {@link Identity}: the admin API key, a per-user API token (`ett_…`), or
 * — behind Cloudflare Access, when configured — the `Cf-Access-Jwt-Assertion` email mapped to an
 * enabled user. Every credential is checked against D1 on each request, so revocation, expiry,
 * a disabled user or a changed role take effect on the next one.
 */
import { accessConfig, accessEmail, type AccessConfig } from "./access-identity.ts";
import { apiTokenId } from "./api-tokens.ts";
import { equalsApiKey } from "./auth.ts";
import { identityForToken, userByEmail, type Identity } from "./identities.ts";
import { identityForShare, shareTokenId } from "./share-links.ts";

/** The identity of the admin API key (no user row behind it). */
export const ADMIN_KEY_IDENTITY: Identity = Object.freeze({ userId: "admin", role: "admin", tokenId: null, readOnly: false });

/** The audit log's name for a caller. */
export function actorOf(identity: Identity): string {
  if (identity.share) return identity.userId; // `share:<id>`
  return identity === ADMIN_KEY_IDENTITY ? "admin-key" : `user:${identity.userId}`;
}

/**
 * The identity behind a bearer token: a per-user token or a share link's token by its D1 row,
 * else the admin key (compared in constant time); null when none matches.
 */
export async function identifyBearer(db: D1Database, token: string, adminKey: string | undefined, now = Date.now()): Promise<Identity | null> {
  if (apiTokenId(token) !== null) return identityForToken(db, token, now);
  if (shareTokenId(token) !== null) return identityForShare(db, token, now);
  if (adminKey && (await equalsApiKey(token, adminKey))) return ADMIN_KEY_IDENTITY;
  return null;
}

/** The Access settings of a Worker's environment. */
export interface AccessEnv {
  /** Team name or domain (`myteam` / `myteam.cloudflareaccess.com`); with the AUD, turns Access identities on. */
  EDGETTY_ACCESS_TEAM_DOMAIN?: string;
  /** The Access application's AUD tag. */
  EDGETTY_ACCESS_AUD?: string;
}

let cached: { key: string; config: AccessConfig | null } | null = null;

/** The Access config for this environment, kept per isolate (so the team's keys are cached). */
export function accessConfigFor(env: AccessEnv): AccessConfig | null {
  const key = `${env.EDGETTY_ACCESS_TEAM_DOMAIN ?? ""}|${env.EDGETTY_ACCESS_AUD ?? ""}`;
  if (cached?.key !== key) cached = { key, config: accessConfig(env.EDGETTY_ACCESS_TEAM_DOMAIN, env.EDGETTY_ACCESS_AUD) };
  return cached.config;
}

/** The enabled user whose email a valid Access assertion carries, or null. */
export async function identifyAccess(db: D1Database, request: Request, config: AccessConfig | null): Promise<Identity | null> {
  const email = await accessEmail(request, config);
  if (!email) return null;
  const user = await userByEmail(db, email);
  return user ? { userId: user.id, role: user.role, tokenId: null, readOnly: false } : null;
}
