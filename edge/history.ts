/**
 * A terminal's command history in its TerminalDO's SQLite storage: the records the agent sends in
 * HISTORY frames, one row per command, upserted by id (a record arrives when the command starts
 * and again when it ends, and may be resent after a reconnect). Bounded: past
 * HISTORY_MAX_RECORDS the oldest rows go. Reads need no agent, so history answers while the
 * agent is offline.
 */
import type { CommandRecord } from "../shared/history.ts";

/** Records kept per terminal; the oldest are dropped first. */
export const HISTORY_MAX_RECORDS = 1000;

/** A row is a record: the table has exactly its columns, written from validated records. */
type Row = CommandRecord & Record<string, SqlStorageValue>;

export class HistoryStore {
  /** False until the table exists (again: `deleteAll()` drops it with everything else). */
  private ready = false;

  constructor(private readonly sql: SqlStorage) {}

  private table(): SqlStorage {
    if (!this.ready) {
      this.sql.exec(`CREATE TABLE IF NOT EXISTS command_history (
        id INTEGER PRIMARY KEY,
        command TEXT NOT NULL,
        cwd TEXT NOT NULL,
        exit_code INTEGER,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        duration_ms INTEGER,
        status TEXT NOT NULL
      )`);
      this.ready = true;
    }
    return this.sql;
  }

  /**
   * Stores a record (one upsert), then drops what lies past the newest HISTORY_MAX_RECORDS by id:
   * by count, not by the new id, since an agent (buggy or hostile) may send ids that go down.
   */
  upsert(r: CommandRecord): void {
    const sql = this.table();
    sql.exec(
      `INSERT INTO command_history (id, command, cwd, exit_code, started_at, finished_at, duration_ms, status)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET command = excluded.command, cwd = excluded.cwd, exit_code = excluded.exit_code,
         started_at = excluded.started_at, finished_at = excluded.finished_at, duration_ms = excluded.duration_ms,
         status = excluded.status`,
      r.id, r.command, r.cwd, r.exit_code, r.started_at, r.finished_at, r.duration_ms, r.status,
    );
    sql.exec("DELETE FROM command_history WHERE id <= (SELECT id FROM command_history ORDER BY id DESC LIMIT 1 OFFSET ?)", HISTORY_MAX_RECORDS);
  }

  /** Every stored record, oldest first; at most the newest `limit` when given. */
  records(limit = HISTORY_MAX_RECORDS): CommandRecord[] {
    return this.table()
      .exec<Row>("SELECT * FROM (SELECT * FROM command_history ORDER BY id DESC LIMIT ?) ORDER BY id", Math.max(0, limit))
      .toArray()
      .map((row) => ({ ...row }));
  }

  /** The newest `limit` command lines, oldest first. */
  commandLines(limit: number): string[] {
    if (limit <= 0) return [];
    return this.table()
      .exec<{ command: string }>("SELECT command FROM (SELECT id, command FROM command_history ORDER BY id DESC LIMIT ?) ORDER BY id", limit)
      .toArray()
      .map((row) => row.command);
  }

  /** Forgets every record (a new session took this terminal id). */
  clear(): void {
    this.table().exec("DELETE FROM command_history");
  }

  /** The storage was wiped underneath (deleteAll): recreate the table on next use. */
  dropped(): void {
    this.ready = false;
  }
}
