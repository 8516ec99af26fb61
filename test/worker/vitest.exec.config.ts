// Runs the execute API's Node tests on their own until the root config gains a Node project:
//   npx vitest run --config test/worker/vitest.exec.config.ts
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  root: fileURLToPath(new URL("../..", import.meta.url)),
  test: {
    name: "worker-exec",
    environment: "node",
    include: ["test/worker/exec*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
