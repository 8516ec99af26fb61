/** Share links and per-terminal grants against the real D1 of the test Worker. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { identifyBearer } from "../../edge/caller.ts";
import { createToken, createUser } from "../../edge/identities.ts";
import { accessFor, accessTo, grantsOn, putGrant } from "../../edge/identity-grants.ts";
import { putServer } from "../../edge/registry.ts";
import {
  createShareLink,
  identityForShare,
  listShareLinks,
  revokeShareLink,
  SHARE_LINKS_PER_TERMINAL_MAX,
  SHARE_TTL_DEFAULT_S,
  SHARE_TTL_MAX_S,
  shareTokenFromProtocols,
  shareTtl,
  shareUrl,
} from "../../edge/share-links.ts";
import { ApiError } from "../../shared/errors.ts";

const db = (env as unknown as { DB: D1Database }).DB;
let seq = 0;
const uid = (p: string) => `${p}${++seq}-${Math.random().toString(36).slice(2, 8)}`;

describe("share links", () => {
  it("open one terminal read-only until they expire or are revoked", async () => {
    const server = uid("srv");
    const now = Date.now();
    const link = await createShareLink(db, { serverId: server, terminalId: 5, createdBy: "admin-key", ttlS: 60 }, now);
    expect(link.token).toMatch(/^ets_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(link.expires_at).toBe(now + 60_000);
    const who = await identityForShare(db, link.token, now);
    expect(who).toEqual({ userId: `share:${link.id}`, role: "user", tokenId: null, readOnly: true, share: { id: link.id, serverId: server, terminalId: 5, expiresAt: now + 60_000 } });
    // The bearer path knows it too; the admin key is not needed.
    expect((await identifyBearer(db, link.token, undefined, now))?.share?.id).toBe(link.id);
    // Only its terminal, only read.
    expect(await accessFor(db, who!, server, 5)).toBe("read");
    expect(await accessFor(db, who!, server, 6)).toBeNull();
    expect(await accessFor(db, who!, server)).toBeNull();
    expect(await grantsOn(db, who!, uid("other"))).toBeNull();
    const grants = (await grantsOn(db, who!, server))!;
    expect(accessTo(grants, 5)).toBe("read");
    expect(accessTo(grants, null)).toBeNull();
    // Expired, tampered, revoked: nobody.
    expect(await identityForShare(db, link.token, now + 60_000)).toBeNull();
    expect(await identityForShare(db, link.token.slice(0, -1) + (link.token.endsWith("A") ? "B" : "A"), now)).toBeNull();
    expect((await listShareLinks(db, server, 5, now)).map((l) => l.id)).toEqual([link.id]);
    expect(await revokeShareLink(db, server, 6, link.id)).toBe(false); // another terminal's id does not revoke it
    expect(await revokeShareLink(db, server, 5, link.id)).toBe(true);
    expect(await identityForShare(db, link.token, now)).toBeNull();
    expect(await listShareLinks(db, server, 5, now)).toEqual([]);
  });

  it("are bounded per terminal and in lifetime", async () => {
    const server = uid("srv");
    const now = Date.now();
    for (let i = 0; i < SHARE_LINKS_PER_TERMINAL_MAX; i++) await createShareLink(db, { serverId: server, terminalId: 1, createdBy: "t", ttlS: 60 }, now);
    await expect(createShareLink(db, { serverId: server, terminalId: 1, createdBy: "t", ttlS: 60 }, now)).rejects.toMatchObject({ status: 429, code: "TOO_MANY_SHARE_LINKS" });
    // Expired links stop counting.
    await expect(createShareLink(db, { serverId: server, terminalId: 1, createdBy: "t", ttlS: 60 }, now + 61_000)).resolves.toMatchObject({ terminal_id: 1 });
    expect(shareTtl(undefined)).toBe(SHARE_TTL_DEFAULT_S);
    expect(shareTtl(SHARE_TTL_MAX_S)).toBe(SHARE_TTL_MAX_S);
    // A JSON integer only: Number() would have read true as 1 s and the strings and array as 60 s.
    for (const bad of [0, SHARE_TTL_MAX_S + 1, 1.5, "x", true, [60], " 60 ", "0x3c", "60"]) expect(() => shareTtl(bad)).toThrow(ApiError);
  });

  it("ride as a WebSocket subprotocol beside edgetty.share, and in a URL fragment", () => {
    const token = `ets_0123456789abcdef_${"a".repeat(43)}`;
    const ws = (protocols: string) => new Request("http://x/", { headers: { "Sec-WebSocket-Protocol": protocols } });
    expect(shareTokenFromProtocols(ws(`edgetty.share, ${token}`))).toBe(token);
    expect(shareTokenFromProtocols(ws(token))).toBeNull(); // not offered as a share
    expect(shareTokenFromProtocols(ws("edgetty.share, ett_0123456789abcdef_x"))).toBeNull();
    const url = new URL(shareUrl("https://edge.example", { server_id: "web-1", terminal_id: 9 }, token));
    expect(url.pathname).toBe("/share");
    expect(url.search).toBe("");
    expect(Object.fromEntries(new URLSearchParams(url.hash.slice(1)))).toEqual({ server: "web-1", terminal: "9", token });
  });
});

describe("per-terminal grants", () => {
  it("add to a server grant, reach only their terminal, and a read-only token caps them", async () => {
    const user = uid("u");
    const server = uid("srv");
    await createUser(db, { id: user });
    await putServer(db, { id: server, name: server, url: "", token: "t" });
    await putGrant(db, { server_id: server, principal_type: "user", principal_id: user, access: "read" });
    await putGrant(db, { server_id: server, terminal_id: 7, principal_type: "user", principal_id: user, access: "write" });
    const { token } = await createToken(db, user, {});
    const who = (await identifyBearer(db, token, undefined))!;
    const grants = (await grantsOn(db, who, server))!;
    expect(grants.server).toBe("read");
    expect([...grants.terminals]).toEqual([[7, "write"]]);
    expect(accessTo(grants, 7)).toBe("write");
    expect(accessTo(grants, 8)).toBe("read");
    const readOnly = (await grantsOn(db, { ...who, readOnly: true }, server))!;
    expect(accessTo(readOnly, 7)).toBe("read");

    const other = uid("srv");
    await putServer(db, { id: other, name: other, url: "", token: "t" });
    await putGrant(db, { server_id: other, terminal_id: 3, principal_type: "user", principal_id: user, access: "read" });
    const one = (await grantsOn(db, who, other))!;
    expect(one.server).toBeNull();
    expect(accessTo(one, 3)).toBe("read");
    expect(accessTo(one, 4)).toBeNull();
    expect(accessTo(one, null)).toBeNull();
  });
});
