/**
 * Server-side records of browser sign-ins (D1), so signing out revokes a cookie for good: a
 * cookie authenticates only while its record exists and has not expired. Records hold the
 * SHA-256 of the cookie value, never the value. Each signer keeps its own few: the API key at
 * most BROWSER_SESSIONS_MAX, each user at most BROWSER_SESSIONS_PER_USER_MAX (all their tokens
 * together); a sign-in beyond that signs out that signer's oldest, never another's (one user
 * signing in over and over used to sign the admin and everyone else out). The table is made by
 * edge/migrations/0002_browser_sessions.sql.
 *
 * A session signed in with a per-user API token records the token's id (migration 0008): it
 * authenticates only while that token is live (not revoked, not expired), and revoking the
 * token ends it ({@link endTokenSessions}), so a browser never outlives the credential it was
 * signed in with.
 */

/** Most browser sessions signed in with the API key kept at once; their oldest is signed out to make room. */
export const BROWSER_SESSIONS_MAX = 64;
/**
 * Most browser sessions of one user kept at once, whatever tokens they signed in with; their oldest
 * is signed out to make room. The table holds at most BROWSER_SESSIONS_MAX plus this per user.
 */
export const BROWSER_SESSIONS_PER_USER_MAX = 16;

/**
 * Which of the table's rows belong to the same signer as `subject` (`admin`, or
 * `user~<id>~<role>~<ro|rw>`): a WHERE clause with its bindings, and how many that signer keeps.
 * Rows recorded before subjects were (NULL) count as the API key's.
 */
function sameSigner(subject: string): { where: string; binds: unknown[]; max: number } {
  const user = /^(user~[a-z0-9][a-z0-9._-]{0,62}~)/.exec(subject);
  // An id never holds `~`, so `user~bob~` is no prefix of `user~bobby~…`.
  if (user) return { where: "substr(subject, 1, ?) = ?", binds: [user[1]!.length, user[1]!], max: BROWSER_SESSIONS_PER_USER_MAX };
  return { where: "(subject IS NULL OR subject NOT LIKE 'user~%')", binds: [], max: BROWSER_SESSIONS_MAX };
}

/**
 * Records a new session (`digest`: SHA-256 hex of the cookie value; `expiresAt`: epoch ms;
 * `tokenId`: the per-user API token it was signed in with, null for the API key; `subject`:
 * the cookie's signed subject, `admin` or `user~<id>~<role>~<ro|rw>`).
 */
export async function recordBrowserSession(db: D1Database, digest: string, expiresAt: number, now = Date.now(), tokenId: string | null = null, subject = "admin"): Promise<void> {
  const signer = sameSigner(subject);
  await db.batch([
    db.prepare("DELETE FROM browser_sessions WHERE expires_at <= ?").bind(now),
    // Keep this signer's newest max - 1, so with this one it has at most its max; others' are not touched.
    db
      .prepare(`DELETE FROM browser_sessions WHERE digest IN (SELECT digest FROM browser_sessions WHERE ${signer.where} ORDER BY created_at DESC, digest LIMIT -1 OFFSET ?)`)
      .bind(...signer.binds, signer.max - 1),
    db
      .prepare("INSERT OR REPLACE INTO browser_sessions (digest, expires_at, created_at, token_id, subject) VALUES (?, ?, ?, ?, ?)")
      .bind(digest, expiresAt, now, tokenId, subject),
  ]);
}

/**
 * True while the session is recorded and unexpired, and the token it was signed in with (if
 * any) still exists unexpired. Checking the token here, not only deleting sessions on revoke,
 * closes the race of a sign-in with a token being revoked at that moment.
 */
export async function browserSessionLive(db: D1Database, digest: string, now = Date.now()): Promise<boolean> {
  return (await liveSessionSubject(db, digest, now)) !== null;
}

/** The subject of a live session (see {@link browserSessionLive}); "" for a row that predates subjects; null when not live. */
export async function liveSessionSubject(db: D1Database, digest: string, now = Date.now()): Promise<string | null> {
  const row = await db
    .prepare(
      `SELECT b.subject FROM browser_sessions b WHERE b.digest = ?1 AND b.expires_at > ?2
         AND (b.token_id IS NULL OR EXISTS (SELECT 1 FROM api_tokens t WHERE t.id = b.token_id AND t.expires_at > ?2))`,
    )
    .bind(digest, now)
    .first<{ subject: string | null }>();
  return row === null ? null : (row.subject ?? "");
}

/**
 * Ends every browser session signed in with token `tokenId` (call once the token is revoked);
 * answers their digests (at most {@link BROWSER_SESSIONS_MAX}), so their WebSockets can be closed.
 */
export async function endTokenSessions(db: D1Database, tokenId: string): Promise<string[]> {
  const { results } = await db.prepare("SELECT digest FROM browser_sessions WHERE token_id = ? LIMIT ?").bind(tokenId, BROWSER_SESSIONS_MAX).all<{ digest: string }>();
  await db.prepare("DELETE FROM browser_sessions WHERE token_id = ?").bind(tokenId).run();
  return results.map((r) => r.digest);
}

/** Forgets a session: its cookie stops working at once. */
export async function revokeBrowserSession(db: D1Database, digest: string): Promise<void> {
  await db.prepare("DELETE FROM browser_sessions WHERE digest = ?").bind(digest).run();
}
