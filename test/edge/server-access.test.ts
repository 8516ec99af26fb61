/** Which servers a caller may use and the proxy's registry-backed lookups, in workerd with real D1 and HostDOs. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../../edge/env.ts";
import { createGroup, addMember, createUser, type Identity } from "../../edge/identities.ts";
import { putGrant } from "../../edge/identity-grants.ts";
import { checkProxyRequest } from "../../edge/proxy-checks.ts";
import { putServer } from "../../edge/registry.ts";
import { getAccessServer, proxyLookups, serversFor, setServerEnabled } from "../../edge/server-access.ts";

const e = env as unknown as Env;
const rnd = () => Math.random().toString(36).slice(2, 8);

describe("server access", () => {
  it("lists every server for admins and only enabled, granted ones for users", async () => {
    const [granted, other, off, user, group] = [`g-${rnd()}`, `o-${rnd()}`, `d-${rnd()}`, `u-${rnd()}`, `t-${rnd()}`];
    for (const id of [granted, other, off]) await putServer(e.DB, { id, name: id, url: "", token: "x".repeat(32) });
    await createUser(e.DB, { id: user });
    await createGroup(e.DB, { id: group });
    await addMember(e.DB, group, user);
    await putGrant(e.DB, { server_id: granted, principal_type: "group", principal_id: group, access: "read" });
    await putGrant(e.DB, { server_id: off, principal_type: "user", principal_id: user, access: "write" });
    await setServerEnabled(e.DB, off, false);
    const caller: Identity = { userId: user, role: "user", tokenId: null, readOnly: false };
    expect((await serversFor(e.DB, caller)).map((s) => s.id)).toEqual([granted]);
    const all = (await serversFor(e.DB, { ...caller, role: "admin" })).map((s) => s.id);
    expect(all).toEqual(expect.arrayContaining([granted, other, off]));
    expect(await getAccessServer(e.DB, off)).toMatchObject({ enabled: false });
    expect(await getAccessServer(e.DB, "Not-An-Id")).toBeNull();
  });

  it("runs the proxy's checks against the registry: unknown, disabled, denied, then an offline agent", async () => {
    const [up, off, user] = [`p-${rnd()}`, `q-${rnd()}`, `u-${rnd()}`];
    for (const id of [up, off]) await putServer(e.DB, { id, name: id, url: "", token: "x".repeat(32) });
    await setServerEnabled(e.DB, off, false);
    await createUser(e.DB, { id: user });
    const caller: Identity = { userId: user, role: "user", tokenId: null, readOnly: false };
    const run = (id: string) => checkProxyRequest(proxyLookups(e, caller), id, "api/config", "GET");
    expect(await run(`n-${rnd()}`)).toMatchObject({ status: 404 });
    expect(await run(off)).toMatchObject({ status: 403, error: "Terminal server disabled" });
    expect(await run(up)).toMatchObject({ status: 403, error: "Access denied" });
    await putGrant(e.DB, { server_id: up, principal_type: "user", principal_id: user, access: "write" });
    // No agent has connected for this server.
    expect(await run(up)).toMatchObject({ status: 503 });
  });
});
