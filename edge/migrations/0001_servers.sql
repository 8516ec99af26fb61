-- Migration number: 0001 	 The registry of servers (hosts running an agent).
-- IF NOT EXISTS: registries created before migrations existed (the table was then made in code)
-- take this migration as a no-op.
CREATE TABLE IF NOT EXISTS servers (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  url TEXT NOT NULL DEFAULT '',
  token_hash TEXT NOT NULL,
  created_at TEXT NOT NULL
);
