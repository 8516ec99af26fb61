/** Per-user API token format and hashing; Cloudflare Access assertions verified against a local key set; callers resolved from either. */
import { env } from "cloudflare:workers";
import { exportJWK, generateKeyPair, SignJWT, type JSONWebKeySet } from "jose";
import { describe, expect, it } from "vitest";
import { accessConfig, accessEmail, ACCESS_JWT_HEADER } from "../../edge/access-identity.ts";
import { apiTokenId, apiTokenMatches, generateApiToken } from "../../edge/api-tokens.ts";
import { sha256Hex } from "../../edge/auth.ts";
import { ADMIN_KEY_IDENTITY, actorOf, identifyAccess, identifyBearer } from "../../edge/caller.ts";
import { createToken, createUser, updateUser } from "../../edge/identities.ts";

describe("per-user API tokens", () => {
  it("are random, prefixed, and stored only as their SHA-256", async () => {
    const a = await generateApiToken();
    const b = await generateApiToken();
    expect(a.token).toMatch(/^ett_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(a.token).not.toBe(b.token);
    expect(a.hash).toBe(await sha256Hex(a.token));
    expect(a.hash).not.toContain(a.token.slice(21));
    expect(apiTokenId(a.token)).toBe(a.id);
  });

  it("match only their own hash", async () => {
    const a = await generateApiToken();
    const b = await generateApiToken();
    expect(await apiTokenMatches(a.token, a.hash)).toBe(true);
    expect(await apiTokenMatches(b.token, a.hash)).toBe(false);
    expect(await apiTokenMatches(a.token, "")).toBe(false);
  });

  it("refuse malformed tokens before any lookup", () => {
    for (const bad of ["", "ett_", "ett_0123456789abcdef_short", "xyz_0123456789abcdef_" + "a".repeat(43), "ett_0123456789ABCDEF_" + "a".repeat(43)]) {
      expect(apiTokenId(bad), bad).toBeNull();
    }
  });
});

describe("Cloudflare Access assertions", () => {
  const team = "myteam";
  const aud = "a".repeat(64);

  async function keys() {
    const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256" };
    return { privateKey, jwks: { keys: [jwk] } satisfies JSONWebKeySet };
  }

  function sign(privateKey: CryptoKey, claims: Record<string, unknown>, opts: { iss?: string; aud?: string; exp?: string | number } = {}) {
    return new SignJWT(claims)
      .setProtectedHeader({ alg: "RS256", kid: "k1" })
      .setIssuer(opts.iss ?? `https://${team}.cloudflareaccess.com`)
      .setAudience(opts.aud ?? aud)
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? "5m")
      .sign(privateKey);
  }

  function request(jwt: string | null): Request {
    return new Request("https://edge.example/api/v1/terminals/", { headers: jwt ? { [ACCESS_JWT_HEADER]: jwt } : {} });
  }

  it("is off unless both the team and the audience are configured", async () => {
    expect(accessConfig(undefined, aud)).toBeNull();
    expect(accessConfig(team, "")).toBeNull();
    expect(await accessEmail(request("x.y.z"), null)).toBeNull();
  });

  it("yields the lower-cased email of a valid assertion", async () => {
    const { privateKey, jwks } = await keys();
    const config = accessConfig(team, aud, jwks);
    expect(config?.issuer).toBe("https://myteam.cloudflareaccess.com");
    const jwt = await sign(privateKey, { email: "Alice@Example.com" });
    expect(await accessEmail(request(jwt), config)).toBe("alice@example.com");
  });

  it("refuses other keys, issuers, audiences, expired tokens and assertions without email", async () => {
    const { privateKey, jwks } = await keys();
    const other = await keys();
    const config = accessConfig(team, aud, jwks);
    const bad = [
      await sign(other.privateKey, { email: "a@b.c" }),
      await sign(privateKey, { email: "a@b.c" }, { iss: "https://evil.cloudflareaccess.com" }),
      await sign(privateKey, { email: "a@b.c" }, { aud: "other" }),
      await sign(privateKey, { email: "a@b.c" }, { exp: Math.floor(Date.now() / 1000) - 3600 }),
      await sign(privateKey, { sub: "x" }),
      "not-a-jwt",
    ];
    for (const jwt of bad) expect(await accessEmail(request(jwt), config)).toBeNull();
    expect(await accessEmail(request(null), config)).toBeNull();
  });
});

describe("callers", () => {
  it("are the admin key, a user's token, or an Access email mapped to an enabled user", async () => {
    const db = (env as unknown as { DB: D1Database }).DB;
    const id = `carol-${Math.random().toString(36).slice(2, 8)}`;
    await createUser(db, { id, email: `${id}@example.com` });
    const t = await createToken(db, id, {});
    expect(await identifyBearer(db, "the-key", "the-key")).toBe(ADMIN_KEY_IDENTITY);
    expect(actorOf(ADMIN_KEY_IDENTITY)).toBe("admin-key");
    const user = await identifyBearer(db, t.token, "the-key");
    expect(user).toMatchObject({ userId: id, role: "user" });
    expect(actorOf(user!)).toBe(`user:${id}`);
    expect(await identifyBearer(db, "wrong", "the-key")).toBeNull();
    expect(await identifyBearer(db, "the-key", undefined)).toBeNull();

    const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
    const config = accessConfig("team", "aud1", { keys: [{ ...(await exportJWK(publicKey)), kid: "k" }] });
    const jwt = await new SignJWT({ email: `${id}@EXAMPLE.com` }).setProtectedHeader({ alg: "RS256", kid: "k" }).setIssuer("https://team.cloudflareaccess.com").setAudience("aud1").setExpirationTime("1m").sign(privateKey);
    const req = new Request("https://e/", { headers: { [ACCESS_JWT_HEADER]: jwt } });
    expect(await identifyAccess(db, req, config)).toEqual({ userId: id, role: "user", tokenId: null, readOnly: false });
    await updateUser(db, id, { disabled: true });
    expect(await identifyAccess(db, req, config)).toBeNull();
    expect(await identifyBearer(db, t.token, "the-key")).toBeNull();
  });
});
