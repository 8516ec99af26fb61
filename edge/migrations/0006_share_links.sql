-- Migration number: 0006 	 Share links: a bearer link that opens one terminal read-only until it expires or is revoked.
-- Rows hold only the SHA-256 of the link's token (edge/share-links.ts); times are epoch milliseconds.
CREATE TABLE share_links (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL,
  server_id TEXT NOT NULL,
  terminal_id INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX share_links_terminal ON share_links (server_id, terminal_id);
