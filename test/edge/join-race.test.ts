/**
 * A client that joins a terminal while what let it in is taken away: its auth passed in the
 * Worker, then the share link was revoked, the grant deleted or the server disabled, and only then
 * did its join reach the TerminalDO. The revocation's sweep found no socket to close, so the join
 * must see the change itself (terminal-admission.ts `confirm`). Real TerminalDO, D1 and sockets in
 * workerd; the agent is played by the test.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { terminalStub } from "../../edge/addresses.ts";
import type { Env } from "../../edge/env.ts";
import { createToken, createUser } from "../../edge/identities.ts";
import { deleteGrant, putGrant } from "../../edge/identity-grants.ts";
import { putServer } from "../../edge/registry.ts";
import { setServerEnabled } from "../../edge/server-access.ts";
import { createShareLink, revokeShareLink } from "../../edge/share-links.ts";
import { decodeServerFrame, encodeClientFrame } from "../../shared/links/client.ts";
import { collect, withAgent } from "./worker-client.ts";

const bindings = env as unknown as Env;
const db = bindings.DB;
/** How long a wait on one socket may take, in ms (within the edge project's 5 s per test). */
const JOIN_WAIT_MS = 2_000;
let seq = 0;
const uid = (p: string) => `${p}${++seq}-${Math.random().toString(36).slice(2, 8)}`;

/** A registered server with terminal 1 live on it (a test-played agent). */
async function terminal() {
  const server = uid("jr");
  await putServer(db, { id: server, name: server, url: "", token: "t".repeat(16) });
  const stub = terminalStub(bindings, server, 1);
  const { waiters } = await withAgent(stub);
  /** A join as the Worker makes it once the caller's auth passed, with the credential that can end it. */
  const join = async (query: Record<string, string>) => {
    const res = await stub.fetch(`https://do/client?${new URLSearchParams(query)}`, { headers: { Upgrade: "websocket" } });
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    let closed: { code: number; reason: string } | null = null;
    ws.addEventListener("close", (e) => {
      closed = { code: e.code, reason: e.reason };
      waiters.notify();
    });
    const got = collect(ws, waiters);
    const pongs = () => got.filter((b) => decodeServerFrame(b).t === "pong").length;
    /** Resolves with the close, once it comes. */
    const close = async () => {
      await waiters.until(() => closed !== null, "the join's close", JOIN_WAIT_MS);
      return closed;
    };
    /** Resolves once a PING is answered: the socket is open and served. */
    const alive = async () => {
      const before = pongs();
      ws.send(encodeClientFrame({ t: "ping", data: new Uint8Array(1) }));
      await waiters.until(() => pongs() > before || closed !== null, "a PONG", JOIN_WAIT_MS);
      return closed === null;
    };
    return { close, alive };
  };
  return { server, join };
}

describe("a join that arrives after its access was taken away", () => {
  it("by a share link revoked meanwhile is closed 4001; one still live stays", async () => {
    const { server, join } = await terminal();
    const live = await createShareLink(db, { serverId: server, terminalId: 1, createdBy: "admin-key", ttlS: 60 });
    const staying = await join({ readonly: "1", credential: `share:${live.id}`, until: String(live.expires_at) });
    expect(await staying.alive()).toBe(true);

    const revoked = await createShareLink(db, { serverId: server, terminalId: 1, createdBy: "admin-key", ttlS: 60 });
    expect(await revokeShareLink(db, server, 1, revoked.id)).toBe(true);
    const late = await join({ readonly: "1", credential: `share:${revoked.id}`, until: String(revoked.expires_at) });
    expect(await late.close()).toEqual({ code: 4001, reason: "share link revoked" });
    expect(await staying.alive()).toBe(true);
  });

  it("by a share link whose server was disabled meanwhile is closed 4001", async () => {
    const { server, join } = await terminal();
    const link = await createShareLink(db, { serverId: server, terminalId: 1, createdBy: "admin-key", ttlS: 60 });
    await setServerEnabled(db, server, false);
    const late = await join({ readonly: "1", credential: `share:${link.id}`, until: String(link.expires_at) });
    expect(await late.close()).toEqual({ code: 4001, reason: "Terminal server disabled" });
  });

  it("by a user whose grant was deleted meanwhile is closed 4003 Access denied; lowered to read, a writer is closed 4003 Read-only access", async () => {
    const { server, join } = await terminal();
    const user = uid("u");
    await createUser(db, { id: user });
    const token = await createToken(db, user, {});
    const cred = { credential: `token:${token.id}`, until: String(token.expires_at), user };
    const grant = { server_id: server, principal_type: "user", principal_id: user };
    await putGrant(db, { ...grant, access: "write" });
    const writer = await join({ readonly: "0", ...cred });
    expect(await writer.alive()).toBe(true);

    await putGrant(db, { ...grant, access: "read" });
    const lateWriter = await join({ readonly: "0", ...cred });
    expect(await lateWriter.close()).toEqual({ code: 4003, reason: "Read-only access" });
    const reader = await join({ readonly: "1", ...cred });
    expect(await reader.alive()).toBe(true);

    expect(await deleteGrant(db, { ...grant, terminal_id: 0 })).toBe(true);
    const late = await join({ readonly: "1", ...cred });
    expect(await late.close()).toEqual({ code: 4003, reason: "Access denied" });
  });
});
