import { defineConfig } from "vitest/config";
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
export default defineConfig({
  test: {
    projects: [
      { plugins: [cloudflareTest({ wrangler: { configPath: "./wrangler.toml" } })], test: { name: "edge", include: ["test/edge/**/*.test.ts"] } },
    ],
  },
});
