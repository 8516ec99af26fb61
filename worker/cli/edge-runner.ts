/**
 * The local stack's edge: the Worker (bundled from wrangler.toml's `main` by esbuild) and its
 * Durable Objects, D1 and assets in one workerd, run by Miniflare, with the bindings wrangler
 * itself derives from wrangler.toml (`unstable_getMiniflareWorkerOptions`). Started by
 * local-stack.ts as `node --import tsx edge-runner.ts --config F --ip H --port P --persist-to D
 * --env-file F [--log-level warn]`; it prints one `ready on URL` line, and stops workerd on SIGTERM/SIGINT.
 *
 * Why not `wrangler dev`: it puts a second workerd in front of the Worker (its proxy worker, a
 * Durable Object that forwards every request and WebSocket to the Worker's own workerd, for live
 * reload), which costs every request and every agent frame another process hop: about 2 ms per
 * round trip on a loaded host and a third of a file download's throughput. The state layout is
 * wrangler's (`<persist-to>/v3/{do,d1}`), so `wrangler d1 migrations apply --local --persist-to`
 * and existing state folders keep working.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs, parseEnv } from "node:util";
import { context } from "esbuild";
import { Log, LogLevel, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

const { values } = parseArgs({
  options: {
    config: { type: "string" },
    ip: { type: "string" },
    port: { type: "string" },
    "persist-to": { type: "string" },
    "env-file": { type: "string" },
    "log-level": { type: "string" },
  },
});
const LOG_LEVELS: Record<string, LogLevel> = { none: LogLevel.NONE, error: LogLevel.ERROR, warn: LogLevel.WARN, info: LogLevel.INFO, debug: LogLevel.DEBUG };
const config = resolve(values.config ?? "wrangler.toml");
const persistTo = resolve(values["persist-to"] ?? ".wrangler/state");
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`edge-runner: --port must be a port number, not ${values.port}`);

const { workerOptions, main } = unstable_getMiniflareWorkerOptions(config);
if (!main) throw new Error(`edge-runner: ${config} names no main module`);
// The env file's variables (the stack's secrets and settings) over wrangler.toml's [vars], as
// `wrangler dev --env-file` sets them.
const secrets = values["env-file"] ? parseEnv(readFileSync(values["env-file"], "utf8")) : {};
const bindings = { ...workerOptions.bindings, ...secrets };

// The bundle wrangler would build (ES modules for workerd; its own `cloudflare:*` modules left
// to the runtime), beside the state it serves. esbuild watches the sources: an edit rebuilds the
// bundle and restarts workerd with it, as `wrangler dev` reloads.
const outdir = join(persistTo, "edge-bundle");
mkdirSync(outdir, { recursive: true });
const options = {
  ...workerOptions,
  bindings,
  name: "edgetty",
  modules: true,
  modulesRoot: outdir,
  scriptPath: join(outdir, "index.js"),
  host: values.ip ?? "127.0.0.1",
  port,
  defaultPersistRoot: join(persistTo, "v3"),
  // The closed network refuses the `request.cf` lookup; a fixed default object instead.
  cf: false,
  log: new Log(LOG_LEVELS[values["log-level"] ?? "warn"] ?? LogLevel.WARN),
} as ConstructorParameters<typeof Miniflare>[0];
let mf: Miniflare | null = null;
let firstBuild: (ok: boolean) => void = () => {};
const built = new Promise<boolean>((resolve) => (firstBuild = resolve));
const bundler = await context({
  entryPoints: [resolve(dirname(config), main)],
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  conditions: ["workerd", "worker", "browser"],
  mainFields: ["module", "main"],
  external: ["cloudflare:*"],
  outfile: join(outdir, "index.js"),
  logLevel: "warning",
  plugins: [
    {
      name: "edgetty-reload",
      setup(build) {
        build.onEnd(async (result) => {
          if (!mf) return firstBuild(result.errors.length === 0);
          if (result.errors.length > 0) return; // esbuild printed them; the running Worker stays
          await mf.setOptions(options);
          process.stdout.write("edge-runner: the Worker changed; workerd restarted with it\n");
        });
      },
    },
  ],
});
await bundler.watch();
if (!(await built)) throw new Error("edge-runner: the Worker did not build");
mf = new Miniflare(options);
const url = await mf.ready;
process.stdout.write(`ready on ${url.href}\n`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void bundler
    .dispose()
    .then(() => mf?.dispose())
    .finally(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
