/**
 * How Durable Objects are addressed: a server's HostDO by its server id, a terminal's
 * TerminalDO by `${server_id}:${terminal_id}`. Every stub is got here, so the names are built in
 * one place; a DO reads its own identity back from `ctx.id.name` (`identityOf`).
 */
import type { Env } from "./env.ts";

/** The TerminalDO name of a terminal. `terminalId` 0 names no session: the object that answers
 * raw sockets addressed to ids that are not terminal ids (see raw-terminal.ts). */
export function terminalName(serverId: string, terminalId: number): string {
  return `${serverId}:${terminalId}`;
}

/** The server and terminal of a TerminalDO name, or null for a name not made by terminalName. */
export function parseTerminalName(name: string): { serverId: string; terminalId: number } | null {
  const m = /^([a-z0-9][a-z0-9-]{0,62}):(\d{1,5})$/.exec(name);
  return m ? { serverId: m[1]!, terminalId: Number(m[2]) } : null;
}

/** The HostDO of a server. */
export function hostStub(env: Pick<Env, "HOST">, serverId: string) {
  return env.HOST.get(env.HOST.idFromName(serverId));
}

/** The TerminalDO of one terminal of a server. */
export function terminalStub(env: Pick<Env, "TERMINAL">, serverId: string, terminalId: number) {
  return env.TERMINAL.get(env.TERMINAL.idFromName(terminalName(serverId, terminalId)));
}

/**
 * A DO's own name: `ctx.id.name` where the runtime gives it (the object was reached through
 * idFromName), else the copy kept in storage under `key`. The copy is written only when it is
 * missing or differs, so at most once per object: the runtime does not set `ctx.id.name` when an
 * alarm wakes a cold instance, and such a wake-up reads the copy. Call once, at construction
 * (inside blockConcurrencyWhile). Null: the object was never reached by name.
 */
export async function loadIdentity(ctx: DurableObjectState, key: string): Promise<string | null> {
  const stored = (await ctx.storage.get<string>(key)) ?? null;
  const name = ctx.id.name;
  if (name === undefined || name === "") return stored;
  if (stored !== name) await ctx.storage.put(key, name);
  return name;
}
