/**
 * `GET /api/v1/admin/stats` (admin only): per server, whether its agent is online, what it runs
 * (version, host facts), when it was last seen, its sessions and clients now, and its cumulative
 * counters (stats.ts); plus the totals over all servers. Errors take the terminal session API's
 * shape, as every /api/v1/admin route does.
 */
import { hostStub } from "./addresses.ts";
import type { Env } from "./env.ts";
import { listServers } from "./registry.ts";
import { COUNTER_NAMES, zeroCounters, type StatsBody } from "./stats.ts";

export async function adminStats(env: Env): Promise<Response> {
  const servers = await listServers(env.DB);
  const stats = await Promise.all(servers.map((s) => hostStub(env, s.id).stats()));
  const totals = { ...zeroCounters(), servers: stats.length, agents_online: 0, sessions: 0, clients: 0 };
  for (const s of stats) {
    for (const name of COUNTER_NAMES) totals[name] += s[name];
    totals.agents_online += s.online ? 1 : 0;
    totals.sessions += s.sessions;
    totals.clients += s.clients;
  }
  return Response.json({ generated_at: new Date().toISOString(), totals, servers: stats } satisfies StatsBody);
}
