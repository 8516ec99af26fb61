/**
 * The credential index (edge/live-sockets.ts) against the real D1 and Durable Objects of the
 * test Worker, and the proxy WebSocket's first-message reading (edge/ws-proxy.ts).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../../edge/env.ts";
import { createToken, createUser, revokeToken } from "../../edge/identities.ts";
import {
  closeCredentialSockets,
  credentialLive,
  credentialMatches,
  holdCredential,
  LIVE_HOLDERS_PER_CREDENTIAL_MAX,
  terminalHolder,
  type Credential,
} from "../../edge/live-sockets.ts";
import { firstMessageToken } from "../../edge/ws-proxy.ts";

const bindings = env as unknown as Env;
const db = bindings.DB;
let seq = 0;
const uid = (p: string) => `${p}${++seq}-${Math.random().toString(36).slice(2, 8)}`;

async function tokenCred(): Promise<Credential> {
  const user = uid("ls");
  await createUser(db, { id: user });
  const t = await createToken(db, user, {});
  return { id: `token:${t.id}`, userId: user, expiresAt: t.expires_at };
}

const rows = async (credential: string) =>
  (await db.prepare("SELECT holder FROM live_sockets WHERE credential = ? ORDER BY holder").bind(credential).all<{ holder: string }>()).results.map((r) => r.holder);

describe("the credential index", () => {
  it("holds a live credential and refuses one revoked before its row was written (the join/revoke race)", async () => {
    const cred = await tokenCred();
    expect(await holdCredential(bindings, cred, terminalHolder("s1", 7))).toBe("held");
    expect(await rows(cred.id)).toEqual(["terminal:s1:7"]);
    await revokeToken(db, cred.id.slice("token:".length));
    // Revoked between the joiner's auth and its row: the joiner's re-check refuses it, and its row goes.
    expect(await holdCredential(bindings, cred, terminalHolder("s1", 8))).toBe("revoked");
    expect(await rows(cred.id)).toEqual(["terminal:s1:7"]);
    expect(await credentialLive(db, cred)).toBe(false);
  });

  it("revoking reads, deletes and calls every holder, by credential or by user", async () => {
    const cred = await tokenCred();
    await holdCredential(bindings, cred, terminalHolder("s2", 1));
    await holdCredential(bindings, cred, terminalHolder("s2", 2));
    // The holders have no such sockets (nothing joined them): they close nothing, and the rows go.
    expect(await closeCredentialSockets(bindings, { userId: cred.userId }, { code: 4001, reason: "User disabled" })).toBe(0);
    expect(await rows(cred.id)).toEqual([]);
  });

  it("at its holder cap, drops the rows of holders that no longer hold the credential, then admits it", async () => {
    const cred = await tokenCred();
    const now = Date.now();
    const max = 8; // LIVE_HOLDERS_PER_CREDENTIAL_MAX in production; small here, each holder is a DO
    const insert = db.prepare("INSERT INTO live_sockets (credential, holder, user_id, expires_at, created_at) VALUES (?, ?, ?, ?, ?)");
    await db.batch(Array.from({ length: max }, (_, i) => insert.bind(cred.id, terminalHolder("s3", i + 1), cred.userId, cred.expiresAt, now)));
    // None of those TerminalDOs holds a socket of it: the sweep forgets them and admits this one.
    expect(LIVE_HOLDERS_PER_CREDENTIAL_MAX).toBeGreaterThan(max);
    expect(await holdCredential(bindings, cred, terminalHolder("s3", 9999), now, max)).toBe("held");
    expect(await rows(cred.id)).toEqual(["terminal:s3:9999"]);
  });

  it("matches a credential by id, or by its user (never the admin's session, whose user is empty)", () => {
    const cred = { id: "token:a", userId: "u", expiresAt: 1 };
    expect(credentialMatches(cred, { credential: "token:a" })).toBe(true);
    expect(credentialMatches(cred, { userId: "u" })).toBe(true);
    expect(credentialMatches(cred, { userId: "v" })).toBe(false);
    expect(credentialMatches({ ...cred, userId: "" }, { userId: "" })).toBe(false);
  });
});

describe("the proxy WebSocket's first message", () => {
  it("reads a token, other JSON, and payloads that are not a JSON text message", () => {
    expect(firstMessageToken(JSON.stringify({ type: "auth", token: "k", chat_id: "" }))).toBe("k");
    expect(firstMessageToken(JSON.stringify({ type: "auth" }))).toBe("");
    expect(firstMessageToken(JSON.stringify({ type: "resize", cols: 1, rows: 1 }))).toBeUndefined();
    expect(firstMessageToken("not json")).toBeNull();
    expect(firstMessageToken("[1]")).toBeNull();
    expect(firstMessageToken("null")).toBeNull();
    expect(firstMessageToken(new TextEncoder().encode('{"type":"auth","token":"k"}').buffer as ArrayBuffer)).toBeNull();
  });
});
