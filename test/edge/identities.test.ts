/** Users, groups, tokens, grants and the audit log against the real D1 of the test Worker. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { listAudit, pruneAudit, ReadRepeats, recordAudit } from "../../edge/audit.ts";
import {
  addMember,
  createGroup,
  createToken,
  createUser,
  deleteGroup,
  deleteUser,
  identityForToken,
  listGroups,
  listTokens,
  removeMember,
  revokeToken,
  updateUser,
  userByEmail,
} from "../../edge/identities.ts";
import { accessFor, deleteGrant, grantedServerIds, putGrant } from "../../edge/identity-grants.ts";
import { deleteServer, putServer } from "../../edge/registry.ts";
import { ApiError } from "../../shared/errors.ts";

const db = (env as unknown as { DB: D1Database }).DB;
let seq = 0;
/** A fresh id per call, so tests never see each other's rows. */
const uid = (p: string) => `${p}${++seq}-${Math.random().toString(36).slice(2, 8)}`;

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (error) {
    if (error instanceof ApiError) return `${error.status} ${error.code}`;
    throw error;
  }
  return "no error";
}

describe("identities registry", () => {
  it("creates users with unique ids and emails and refuses junk", async () => {
    const id = uid("u");
    const user = await createUser(db, { id, email: `${id}@Example.com` });
    expect(user).toMatchObject({ id, name: id, email: `${id}@example.com`, role: "user", disabled: false });
    expect(await codeOf(createUser(db, { id }))).toBe("409 USER_EXISTS");
    expect(await codeOf(createUser(db, { id: uid("v"), email: `${id}@example.com` }))).toBe("409 USER_EXISTS");
    for (const bad of [{ id: "Bad" }, { id: "" }, { id: uid("w"), role: "root" }, { id: uid("w"), email: "nope" }, { id: uid("w"), name: "x".repeat(201) }]) {
      expect(await codeOf(createUser(db, bad)), JSON.stringify(bad)).toBe("400 INVALID_PARAMETERS");
    }
    expect((await userByEmail(db, `${id.toUpperCase()}@EXAMPLE.COM`))?.id).toBe(id);
    await updateUser(db, id, { disabled: true });
    expect(await userByEmail(db, `${id}@example.com`)).toBeNull();
  });

  it("authenticates a token as its user until it is revoked, expires or the user is disabled", async () => {
    const id = uid("u");
    await createUser(db, { id });
    const t = await createToken(db, id, { name: "laptop", ttl_s: 60 }, 1_000);
    expect(t.token).toMatch(/^ett_/);
    expect(await identityForToken(db, t.token, 2_000)).toEqual({ userId: id, role: "user", tokenId: t.id, readOnly: false, expiresAt: 61_000 });
    // Listed without secrets, with last use recorded.
    const [listed] = await listTokens(db, id);
    expect(listed).toMatchObject({ id: t.id, name: "laptop", last_used_at: 2_000 });
    expect(JSON.stringify(listed)).not.toContain(t.token.slice(21));
    // Expiry: the next request after expires_at is refused.
    expect(await identityForToken(db, t.token, 1_000 + 60_000)).toBeNull();
    const t2 = await createToken(db, id, {});
    await updateUser(db, id, { disabled: true });
    expect(await identityForToken(db, t2.token)).toBeNull();
    await updateUser(db, id, { disabled: false });
    expect(await identityForToken(db, t2.token)).not.toBeNull();
    expect(await revokeToken(db, t2.id)).toBe(true);
    expect(await identityForToken(db, t2.token)).toBeNull();
    // A forged secret for a real id fails.
    const t3 = await createToken(db, id, {});
    expect(await identityForToken(db, t3.token.slice(0, -4) + "AAAA")).toBeNull();
  });

  it("never lets a token outrank its user", async () => {
    const id = uid("u");
    await createUser(db, { id });
    expect(await codeOf(createToken(db, id, { role: "admin" }))).toBe("400 INVALID_PARAMETERS");
    expect(await codeOf(createToken(db, id, { ttl_s: 0 }))).toBe("400 INVALID_PARAMETERS");
    expect(await codeOf(createToken(db, id, { scopes: ["everything"] }))).toBe("400 INVALID_PARAMETERS");
    const admin = uid("a");
    await createUser(db, { id: admin, role: "admin" });
    const t = await createToken(db, admin, {});
    expect((await identityForToken(db, t.token))?.role).toBe("admin");
    await updateUser(db, admin, { role: "user" });
    expect((await identityForToken(db, t.token))?.role).toBe("user");
  });

  it("resolves access from user and group grants, per server and per terminal", async () => {
    const [alice, bob, team, srv, other] = [uid("alice"), uid("bob"), uid("team"), uid("s"), uid("s")];
    await createUser(db, { id: alice });
    await createUser(db, { id: bob });
    await createGroup(db, { id: team });
    await addMember(db, team, alice);
    for (const id of [srv, other]) await putServer(db, { id, name: id, url: "", token: `t-${id}` });
    const a = { userId: alice, role: "user" as const, tokenId: null, readOnly: false };
    const b = { userId: bob, role: "user" as const, tokenId: null, readOnly: false };
    expect(await accessFor(db, a, srv)).toBeNull();
    await putGrant(db, { server_id: srv, principal_type: "group", principal_id: team, access: "read" });
    expect(await accessFor(db, a, srv)).toBe("read");
    expect(await accessFor(db, b, srv)).toBeNull();
    await putGrant(db, { server_id: srv, principal_type: "user", principal_id: alice, access: "write" });
    expect(await accessFor(db, a, srv)).toBe("write");
    expect(await accessFor(db, { ...a, readOnly: true }, srv)).toBe("read");
    // A grant on one terminal reaches that terminal only.
    await putGrant(db, { server_id: other, terminal_id: 7, principal_type: "user", principal_id: bob, access: "write" });
    expect(await accessFor(db, b, other, 7)).toBe("write");
    expect(await accessFor(db, b, other, 8)).toBeNull();
    expect(await accessFor(db, b, other)).toBeNull();
    expect([...(await grantedServerIds(db, b))]).toEqual([other]);
    expect(await accessFor(db, { userId: "nobody", role: "admin", tokenId: null, readOnly: false }, other)).toBe("write");
    // Leaving the group, deleting grants and deleting the group all take access away.
    expect(await deleteGrant(db, { server_id: srv, terminal_id: 0, principal_type: "user", principal_id: alice })).toBe(true);
    expect(await accessFor(db, a, srv)).toBe("read");
    await removeMember(db, team, alice);
    expect(await accessFor(db, a, srv)).toBeNull();
    await addMember(db, team, alice);
    expect((await listGroups(db)).find((g) => g.id === team)?.members).toEqual([alice]);
    await deleteGroup(db, team);
    expect(await accessFor(db, a, srv)).toBeNull();
    await deleteUser(db, bob);
    expect(await accessFor(db, b, other, 7)).toBeNull();
  });

  it("refuses grants to unknown principals and malformed grants", async () => {
    expect(await codeOf(putGrant(db, { server_id: "s", principal_type: "user", principal_id: uid("ghost") }))).toBe("404 USER_NOT_FOUND");
    expect(await codeOf(putGrant(db, { server_id: "S!", principal_type: "user", principal_id: "x" }))).toBe("400 INVALID_SERVER_ID");
    expect(await codeOf(putGrant(db, { server_id: "s", principal_type: "role", principal_id: "x" }))).toBe("400 INVALID_PARAMETERS");
    expect(await codeOf(putGrant(db, { server_id: "s", terminal_id: 70000, principal_type: "user", principal_id: "x" }))).toBe("400 INVALID_TERMINAL_ID");
    // Number() read each of these as 0 (the whole server) or a terminal the caller did not name.
    for (const terminal_id of ["", [], false, true, "abc", "1e1", "0x10", 1.5]) {
      expect(await codeOf(putGrant(db, { server_id: "s", terminal_id, principal_type: "user", principal_id: "x" })), JSON.stringify(terminal_id)).toBe("400 INVALID_TERMINAL_ID");
    }
    expect(await codeOf(addMember(db, uid("g"), uid("u")))).toBe("404 USER_NOT_FOUND");
  });

  it("grants only on registered servers, and forgets a server's grants and share links with it", async () => {
    const [user, srv] = [uid("u"), uid("s")];
    await createUser(db, { id: user });
    // A grant waiting for an id would give a host registered later to its grantee.
    expect(await codeOf(putGrant(db, { server_id: srv, principal_type: "user", principal_id: user }))).toBe("404 SERVER_NOT_FOUND");
    await putServer(db, { id: srv, name: srv, url: "", token: "t1" });
    await putGrant(db, { server_id: srv, principal_type: "user", principal_id: user, access: "write" });
    const link = uid("l");
    await db.prepare("INSERT INTO share_links (id, hash, server_id, terminal_id, created_by, created_at, expires_at) VALUES (?, 'h', ?, 7, 'admin', 0, 9e15)").bind(link, srv).run();
    // The links deleted are answered: their open sockets are closed by the route.
    expect(await deleteServer(db, srv)).toEqual({ shares: [{ id: link, terminal_id: 7 }] });
    await putServer(db, { id: srv, name: srv, url: "", token: "t2" });
    expect(await accessFor(db, { userId: user, role: "user", tokenId: null, readOnly: false }, srv)).toBeNull();
    expect(await db.prepare("SELECT COUNT(*) AS n FROM share_links WHERE server_id = ?").bind(srv).first("n")).toBe(0);
    expect(await deleteServer(db, srv)).toEqual({ shares: [] });
    expect(await deleteServer(db, srv)).toBeNull();
  });
});

describe("audit log", () => {
  it("pages newest first and prunes by age and count", async () => {
    const actor = uid("user:");
    for (let i = 0; i < 5; i++) await recordAudit(db, { actor, action: "proxy", server_id: "s", detail: `GET /x${i}`, ip: "10.0.0.1" }, 1_000 + i);
    const mine = async () => (await listAudit(db, { limit: 500 })).events.filter((e) => e.actor === actor);
    expect((await mine()).map((e) => e.detail)).toEqual(["GET /x4", "GET /x3", "GET /x2", "GET /x1", "GET /x0"]);
    const first = await listAudit(db, { limit: 2 });
    expect(first.events).toHaveLength(2);
    const second = await listAudit(db, { limit: 2, before: first.next_before! });
    expect(second.events[0]!.id).toBeLessThan(first.events[1]!.id);
    // Age: everything at t ≈ 1 s is older than 90 days at "now".
    await pruneAudit(db, Date.now());
    expect(await mine()).toEqual([]);
    // Count: only the newest N survive.
    for (let i = 0; i < 4; i++) await recordAudit(db, { actor, action: "execute", detail: `${i}` });
    await pruneAudit(db, Date.now(), 2);
    expect((await listAudit(db, { limit: 500 })).events.map((e) => e.detail)).toEqual(["3", "2"]);
  });

  it("lets a repeated read through once per window, and remembers a bounded number of reads", () => {
    const repeats = new ReadRepeats(1_000, 2);
    expect([repeats.shouldRecord("a", 0), repeats.shouldRecord("a", 999), repeats.shouldRecord("a", 1_000)]).toEqual([true, false, true]);
    // Past two keys the oldest remembered ("a", last recorded at 1 s) is forgotten: recorded again.
    expect([repeats.shouldRecord("b", 1_100), repeats.shouldRecord("c", 1_200), repeats.shouldRecord("b", 1_300)]).toEqual([true, true, false]);
    expect(repeats.shouldRecord("a", 1_400)).toBe(true);
  });
});
