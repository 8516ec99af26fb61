/** URL servers' stored keys and upstream URLs, in workerd. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../../edge/env.ts";
import { openKey, parseUpstreamUrl, sealKey } from "../../edge/url-servers.ts";
import { ApiError } from "../../shared/errors.ts";

const e = env as unknown as Env;

describe("URL server keys", () => {
  it("are sealed with a fresh IV and open only with the same secret", async () => {
    const a = await sealKey(e, "k-123");
    const b = await sealKey(e, "k-123");
    expect(a).not.toBe(b);
    expect(a).not.toContain("k-123");
    expect(await openKey(e, a)).toBe("k-123");
    expect(await openKey({ ...e, EDGETTY_SECRETS_KEY: "another secret" }, a)).toBeNull();
    const tampered = a.slice(0, -4) + (a.endsWith("AAAA") ? "BBBB" : "AAAA");
    expect(await openKey(e, tampered)).toBeNull();
    expect(await openKey(e, "garbage")).toBeNull();
  });

  it("accept only plain http(s) upstream URLs", () => {
    expect(parseUpstreamUrl("http://10.0.0.5:8000/")).toBe("http://10.0.0.5:8000");
    expect(parseUpstreamUrl("https://ot.example/base/")).toBe("https://ot.example/base");
    for (const bad of ["ftp://x", "http://u:p@x", "http://x/?q=1", "http://x/#f", "not a url", 5]) {
      expect(() => parseUpstreamUrl(bad), String(bad)).toThrow(ApiError);
    }
  });
});
