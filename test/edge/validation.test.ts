/** Input validation shared by the edge and the agent. */
import { describe, expect, it } from "vitest";
import { ApiError } from "../../shared/errors.ts";
import { isServerId, parseCreateParams, parseDisplay, parseEnvEntries, parseEnvField, parseTerminalId, requireTerminalId } from "../../shared/validation.ts";

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof ApiError) return `${error.status} ${error.code}`;
    throw error;
  }
  return "no error";
}

describe("validation", () => {
  it("accepts terminal ids 1-65535 as numbers or decimal strings only", () => {
    expect(parseTerminalId("1")).toBe(1);
    expect(parseTerminalId(65535)).toBe(65535);
    for (const bad of ["0", "65536", "1e3", " ", "0x10", "-5", 1.5, null, {}]) expect(parseTerminalId(bad)).toBeNull();
    expect(codeOf(() => requireTerminalId(undefined))).toBe("400 MISSING_TERMINAL_ID");
    expect(codeOf(() => requireTerminalId("abc"))).toBe("400 INVALID_TERMINAL_ID");
  });

  it("accepts server ids of the documented shape", () => {
    expect(isServerId("local")).toBe(true);
    expect(isServerId("web-01")).toBe(true);
    for (const bad of ["", "-x", "UP", "a".repeat(64), "a/b", "a.b"]) expect(isServerId(bad)).toBe(false);
  });

  it("normalizes displays and refuses junk", () => {
    expect(parseDisplay("5")).toBe(":5");
    expect(parseDisplay(":12.0")).toBe(":12.0");
    expect(codeOf(() => parseDisplay("5; rm -rf /"))).toBe("400 INVALID_PARAMETERS");
  });

  it("parses env entries and refuses bad names", () => {
    expect(parseEnvEntries(["A=1", "B_2=x=y"])).toEqual({ A: "1", B_2: "x=y" });
    expect(codeOf(() => parseEnvEntries(["1A=x"]))).toBe("400 INVALID_PARAMETERS");
    expect(codeOf(() => parseEnvEntries(["NOEQUALS"]))).toBe("400 INVALID_PARAMETERS");
    expect(codeOf(() => parseEnvEntries(Array.from({ length: 65 }, (_, i) => `K${i}=v`)))).toBe("400 INVALID_PARAMETERS");
  });

  it("takes a create body's env as a list, one entry or an object, and refuses anything else", () => {
    expect(parseEnvField(["A=1"])).toEqual({ A: "1" });
    expect(parseEnvField("A=1")).toEqual({ A: "1" });
    expect(parseEnvField({ A: "1", B: "x=y" })).toEqual({ A: "1", B: "x=y" });
    expect(parseEnvField(undefined)).toEqual({});
    for (const bad of [5, true, { A: 1 }, { A: null }, [1], { "1A": "x" }, Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`K${i}`, "v"]))]) {
      expect(codeOf(() => parseEnvField(bad)), JSON.stringify(bad)).toBe("400 INVALID_PARAMETERS");
    }
    // A body's env wins over the query-style list; a query (no env key) uses the list.
    expect(parseCreateParams({ env: { K: "obj" } }, 3, ["K=list"]).env).toEqual({ K: "obj" });
    expect(parseCreateParams({}, 3, ["K=list"]).env).toEqual({ K: "list" });
  });

  it("builds create params with defaults and clear refusals", () => {
    expect(parseCreateParams({}, 3)).toEqual({ terminal_id: 3, ephemeral: false, cwd_auto_create: false, welcome: false, debug: false, cols: 80, rows: 24, env: {} });
    expect(parseCreateParams({ shell: "zsh", cwd: "/tmp", cols: "100", welcome: "1" }, 3)).toMatchObject({ shell: "zsh", cwd: "/tmp", cols: 100, welcome: true });
    expect(codeOf(() => parseCreateParams({ shell: "powershell" }, 3))).toBe("400 INVALID_SHELL");
    expect(codeOf(() => parseCreateParams({ cwd: "relative/path" }, 3))).toBe("400 INVALID_PARAMETERS");
    expect(codeOf(() => parseCreateParams({ user: "root; id" }, 3))).toBe("400 INVALID_USER");
    expect(codeOf(() => parseCreateParams({ rows: 0 }, 3))).toBe("400 INVALID_PARAMETERS");
    expect(codeOf(() => parseCreateParams({ cmd: "not base64!" }, 3))).toBe("400 INVALID_PARAMETERS");
    expect(codeOf(() => parseCreateParams({ ssh_host: "h", ssh_user: "u" }, 3))).toBe("501 NOT_IMPLEMENTED");
    expect(codeOf(() => parseCreateParams({ ephemeral: "maybe" }, 3))).toBe("400 INVALID_PARAMETERS");
  });
});
