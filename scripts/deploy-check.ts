/**
 * What CI checks of a deployment without a Cloudflare account (run by .ci/run):
 *   1. wrangler.toml's [vars] are valid settings (shared/limits.ts);
 *   2. the D1 migrations apply to a fresh local database and leave every table they create;
 *   3. `wrangler deploy --dry-run` bundles the Worker; its size is printed against a budget;
 *   4. the agent package builds (scripts/build-agent.mjs prints its size against its budget).
 * Usage: node --import tsx scripts/deploy-check.ts
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { EDGE_SETTINGS, parseSettings } from "../shared/limits.ts";

const root = resolve(fileURLToPath(new URL("..", import.meta.url)));
/** The Worker bundle's budget, uncompressed and gzipped, in bytes (Cloudflare's own cap is 3 MiB gzipped on the free plan). */
const WORKER_BUNDLE_BUDGET_BYTES = 512 * 1024;
const WORKER_BUNDLE_GZIP_BUDGET_BYTES = 128 * 1024;

const wrangler = join(root, "node_modules", "wrangler", "bin", "wrangler.js");
const work = mkdtempSync(join(tmpdir(), "edgetty-deploy-check-"));
const env = { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", NO_UPDATE_NOTIFIER: "1", CI: "1", WRANGLER_LOG_PATH: join(work, "logs") };

function run(what: string, cmd: string, args: string[]): string {
  const result = spawnSync(cmd, args, { cwd: root, env, encoding: "utf8" });
  if (result.status !== 0) {
    process.stderr.write(`${result.stdout}\n${result.stderr}\n`);
    throw new Error(`${what} failed (exit ${result.status})`);
  }
  return result.stdout;
}

function kib(n: number): string {
  return `${(n / 1024).toFixed(1)} KiB`;
}

try {
  // 1. The Worker's variables.
  const { unstable_readConfig } = await import("wrangler");
  const config = unstable_readConfig({ config: join(root, "wrangler.toml") });
  parseSettings(EDGE_SETTINGS, config.vars as Record<string, unknown>);
  console.log(`deploy-check: wrangler.toml [vars] valid (${Object.keys(config.vars).length} set)`);

  // 2. Migrations on a fresh local D1.
  const persist = join(work, "state");
  run("d1 migrations apply", process.execPath, [wrangler, "d1", "migrations", "apply", "DB", "--local", "--persist-to", persist]);
  const out = run("d1 execute", process.execPath, [
    wrangler, "d1", "execute", "DB", "--local", "--persist-to", persist, "--json",
    "--command", "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
  ]);
  const tables = new Set((JSON.parse(out) as { results: { name: string }[] }[])[0]!.results.map((r) => r.name));
  const migrationsDir = join(root, "edge", "migrations");
  const files = readdirSync(migrationsDir).filter((f) => f.endsWith(".sql")).sort();
  const expected = files.flatMap((f) => [...readFileSync(join(migrationsDir, f), "utf8").matchAll(/CREATE TABLE (?:IF NOT EXISTS )?(\w+)/gi)].map((m) => m[1]!));
  const missing = [...expected, "d1_migrations"].filter((t) => !tables.has(t));
  if (missing.length > 0) throw new Error(`tables missing after the migrations: ${missing.join(", ")}`);
  console.log(`deploy-check: ${files.length} migration(s) applied to a fresh local D1; tables: ${[...tables].join(", ")}`);

  // 3. The Worker bundle, as `wrangler deploy` would upload it.
  run("web build", process.execPath, [join(root, "web", "build.mjs")]);
  const outdir = join(work, "bundle");
  run("wrangler deploy --dry-run", process.execPath, [wrangler, "deploy", "--dry-run", "--outdir", outdir]);
  const bundle = readFileSync(join(outdir, "index.js"));
  const gz = gzipSync(bundle).byteLength;
  console.log(
    `deploy-check: Worker bundle ${kib(bundle.byteLength)} (budget ${kib(WORKER_BUNDLE_BUDGET_BYTES)}), gzip ${kib(gz)} (budget ${kib(WORKER_BUNDLE_GZIP_BUDGET_BYTES)})`,
  );
  if (bundle.byteLength > WORKER_BUNDLE_BUDGET_BYTES || gz > WORKER_BUNDLE_GZIP_BUDGET_BYTES) throw new Error("the Worker bundle is over its budget");
  const assets = readdirSync(join(root, "dist", "web"), { recursive: true }).map((f) => join(root, "dist", "web", String(f)));
  const assetBytes = assets.filter((f) => statSync(f).isFile()).reduce((sum, f) => sum + statSync(f).size, 0);
  console.log(`deploy-check: static assets ${kib(assetBytes)} in ${assets.length} files`);

  // 4. The agent package.
  process.stdout.write(run("agent build", process.execPath, [join(root, "scripts", "build-agent.mjs"), "--outdir", join(work, "agent")]));
  console.log("deploy-check: ok");
} catch (error) {
  console.error(`deploy-check: ${(error as Error).message}`);
  process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
