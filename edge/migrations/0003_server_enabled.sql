-- Migration number: 0003 	 Servers can be disabled: hidden from users' lists, refused by the proxy (403).
-- The table is created here too when missing (registries made before migrations existed).
CREATE TABLE IF NOT EXISTS servers (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  url TEXT NOT NULL DEFAULT '',
  token_hash TEXT NOT NULL,
  created_at TEXT NOT NULL
);
ALTER TABLE servers ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
