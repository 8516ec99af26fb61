-- Migration number: 0004 	 Servers can be disabled: hidden from users' lists, refused by the proxy (403).
ALTER TABLE servers ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
