/**
 * The names and owners of `/api/terminals` sessions, kept in the HostDO's SQLite beside its
 * session index. A session made by `POST /api/terminals` is named by the caller's `X-Session-Id`
 * (as the reference names it) or by its terminal id in decimal, and owned by the caller's scope
 * (the `X-User-Id` it asserted). Sessions of the terminal session API have no row: their name is
 * their terminal id and they belong to no Open WebUI user.
 */

/** Longest session name (an `X-Session-Id`), in characters. */
export const SESSION_NAME_MAX_CHARS = 128;
const NAME_RE = /^[A-Za-z0-9._~:@-]{1,128}$/;

/** True when `name` may name a session (it appears in URL paths, so no `/`, `?`, `#`, spaces). */
export function isSessionName(name: string): boolean {
  return NAME_RE.test(name);
}

/** One named session. `owner` is the caller scope that made it, or null for "any caller". */
export interface NamedSession {
  name: string;
  terminal_id: number;
  owner: string | null;
}

/** The table's operations over a DO's SQL storage. */
export class SessionNames {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS ot_names (
      name TEXT PRIMARY KEY,
      terminal_id INTEGER NOT NULL UNIQUE,
      owner TEXT
    )`);
  }

  bind(row: NamedSession): void {
    this.sql.exec("DELETE FROM ot_names WHERE name = ? OR terminal_id = ?", row.name, row.terminal_id);
    this.sql.exec("INSERT INTO ot_names (name, terminal_id, owner) VALUES (?, ?, ?)", row.name, row.terminal_id, row.owner);
  }

  byName(name: string): NamedSession | null {
    return this.sql.exec<{ name: string; terminal_id: number; owner: string | null }>("SELECT name, terminal_id, owner FROM ot_names WHERE name = ?", name).toArray()[0] ?? null;
  }

  /** Every row, keyed by terminal id. */
  all(): Map<number, NamedSession> {
    const rows = this.sql.exec<{ name: string; terminal_id: number; owner: string | null }>("SELECT name, terminal_id, owner FROM ot_names").toArray();
    return new Map(rows.map((r) => [r.terminal_id, { ...r }]));
  }

  forgetTerminal(terminalId: number): void {
    this.sql.exec("DELETE FROM ot_names WHERE terminal_id = ?", terminalId);
  }
}
