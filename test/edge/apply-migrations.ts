/**
 * Setup for the edge tests: applies the D1 migrations (edge/migrations/, read in Node by
 * vitest.config.ts) to the test database, exactly as `wrangler d1 migrations apply` would.
 */
import { applyD1Migrations, type D1Migration } from "cloudflare:test";
import { env } from "cloudflare:workers";

const bindings = env as unknown as { DB: D1Database; TEST_MIGRATIONS: D1Migration[] };
await applyD1Migrations(bindings.DB, bindings.TEST_MIGRATIONS);
