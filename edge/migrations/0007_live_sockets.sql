-- Migration number: 0007 	 Which Durable Objects hold WebSockets opened with which credential, so that revoking the
-- credential (a token revoked, a browser signed out, a user disabled or deleted) closes them (edge/live-sockets.ts).
-- credential: 'token:<api token id>' or 'session:<SHA-256 of the session cookie>'.
-- holder: 'terminal:<server>:<terminal>' (a TerminalDO) or 'host:<server>' (a HostDO relaying to a URL server).
-- Times are epoch milliseconds; a row outlives its socket at most until the credential expires.
CREATE TABLE live_sockets (
  credential TEXT NOT NULL,
  holder TEXT NOT NULL,
  user_id TEXT NOT NULL DEFAULT '',
  expires_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (credential, holder)
);
CREATE INDEX live_sockets_user ON live_sockets (user_id);
CREATE INDEX live_sockets_expiry ON live_sockets (expires_at);
