/**
 * The HostDO's SQLite: the index of the server's sessions (so listings work while the agent is
 * away), a few facts about the host (the agent's hello, when it connected and was last seen)
 * and the server's counters (stats.ts). Tables are created here, in code; `ctx.storage.sql` is
 * synchronous, so every call below commits with the event that makes it.
 */
import type { SessionMeta } from "../shared/links/control.ts";
import { ApiError } from "../shared/errors.ts";
import { EPHEMERAL_ID_MAX, EPHEMERAL_ID_MIN } from "../shared/validation.ts";
import { cleanDelta, COUNTER_NAMES, zeroCounters, type Counters } from "./stats.ts";

/** Random picks tried before scanning for a free ephemeral id. */
const EPHEMERAL_ID_PICKS = 32;

export class HostStore {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS sessions (
      terminal_id INTEGER PRIMARY KEY,
      meta TEXT NOT NULL
    )`);
    sql.exec(`CREATE TABLE IF NOT EXISTS host (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS stats (name TEXT PRIMARY KEY, value INTEGER NOT NULL)`);
  }

  /** Sets a host fact (`agent`, `connected_at`, `last_seen`). */
  setHostValue(key: string, value: string): void {
    this.sql.exec("INSERT INTO host (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", key, value);
  }

  /** A host fact, or null when never set. */
  hostValue(key: string): string | null {
    const row = this.sql.exec<{ value: string }>("SELECT value FROM host WHERE key = ?", key).toArray()[0];
    return row?.value ?? null;
  }

  /** The indexed session `terminalId`, or null. */
  indexed(terminalId: number): SessionMeta | null {
    const row = this.sql.exec<{ meta: string }>("SELECT meta FROM sessions WHERE terminal_id = ?", terminalId).toArray()[0];
    return row ? (JSON.parse(row.meta) as SessionMeta) : null;
  }

  /** Every indexed session, lowest id first. */
  allIndexed(): SessionMeta[] {
    return this.sql
      .exec<{ meta: string }>("SELECT meta FROM sessions ORDER BY terminal_id")
      .toArray()
      .map((r) => JSON.parse(r.meta) as SessionMeta);
  }

  /** Sessions indexed. */
  count(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM sessions").one().n;
  }

  /** Indexes (or re-indexes) a session. */
  index(meta: SessionMeta): void {
    this.sql.exec("INSERT OR REPLACE INTO sessions (terminal_id, meta) VALUES (?, ?)", meta.terminal_id, JSON.stringify(meta));
  }

  /** Forgets a session. */
  remove(terminalId: number): void {
    this.sql.exec("DELETE FROM sessions WHERE terminal_id = ?", terminalId);
  }

  /** A free id in the ephemeral range (neither indexed nor among `creating`'s); 429 TOO_MANY_SESSIONS when every one is taken. */
  allocateEphemeralId(creating: ReadonlyMap<number, unknown> = new Map()): number {
    const taken = new Set([...this.allIndexed().map((m) => m.terminal_id), ...creating.keys()]);
    const span = EPHEMERAL_ID_MAX - EPHEMERAL_ID_MIN + 1;
    for (let i = 0; i < EPHEMERAL_ID_PICKS; i++) {
      const id = EPHEMERAL_ID_MIN + Math.floor(Math.random() * span);
      if (!taken.has(id)) return id;
    }
    for (let id = EPHEMERAL_ID_MIN; id <= EPHEMERAL_ID_MAX; id++) if (!taken.has(id)) return id;
    throw new ApiError(429, "TOO_MANY_SESSIONS", "No free ephemeral terminal id");
  }

  /** Adds to the server's counters (unknown names and non-counts are dropped by cleanDelta). */
  addStats(delta: Partial<Counters>): void {
    for (const [name, n] of Object.entries(cleanDelta(delta))) {
      this.sql.exec("INSERT INTO stats (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", name, n);
    }
  }

  /** The server's counters, zero for those never counted. */
  counters(): Counters {
    const counters = zeroCounters();
    for (const row of this.sql.exec<{ name: string; value: number }>("SELECT name, value FROM stats").toArray()) {
      if ((COUNTER_NAMES as readonly string[]).includes(row.name)) counters[row.name as keyof Counters] = row.value;
    }
    return counters;
  }
}
