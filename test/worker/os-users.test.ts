/** Multi-user mode's pure rules: account names (the reference's rule), other homes, settings. */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { accountMarker, accountName, inOtherHome, isUserPrefix } from "../../worker/agent/os-users.ts";
import { parseMultiUser, UsageError } from "../../worker/cli/agent-cli.ts";

const hash = (id: string) => createHash("sha256").update(id).digest("hex");
const name = (id: string, prefix = "") => accountName(id, hash(id), prefix);

describe("account names", () => {
  it("follow the reference's rule: prefix, the id's letters and digits, _, 8 hex of its SHA-256", () => {
    expect(name("alice@example.com")).toBe(`aliceexamplecom_${hash("alice@example.com").slice(0, 8)}`);
    expect(name("Alice@Example.com")).toBe(`aliceexamplecom_${hash("Alice@Example.com").slice(0, 8)}`);
    expect(name("alice@example.com", "ot-")).toBe(`ot-aliceexamplecom_${hash("alice@example.com").slice(0, 8)}`);
  });

  it("never start with a digit, and fall back to h + hash for short ids", () => {
    expect(name("42abc")).toBe(`u42abc_${hash("42abc").slice(0, 8)}`);
    expect(name("ab")).toBe(`h${hash("ab").slice(0, 8)}`);
    expect(name("")).toBe(`uh${hash("").slice(0, 8)}`);
    expect(name("!!!")).toBe(`uh${hash("!!!").slice(0, 8)}`);
    expect(name("bob", "9")).toBe(`u9bob_${hash("bob").slice(0, 8)}`);
  });

  it("fit 32 characters and stay valid user names for any id", () => {
    for (const id of ["x".repeat(300), "550e8400-e29b-41d4-a716-446655440000", "ü🙂;rm -rf /", "root", "../etc"]) {
      const n = name(id, "edgetty_");
      expect(n.length).toBeLessThanOrEqual(32);
      expect(n).toMatch(/^[a-z_][a-z0-9_-]*$/);
    }
    // Two ids that clean to the same letters still differ by their hash.
    expect(name("a.b.c.d")).not.toBe(name("abcd"));
  });

  it("mark an account for one caller's scope only", () => {
    expect(accountMarker("admin:1")).not.toBe(accountMarker("user:x:1"));
    expect(accountMarker("admin:1")).toMatch(/^edgetty open-terminal [0-9a-f]{32}$/);
  });
});

describe("other users' homes", () => {
  it("are the other entries of the folder that holds the account's home", () => {
    const home = "/home/alice_1";
    expect(inOtherHome("/home/bob_2/x", home)).toBe(true);
    expect(inOtherHome("/home/bob_2", home)).toBe(true);
    expect(inOtherHome("/home/alice_10/x", home)).toBe(true);
    expect(inOtherHome("/home/alice_1", home)).toBe(false);
    expect(inOtherHome("/home/alice_1/a/b", home)).toBe(false);
    expect(inOtherHome("/home", home)).toBe(false);
    expect(inOtherHome("/etc/passwd", home)).toBe(false);
    expect(inOtherHome("/homex/bob", home)).toBe(false);
  });
});

describe("multi-user settings", () => {
  const program = { node: "/usr/bin/node", nodeArgs: ["--max-semi-space-size=1"], script: "/opt/edgetty-agent.mjs", scriptArgs: ["agent"] };

  it("are off unless EDGETTY_OT_MULTI_USER is true, and refuse other values", () => {
    expect(parseMultiUser({}, program)).toBeNull();
    expect(parseMultiUser({ EDGETTY_OT_MULTI_USER: "false" }, program)).toBeNull();
    expect(parseMultiUser({ EDGETTY_OT_MULTI_USER: "true", EDGETTY_OT_USER_PREFIX: "ot_" }, program)).toEqual({
      prefix: "ot_",
      helperProgram: { file: "/usr/bin/node", args: ["--max-semi-space-size=1", "/opt/edgetty-agent.mjs", "agent"] },
    });
    expect(() => parseMultiUser({ EDGETTY_OT_MULTI_USER: "maybe" }, program)).toThrow(UsageError);
    expect(() => parseMultiUser({ EDGETTY_OT_MULTI_USER: "1", EDGETTY_OT_USER_PREFIX: "Bad Prefix" }, program)).toThrow(UsageError);
  });

  it("take prefixes that keep names valid", () => {
    expect(isUserPrefix("")).toBe(true);
    expect(isUserPrefix("ot-")).toBe(true);
    expect(isUserPrefix("-x")).toBe(false);
    expect(isUserPrefix("x".repeat(17))).toBe(false);
    expect(isUserPrefix("a:b")).toBe(false);
  });
});
