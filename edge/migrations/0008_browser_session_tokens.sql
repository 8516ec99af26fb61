-- Migration number: 0008 	 A browser session signed in with a per-user API token remembers that token
-- (edge/browser-sessions.ts), so the session ends when the token is revoked or expires: the cookie
-- authenticates only while the token's row exists and is unexpired, and revoking the token deletes
-- its sessions and closes their WebSockets. NULL for a session signed in with the API key.
ALTER TABLE browser_sessions ADD COLUMN token_id TEXT;
CREATE INDEX browser_sessions_token ON browser_sessions (token_id);
-- subject: the cookie's signed subject (`admin` or `user~<id>~<role>~<ro|rw>`), so a grant change can
-- re-check what a session's open WebSockets may still do (edge/live-sockets.ts recheckSockets).
ALTER TABLE browser_sessions ADD COLUMN subject TEXT;
