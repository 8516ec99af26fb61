// Runs the agent-side unit tests under plain Node until the root config gains a node project.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "worker",
    root: new URL("../..", import.meta.url).pathname,
    include: ["test/worker/**/*.test.ts"],
    environment: "node",
    testTimeout: 20_000,
  },
});
