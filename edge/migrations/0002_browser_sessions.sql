-- Migration number: 0002 	 Browser sign-ins (edge/browser-sessions.ts): the SHA-256 of each
-- session cookie, so signing out revokes it on the server. At most BROWSER_SESSIONS_MAX rows.
CREATE TABLE IF NOT EXISTS browser_sessions (
  digest TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
