import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { mkdirSync } from "node:fs";
import { defineConfig } from "vitest/config";

// wrangler.toml serves the web app from dist/web; the edge tests need the folder to exist.
mkdirSync("dist/web", { recursive: true });
// The registry's schema: the same migration files `wrangler d1 migrations apply` runs.
const migrations = await readD1Migrations("edge/migrations");

export default defineConfig({
  test: {
    projects: [
      {
        // Edge units inside workerd, with real Durable Objects, storage and D1.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            // EDGETTY_FUZZ_RUNS: how many cases the fuzz suites run (`npm run fuzz` sets it).
            miniflare: { bindings: { EDGETTY_API_KEY: "test-admin-key", TEST_MIGRATIONS: migrations, EDGETTY_FUZZ_RUNS: process.env["EDGETTY_FUZZ_RUNS"] ?? "" } },
          }),
        ],
        test: { name: "edge", include: ["test/edge/**/*.test.ts"], setupFiles: ["test/edge/apply-migrations.ts"], sequence: { groupOrder: 0 } },
      },
      {
        // Agent units, end-to-end tests through the real local stack, browser tests, and the
        // fuzz suite (EDGETTY_FUZZ_RUNS cases; `npm run fuzz` runs 100,000).
        test: {
          name: "node",
          include: ["test/worker/**/*.test.ts", "test/e2e/**/*.test.ts", "test/browser/**/*.test.ts", "test/fuzz/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
