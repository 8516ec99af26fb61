/**
 * Server-side records of browser sign-ins (D1), so signing out revokes a cookie for good: a
 * cookie authenticates only while its record exists and has not expired. Records hold the
 * SHA-256 of the cookie value, never the value. At most BROWSER_SESSIONS_MAX live at once; a
 * sign-in beyond that evicts the oldest. The table is made by edge/migrations/0002_browser_sessions.sql.
 */

/** Most browser sessions kept at once; the oldest is signed out to make room. */
export const BROWSER_SESSIONS_MAX = 64;

/** Records a new session (`digest`: SHA-256 hex of the cookie value; `expiresAt`: epoch ms). */
export async function recordBrowserSession(db: D1Database, digest: string, expiresAt: number, now = Date.now()): Promise<void> {
  await db.batch([
    db.prepare("DELETE FROM browser_sessions WHERE expires_at <= ?").bind(now),
    // Keep the newest BROWSER_SESSIONS_MAX - 1, so with this one there are at most the max.
    db
      .prepare("DELETE FROM browser_sessions WHERE digest IN (SELECT digest FROM browser_sessions ORDER BY created_at DESC, digest LIMIT -1 OFFSET ?)")
      .bind(BROWSER_SESSIONS_MAX - 1),
    db.prepare("INSERT OR REPLACE INTO browser_sessions (digest, expires_at, created_at) VALUES (?, ?, ?)").bind(digest, expiresAt, now),
  ]);
}

/** True while the session is recorded and unexpired. */
export async function browserSessionLive(db: D1Database, digest: string, now = Date.now()): Promise<boolean> {
  const row = await db.prepare("SELECT expires_at FROM browser_sessions WHERE digest = ?").bind(digest).first<{ expires_at: number }>();
  return row !== null && row.expires_at > now;
}

/** Forgets a session: its cookie stops working at once. */
export async function revokeBrowserSession(db: D1Database, digest: string): Promise<void> {
  await db.prepare("DELETE FROM browser_sessions WHERE digest = ?").bind(digest).run();
}
