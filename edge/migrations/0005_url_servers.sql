-- Migration number: 0005 	 URL servers: an existing Open Terminal server the edge proxies to with its own key.
-- kind 'agent': reached over its agent's link; 'url': reached at servers.url with key_enc (AES-GCM, see edge/url-servers.ts).
ALTER TABLE servers ADD COLUMN kind TEXT NOT NULL DEFAULT 'agent';
ALTER TABLE servers ADD COLUMN key_enc TEXT NOT NULL DEFAULT '';
