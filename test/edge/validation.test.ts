/** Input validation shared by the edge and the agent. */
import { describe, expect, it } from "vitest";
import { ApiError } from "../../shared/errors.ts";
import { ENV_VALUE_MAX_CHARS, isServerId, parseCreateParams, parseDisplay, parseEnvEntries, parseEnvField, parseTerminalId, requireTerminalId } from "../../shared/validation.ts";

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
    // A value too long is said to be too long, not a bad name.
    expect(() => parseEnvEntries([`LONG=${"v".repeat(ENV_VALUE_MAX_CHARS + 1)}`])).toThrow(`env value of LONG must be at most ${ENV_VALUE_MAX_CHARS} characters`);
  });

  it("takes a create body's env as a list, one entry or an object, and refuses anything else", () => {
    expect(parseEnvField(["A=1"])).toEqual({ A: "1" });
    expect(parseEnvField("A=1")).toEqual({ A: "1" });
    expect(parseEnvField({ A: "1", B: "x=y" })).toEqual({ A: "1", B: "x=y" });
    expect(parseEnvField(undefined)).toEqual({});
    for (const bad of [5, true, { A: 1 }, { A: null }, [1], { "1A": "x" }, Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`K${i}`, "v"]))]) {
      expect(codeOf(() => parseEnvField(bad)), JSON.stringify(bad)).toBe("400 INVALID_PARAMETERS");
    }
    // Names the link's records drop (and __proto__, which would set the object's prototype): refused, not lost.
    for (const bad of [["__proto__=x", "FOO=bar"], ["constructor=y"], JSON.parse('{"__proto__":"x"}'), { constructor: "y" }, { prototype: "z" }]) {
      expect(() => parseEnvField(bad), JSON.stringify(bad)).toThrow(/env name (__proto__|constructor|prototype) is not supported/);
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
    expect(codeOf(() => parseCreateParams({ ephemeral: "maybe" }, 3))).toBe("400 INVALID_PARAMETERS");
  });

  it("parses SSH and SOCKS5 fields with the seed's defaults", () => {
    expect(parseCreateParams({ ssh_host: "example.org", ssh_user: "u" }, 3).ssh).toEqual({ host: "example.org", user: "u", port: 22 });
    const key = btoa("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n");
    expect(
      parseCreateParams({ ssh_host: "10.0.0.1", ssh_user: "u", ssh_port: "2222", ssh_password: "p@ss w0rd!#%*", ssh_key: key, socks5_host: "proxy", socks5_user: "a", socks5_pass: "b" }, 3).ssh,
    ).toEqual({ host: "10.0.0.1", user: "u", port: 2222, password: "p@ss w0rd!#%*", key, socks5: { host: "proxy", port: 1080, user: "a", pass: "b" } });
    expect(parseCreateParams({ ssh_host: "[::1]", ssh_user: "u" }, 3).ssh?.host).toBe("::1");
  });

  it("refuses SSH fields that are missing a partner, dangerous or malformed", () => {
    expect(codeOf(() => parseCreateParams({ ssh_host: "h" }, 3))).toBe("400 INVALID_PARAMETERS");
    expect(codeOf(() => parseCreateParams({ ssh_user: "u" }, 3))).toBe("400 INVALID_PARAMETERS");
    expect(codeOf(() => parseCreateParams({ ssh_password: "x" }, 3))).toBe("400 INVALID_PARAMETERS");
    for (const pw of ["a;b", "$(id)", "`id`", "a'b", 'a"b', "a\\b", "a|b", "a&b", "a>b", "a\nb", "a\u0000b", "{a}"]) {
      expect(codeOf(() => parseCreateParams({ ssh_host: "h", ssh_user: "u", ssh_password: pw }, 3))).toBe("400 INVALID_SSH_PASSWORD");
    }
    expect(codeOf(() => parseCreateParams({ ssh_host: "-oProxyCommand=id", ssh_user: "u" }, 3))).toBe("400 INVALID_PARAMETERS");
    expect(codeOf(() => parseCreateParams({ ssh_host: "h", ssh_user: "-oX" }, 3))).toBe("400 INVALID_PARAMETERS");
    expect(codeOf(() => parseCreateParams({ ssh_host: "h", ssh_user: "u", ssh_port: "0" }, 3))).toBe("400 INVALID_PARAMETERS");
    expect(codeOf(() => parseCreateParams({ ssh_host: "h", ssh_user: "u", ssh_key: "bm90IGEga2V5" }, 3))).toBe("400 INVALID_SSH_KEY");
    expect(codeOf(() => parseCreateParams({ ssh_host: "h", ssh_user: "u", socks5_port: 1 }, 3))).toBe("400 INVALID_PARAMETERS");
    expect(codeOf(() => parseCreateParams({ ssh_host: "h", ssh_user: "u", socks5_host: "p", socks5_pass: "x" }, 3))).toBe("400 INVALID_PARAMETERS");
    expect(codeOf(() => parseCreateParams({ ssh_host: "h", ssh_user: "u", pid: 5 }, 3))).toBe("400 INVALID_PARAMETERS");
  });

  it("parses the display wait, desktop and pid fields", () => {
    expect(parseCreateParams({ display: "3" }, 3)).toMatchObject({ display: ":3", wait_until_display: true, wait_timeout: 300 });
    expect(parseCreateParams({ display: "3", wait_until_display: "false", wait_timeout: "5" }, 3)).toMatchObject({ wait_until_display: false, wait_timeout: 5 });
    expect(parseCreateParams({ display: "3", ephemeral: true }, 3).wait_until_display).toBeUndefined();
    expect(parseCreateParams({ display: "3", desktop: true }, 3).desktop_env).toBe("xfce");
    expect(parseCreateParams({ display: "3", desktop_env: "mate" }, 3).desktop_env).toBe("mate");
    expect(codeOf(() => parseCreateParams({ display: "3", desktop_env: "kde" }, 3))).toBe("400 INVALID_DESKTOP_ENV");
    expect(codeOf(() => parseCreateParams({ desktop: true }, 3))).toBe("400 INVALID_PARAMETERS");
    expect(codeOf(() => parseCreateParams({ display: "3", wait_timeout: "-1" }, 3))).toBe("400 INVALID_PARAMETERS");
    expect(parseCreateParams({ pid: "1234" }, 3).pid).toBe(1234);
    expect(codeOf(() => parseCreateParams({ pid: "0" }, 3))).toBe("400 INVALID_PARAMETERS");
    expect(codeOf(() => parseCreateParams({ pid: "12abc" }, 3))).toBe("400 INVALID_PARAMETERS");
  });

  it("refuses false, like true, for a kind's text and number fields instead of dropping the kind", () => {
    expect(codeOf(() => parseCreateParams({ pid: false }, 3))).toBe("400 INVALID_PARAMETERS");
    expect(codeOf(() => parseCreateParams({ pid: true }, 3))).toBe("400 INVALID_PARAMETERS");
    expect(codeOf(() => parseCreateParams({ ssh_host: false, ssh_user: false }, 3))).toBe("400 INVALID_PARAMETERS");
    expect(codeOf(() => parseCreateParams({ ssh_host: "h", ssh_user: "u", ssh_port: false }, 3))).toBe("400 INVALID_PARAMETERS");
    expect(codeOf(() => parseCreateParams({ ssh_host: "h", ssh_user: "u", ssh_password: false }, 3))).toBe("400 INVALID_PARAMETERS");
    expect(codeOf(() => parseCreateParams({ ssh_host: "h", ssh_user: "u", socks5_host: false }, 3))).toBe("400 INVALID_PARAMETERS");
    expect(codeOf(() => parseCreateParams({ display: "3", wait_timeout: false }, 3))).toBe("400 INVALID_PARAMETERS");
    expect(codeOf(() => parseCreateParams({ display: "3", desktop_env: false }, 3))).toBe("400 INVALID_PARAMETERS");
    // Absent is still absent: null, and "" (an empty query parameter).
    expect(parseCreateParams({ pid: null, ssh_host: "", ssh_user: "", display: "3", wait_timeout: "", desktop: false }, 3)).toMatchObject({ wait_timeout: 300 });
    expect(parseCreateParams({ pid: "" }, 3).pid).toBeUndefined();
  });
});
