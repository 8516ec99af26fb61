/**
 * What an agent says about itself in its hello, cut down to known fields of bounded size before
 * the HostDO stores it: a hostile or buggy agent cannot park megabytes or odd types in storage
 * or in the stats API.
 */
import type { AgentFacts, HostFacts } from "../shared/links/control.ts";

/** Longest string kept from an agent's facts, in characters. */
export const AGENT_FACT_MAX_CHARS = 200;

function str(value: unknown): string {
  return typeof value === "string" ? value.slice(0, AGENT_FACT_MAX_CHARS) : "";
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : 0;
}

/** The known fields of `value` with their types enforced; anything else is dropped. */
export function sanitizeAgentFacts(value: unknown): AgentFacts {
  const v = (typeof value === "object" && value !== null ? value : {}) as Record<string, unknown>;
  const facts: AgentFacts = { version: str(v["version"]), hostname: str(v["hostname"]), platform: str(v["platform"]), is_root: v["is_root"] === true };
  if (v["ot_info"] === true) facts.ot_info = true;
  if (v["ot_multi_user"] === true) facts.ot_multi_user = true;
  const f = v["facts"];
  if (typeof f === "object" && f !== null) {
    const h = f as Record<string, unknown>;
    const started = str(h["started_at"]);
    const host: HostFacts = {
      arch: str(h["arch"]),
      os_release: str(h["os_release"]),
      node: str(h["node"]),
      cpus: count(h["cpus"]),
      memory_bytes: count(h["memory_bytes"]),
      started_at: Number.isNaN(Date.parse(started)) ? "" : new Date(started).toISOString(),
    };
    facts.facts = host;
  }
  return facts;
}
