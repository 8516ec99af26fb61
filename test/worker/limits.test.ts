/**
 * Limits as configuration (shared/limits.ts): the documented table is the code's, and a bad
 * value stops the local stack and the agent before they start.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AGENT_SETTINGS, ConfigError, EDGE_SETTINGS, parseSettings, settingsTable } from "../../shared/limits.ts";
import { REPO_ROOT, startLocalStack } from "../../worker/cli/local-stack.ts";

describe("limits", () => {
  it("are documented in docs/deployment.md exactly as the code defines them", () => {
    const doc = readFileSync(join(REPO_ROOT, "docs", "deployment.md"), "utf8");
    expect(doc).toContain(settingsTable(EDGE_SETTINGS));
    expect(doc).toContain(settingsTable(AGENT_SETTINGS));
  });

  it("take defaults when absent and list every bad value at once", () => {
    expect(parseSettings(AGENT_SETTINGS, {})).toEqual({ maxSessions: 256, forkPtys: false });
    expect(parseSettings(AGENT_SETTINGS, { EDGETTY_AGENT_MAX_SESSIONS: " 8 " })).toEqual({ maxSessions: 8, forkPtys: false });
    try {
      parseSettings(EDGE_SETTINGS, { EDGETTY_MAX_CLIENTS: "5000", EDGETTY_CORS_ORIGINS: "*,not an origin" });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems).toHaveLength(2);
    }
  });

  it("read on/off settings in their spellings and refuse anything else", () => {
    expect(parseSettings(EDGE_SETTINGS, {}).clientWsDeflate).toBe(false);
    for (const on of ["on", "ON", " true ", "1", true]) expect(parseSettings(EDGE_SETTINGS, { EDGETTY_CLIENT_WS_DEFLATE: on }).clientWsDeflate).toBe(true);
    for (const off of ["off", "false", "0", false]) expect(parseSettings(EDGE_SETTINGS, { EDGETTY_CLIENT_WS_DEFLATE: off }).clientWsDeflate).toBe(false);
    expect(() => parseSettings(EDGE_SETTINGS, { EDGETTY_CLIENT_WS_DEFLATE: "yes please" })).toThrow(/EDGETTY_CLIENT_WS_DEFLATE="yes please" is not on or off/);
  });

  it("stop the local stack before it starts anything", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "edgetty-limits-"));
    try {
      await expect(
        startLocalStack({ port: 1, host: "127.0.0.1", stateDir, log: () => {}, quiet: true, edgeVars: { EDGETTY_MAX_CLIENTS: "lots" } }),
      ).rejects.toThrow(/EDGETTY_MAX_CLIENTS="lots" is not a whole number/);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it("stop the agent before it dials", () => {
    const result = spawnSync(
      process.execPath,
      [join(REPO_ROOT, "bin", "edgetty.js"), "agent", "--edge", "http://127.0.0.1:1", "--server", "x", "--token", "t"],
      { encoding: "utf8", env: { ...process.env, EDGETTY_AGENT_MAX_SESSIONS: "0" } },
    );
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("EDGETTY_AGENT_MAX_SESSIONS=0 is outside 1-4096 sessions");
  });
});
