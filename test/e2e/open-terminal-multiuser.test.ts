/**
 * Multi-user mode of the Open Terminal API (EDGETTY_OT_MULTI_USER, worker/agent/os-users.ts):
 * with the agent as root, each `X-User-Id` gets an OS account of its own, created on first use,
 * and its commands, terminals and file operations run as that account. Two users get distinct
 * uids, cannot read each other's files (by path, `..` or a symlink), and cannot see each other's
 * processes or terminals; a caller without the header is the single user (root here).
 *
 * Needs root (CI runs as root). Accounts carry a prefix unique to this run and are deleted after.
 */
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { accountName } from "../../worker/agent/os-users.ts";
import { RawClient } from "../support/raw-client.ts";
import { useStack } from "../support/stack.ts";

const isRoot = process.getuid?.() === 0;
/** Test-only account prefix: every account this file makes starts with it (and is removed). */
const PREFIX = `ettest${randomBytes(3).toString("hex")}_`;

/** Accounts whose name starts with PREFIX, from /etc/passwd. */
function testAccounts(): string[] {
  return readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .map((line) => line.split(":")[0]!)
    .filter((name) => name.startsWith(PREFIX));
}

// Registered before useStack's hooks: after-hooks run in reverse order, so this one runs once the
// stack (and every process of the accounts) has stopped.
afterAll(() => {
  for (const name of testAccounts()) spawnSync("userdel", ["-r", "-f", name], { stdio: "ignore" });
  expect(testAccounts()).toEqual([]);
});

// Multi-user mode needs root: without it the agent refuses to start, so there is no stack.
const stack = isRoot ? useStack({ agentEnv: { EDGETTY_OT_MULTI_USER: "true", EDGETTY_OT_USER_PREFIX: PREFIX } }) : (null as never);

const as = (user: string, extra: Record<string, string> = {}) => ({ "X-User-Id": user, ...extra });

async function call(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await stack.api(path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* raw bytes */
  }
  return { status: res.status, body: parsed };
}

/** Runs `command` as the user (or the single user with `{}`) and returns its output, trimmed. */
async function run(headers: Record<string, string>, command: string): Promise<string> {
  const res = await call("POST", "/execute?wait=30", headers, { command });
  expect(res.status).toBe(200);
  expect(res.body.status).toBe("done");
  return (res.body.output as { data: string }[]).map((o) => o.data).join("").replace(/\r\n/g, "\n").trim();
}

const nameOf = (userId: string) => accountName(userId, createHash("sha256").update(userId).digest("hex"), PREFIX);

describe.skipIf(!isRoot)("multi-user mode", () => {
  const alice = "alice@example.com";
  const bob = "bob-7f3e";

  it("gives each X-User-Id its own OS account, and root to a caller without one", async () => {
    const [a, b, single] = await Promise.all([run(as(alice), "id -u; id -un; echo $HOME; pwd"), run(as(bob), "id -u; id -un; echo $HOME; pwd"), run({}, "id -u")]);
    const [aUid, aName, aHome, aCwd] = a.split("\n");
    const [bUid, bName, bHome] = b.split("\n");
    expect(aName).toBe(nameOf(alice));
    expect(bName).toBe(nameOf(bob));
    // The reference's rule: prefix, the id's letters and digits (cut to fit 32), `_`, 8 hex of its SHA-256.
    expect(aName).toMatch(new RegExp(`^${PREFIX}aliceexamp_[0-9a-f]{8}$`));
    expect(Number(aUid)).toBeGreaterThanOrEqual(1000);
    expect(Number(bUid)).toBeGreaterThanOrEqual(1000);
    expect(aUid).not.toBe(bUid);
    expect(aHome).toBe(`/home/${aName}`);
    expect(aCwd).toBe(aHome);
    expect(bHome).toBe(`/home/${bName}`);
    expect(single).toBe("0");
    // An empty X-User-Id is no user (the edge gives both the same scope).
    expect(await run(as(""), "id -u")).toBe("0");
    // Only the owner may enter a home; the account has no root groups.
    expect(await run(as(alice), "stat -c %a ~; id -G")).toBe(`700\n${(await run(as(alice), "id -g"))}`);
  });

  it("writes files as the account, and keeps each user out of the other's files", async () => {
    const aHome = `/home/${nameOf(alice)}`;
    expect((await call("POST", "/files/write", as(alice), { path: "secret.txt", content: "alice's secret\n" })).body).toEqual({ path: `${aHome}/secret.txt`, size: 15 });
    expect(await run(as(alice), "stat -c %U secret.txt")).toBe(nameOf(alice));
    expect((await call("GET", "/files/read?path=secret.txt", as(alice))).body).toMatchObject({ content: "alice's secret\n" });

    // By absolute path and by `..`: refused as the reference refuses another user's home.
    for (const path of [`${aHome}/secret.txt`, `../${nameOf(alice)}/secret.txt`]) {
      const res = await call("GET", `/files/read?path=${encodeURIComponent(path)}`, as(bob));
      expect(res.status).toBe(403);
      expect(res.body.detail).toBe(`Access denied: ${aHome}/secret.txt belongs to another user`);
    }
    // Through a symlink in bob's own home: the kernel refuses bob's file server (the file cannot
    // even be seen, so read and view answer "not found", as the reference's isfile() does).
    await run(as(bob), `ln -s ${aHome}/secret.txt link.txt && ln -s ${aHome} alice-home`);
    for (const path of ["link.txt", "alice-home/secret.txt"]) {
      const res = await call("GET", `/files/read?path=${path}`, as(bob));
      expect(res).toEqual({ status: 404, body: { detail: "File not found", code: "NOT_FOUND" } });
    }
    expect((await call("GET", "/files/view?path=link.txt", as(bob))).status).toBe(404);
    expect((await call("GET", "/files/list?directory=alice-home", as(bob))).status).toBe(403);
    expect((await call("GET", "/files/grep?query=secret&path=alice-home", as(bob))).body.matches ?? []).toEqual([]);
    expect((await call("POST", "/files/archive", as(bob), { paths: ["link.txt"] })).status).toBe(403);
    // A file bob cannot read inside a folder cuts the archive short (no zip end record), and
    // nothing else breaks (the file server lives on).
    await run(as(bob), "mkdir -p locked && echo x > locked/f && chmod 000 locked/f");
    const cut = await stack.api("/files/archive", { method: "POST", headers: { ...as(bob), "Content-Type": "application/json" }, body: JSON.stringify({ paths: ["locked"] }) });
    const got = await cut.arrayBuffer().then((b) => Buffer.from(b), () => Buffer.alloc(0));
    expect(got.includes(Buffer.from([0x50, 0x4b, 0x05, 0x06]))).toBe(false);
    expect((await call("GET", "/files/list", as(bob))).status).toBe(200);
    const planted = await call("POST", "/files/write", as(bob), { path: "alice-home/planted.txt", content: "x" });
    expect(planted.status).toBe(403);
    expect(planted.body.detail).toMatch(/^\[Errno 13\] Permission denied/);
    expect((await call("POST", "/files/move", as(bob), { source: "alice-home/secret.txt", destination: "stolen.txt" })).status).not.toBe(200);
    expect((await call("DELETE", "/files/delete?path=link.txt", as(bob))).body).toEqual({ path: `/home/${nameOf(bob)}/link.txt`, type: "file" });
    // Bob's commands meet the kernel too.
    expect(await run(as(bob), `cat ${aHome}/secret.txt 2>&1; echo "exit $?"`)).toMatch(/Permission denied\nexit 1$/);
    // A command cannot be sent into another user's home.
    expect((await call("POST", "/execute?wait=5", as(bob), { command: "pwd", cwd: aHome })).status).toBe(403);
    // The single user (root, no header) reaches everything, as in single-user mode.
    expect((await call("GET", `/files/read?path=${encodeURIComponent(`${aHome}/secret.txt`)}`, {})).body).toMatchObject({ content: "alice's secret\n" });
  });

  it("keeps each user's processes and terminals to themselves, and runs terminals as the account", async () => {
    const started = await call("POST", "/execute", as(alice), { command: "sleep 30" });
    const id = started.body.id as string;
    expect((await call("GET", "/execute", as(bob))).body.map((p: { id: string }) => p.id)).not.toContain(id);
    expect((await call("GET", `/execute/${id}/status`, as(bob))).status).toBe(404);
    expect((await call("DELETE", `/execute/${id}?force=true`, as(alice))).body).toEqual({ status: "killed" });

    const made = await call("POST", "/api/terminals", as(alice, { "X-Session-Id": "mu-chat" }));
    expect(made.status).toBe(200);
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${made.body.pid}/status`, "utf8"))![1];
    expect(uid).toBe(await run(as(alice), "id -u"));
    expect((await call("GET", "/api/terminals", as(bob))).body).toEqual([]);
    expect((await call("GET", "/api/terminals/mu-chat", as(bob))).status).toBe(404);
    const term = stack.track(await RawClient.connect(`${stack.url}/api/terminals/mu-chat?user_id=${encodeURIComponent(alice)}`, stack.apiKey));
    term.type("echo me=$(id -un)\r");
    await term.waitForText(`me=${nameOf(alice)}`);
    expect((await call("DELETE", "/api/terminals/mu-chat", as(alice))).body).toEqual({ status: "deleted" });
  });

  it("streams uploads, downloads and archives through the account's file server, owned by the account", async () => {
    const aHome = `/home/${nameOf(alice)}`;
    const data = randomBytes(6 << 20); // 6 MiB: several tunnel windows each way
    const form = new FormData();
    form.append("file", new Blob([data]), "blob.bin");
    const up = await stack.api("/files/upload?directory=uploads", { method: "POST", headers: as(alice), body: form });
    expect(await up.json()).toEqual({ path: `${aHome}/uploads/blob.bin`, size: data.length });
    expect(await run(as(alice), "stat -c %U uploads/blob.bin")).toBe(nameOf(alice));
    const down = await stack.api("/files/view?path=uploads/blob.bin", { headers: as(alice) });
    const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
    expect(sha(new Uint8Array(await down.arrayBuffer()))).toBe(sha(data));
    const zip = await stack.api("/files/archive", { method: "POST", headers: { ...as(alice), "Content-Type": "application/json" }, body: JSON.stringify({ paths: ["uploads"] }) });
    expect(zip.status).toBe(200);
    expect((await zip.arrayBuffer()).byteLength).toBeGreaterThan(data.length);
    // Bob cannot upload into alice's home.
    const form2 = new FormData();
    form2.append("file", new Blob(["x"]), "x.txt");
    expect((await stack.api(`/files/upload?directory=${aHome}`, { method: "POST", headers: as(bob), body: form2 })).status).toBe(403);
  });

  it("keeps a session's working directory per user, checked as the account", async () => {
    const aHome = `/home/${nameOf(alice)}`;
    expect((await call("POST", "/files/mkdir", as(alice), { path: "proj" })).body).toEqual({ path: `${aHome}/proj` });
    const chat = { "X-Session-Id": "mu-1" };
    expect((await call("POST", "/files/cwd", as(alice, chat), { path: "proj" })).body).toEqual({ cwd: `${aHome}/proj` });
    expect((await call("GET", "/files/cwd", as(alice, chat))).body).toEqual({ cwd: `${aHome}/proj`, home: aHome, root: { path: aHome, label: "Home" } });
    expect(await run(as(alice, chat), "pwd")).toBe(`${aHome}/proj`);
    expect((await call("GET", "/files/cwd", as(bob, chat))).body).toEqual({ cwd: `/home/${nameOf(bob)}`, home: `/home/${nameOf(bob)}`, root: { path: `/home/${nameOf(bob)}`, label: "Home" } });
    expect((await call("POST", "/files/cwd", as(bob, chat), { path: aHome })).status).toBe(403);
    // Through bob's symlink the folder exists (stat needs no access to it), but bob cannot use it.
    expect((await call("POST", "/files/cwd", as(bob, chat), { path: "alice-home" })).status).toBe(200);
    expect((await call("GET", "/files/list", as(bob, chat))).status).toBe(403);
    expect((await call("POST", "/execute?wait=5", as(bob, chat), { command: "ls" })).body.output.map((o: { data: string }) => o.data).join("")).toMatch(/Permission denied/);
  });

  it("answers HEAD on file routes as the account, like GET without a body", async () => {
    const res = await stack.api("/files/view?path=secret.txt", { method: "HEAD", headers: as(alice) });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
    expect((await stack.api("/files/view?path=secret.txt", { method: "HEAD", headers: as(bob) })).status).toBe(404);
  });

  it("refuses an account name it did not create (an existing account is never acted as)", async () => {
    const squatted = "mallory";
    const name = nameOf(squatted);
    expect(spawnSync("useradd", ["-M", "-s", "/usr/sbin/nologin", name]).status).toBe(0);
    const res = await call("POST", "/execute?wait=5", as(squatted), { command: "id" });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe("USER_ACCOUNT_TAKEN");
    expect((await call("GET", "/files/list", as(squatted))).status).toBe(403);
  });
});
