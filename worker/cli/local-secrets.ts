/** The local stack's secrets: generated once, kept in its state folder. */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface StoredSecrets {
  apiKey: string;
  agentToken: string;
}

/** A random URL-safe secret (24 bytes) that never starts with `-`, so `--api-key KEY` always parses. */
export function cliToken(): string {
  for (;;) {
    const token = randomBytes(24).toString("base64url");
    if (!token.startsWith("-")) return token;
  }
}

/**
 * The local stack's API key and agent token, kept in `<stateDir>/secrets.json` (mode 0600) so a
 * restart keeps them; `apiKey` given on the command line replaces the stored one.
 */
export function loadSecrets(stateDir: string, apiKey: string | undefined): StoredSecrets {
  const file = join(stateDir, "secrets.json");
  let stored: Partial<StoredSecrets> = {};
  if (existsSync(file)) {
    try {
      stored = JSON.parse(readFileSync(file, "utf8")) as Partial<StoredSecrets>;
    } catch {
      stored = {};
    }
  }
  const secrets = { apiKey: apiKey ?? stored.apiKey ?? cliToken(), agentToken: stored.agentToken ?? cliToken() };
  writeFileSync(file, JSON.stringify(secrets, null, 2) + "\n", { mode: 0o600 });
  return secrets;
}

