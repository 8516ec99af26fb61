#!/usr/bin/env node
// Builds the self-contained agent package: an esbuild bundle of worker/cli/agent-bin.ts (the
// agent, its links and the install/uninstall commands), a small second one of its PTY host
// (worker/agent/exec/pty-host-main.ts) and a third of its screen thread
// (worker/agent/screen/screen-worker.ts) and a fourth of the grep thread
// (worker/agent/files/grep-worker.ts), plus the shell-integration scripts, the sources of the
// posix_spawn helper (native/, built at install, optional) and a package.json whose only
// dependency is node-pty. Screenshots need
// @napi-rs/canvas and two font packages; they are optional dependencies (without them the
// screenshot API answers 501 and everything else works). officeparser (text out of PDF and Office
// documents for the Open Terminal `read_file`) is optional too: without it such files answer 415.
//
//   node scripts/build-agent.mjs [--outdir dist/agent] [--pack]
//
// --pack also runs `npm pack` in the output folder: the .tgz a host installs with
// `npm install -g ./edgetty-agent-<version>.tgz` (npm fetches node-pty's prebuilt binary).
import { build } from "esbuild";
import { chmodSync, cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({ options: { outdir: { type: "string" }, pack: { type: "boolean" } } });
const outdir = resolve(values.outdir ?? join(root, "dist", "agent"));
/** Budget for the bundle, in bytes: the build fails above it. */
const AGENT_BUNDLE_BUDGET_BYTES = 2 * 1024 * 1024;

const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const agentSource = readFileSync(join(root, "worker", "agent", "agent.ts"), "utf8");
const version = /export const AGENT_VERSION = "([^"]+)"/.exec(agentSource)?.[1];
if (!version) throw new Error("AGENT_VERSION not found in worker/agent/agent.ts");

const native = ["node-pty"];
const optional = ["@napi-rs/canvas", "dejavu-fonts-ttf", "@fontsource/unifontex", "officeparser"];

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const bundle = join(outdir, "edgetty-agent.mjs");
/** Inputs of every bundle (esbuild metafiles): the packages whose code the bundles carry. */
const inputs = new Set();
const noteInputs = (result) => {
  for (const path of Object.keys(result.metafile.inputs)) inputs.add(path);
  return result;
};
noteInputs(await build({
  entryPoints: [join(root, "worker", "cli", "agent-bin.ts")],
  outfile: bundle,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // ws looks for these optional native helpers and works without them.
  external: [...native, ...optional, "bufferutil", "utf-8-validate"],
  // CommonJS dependencies (ws, @xterm/headless) call require(); give the ES module one.
  banner: {
    js: [
      // AGENT_NODE_FLAGS (worker/cli/agent-node-flags.ts); a test keeps them equal.
      "#!/usr/bin/env -S node --max-semi-space-size=1 --single-threaded-gc",
      'import { createRequire as __edgettyCreateRequire } from "node:module";',
      "const require = __edgettyCreateRequire(import.meta.url);",
    ].join("\n"),
  },
  legalComments: "linked",
  metafile: true,
  logLevel: "warning",
}));
chmodSync(bundle, 0o755);
/** Bundles `entry` into `name` beside the agent's bundle (the agent starts it from there). */
const besideAgent = async (entry, name, external) =>
  noteInputs(await build({
    entryPoints: [join(root, ...entry)],
    outfile: join(outdir, name),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    external,
    banner: { js: 'import { createRequire as __edgettyCreateRequire } from "node:module";\nconst require = __edgettyCreateRequire(import.meta.url);' },
    legalComments: "linked",
    metafile: true,
    logLevel: "warning",
  }));
// The PTY host: a process of its own that forks /execute's PTYs, kept small (node-pty and the
// launcher only).
await besideAgent(["worker", "agent", "exec", "pty-host-main.ts"], "edgetty-pty-host.mjs", native);
// The screen thread: the agent's worker thread that keeps every terminal's screen model.
await besideAgent(["worker", "agent", "screen", "screen-worker.ts"], "edgetty-screen-worker.mjs", [...native, ...optional]);
// The grep thread: each Open Terminal `/files/grep` runs its regex there, under a time budget
// (and `/files/glob` its pattern, `/files/read` a document's text extraction).
await besideAgent(["worker", "agent", "files", "grep-worker.ts"], "edgetty-grep-worker.mjs", [...native, ...optional]);
// The licences of the packages bundled in (MIT and the like ask for their notice in every copy;
// esbuild's legal comments keep only the notices a package marks in its code): one file, each
// package's licence text as it ships it.
const bundled = new Map();
for (const path of inputs) {
  const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path);
  if (m && !bundled.has(m[1])) bundled.set(m[1], join(root, path.slice(0, m.index + m[0].length)));
}
const notices = [...bundled].sort(([a], [b]) => a.localeCompare(b)).map(([name, dir]) => {
  const meta = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const file = readdirSync(dir).find((f) => /^(licen[sc]e|copying)/i.test(f));
  const text = file ? readFileSync(join(dir, file), "utf8").trim() : `License: ${meta.license ?? "see the package"}`;
  return `${name}@${meta.version}\n${"-".repeat(name.length + meta.version.length + 1)}\n${text}\n`;
});
writeFileSync(join(outdir, "THIRD-PARTY-NOTICES.txt"), `Packages bundled into this package's .mjs files, with their licences.\n\n${notices.join("\n")}`);
// The shell-integration scripts are read beside the module that launches shells.
cpSync(join(root, "worker", "agent", "shell", "scripts"), join(outdir, "scripts"), { recursive: true });
// The posix_spawn helper's sources and its build, run by the package's install script: built on
// the host as node-pty is; where it cannot build, the agent forks its PTYs with node-pty.
mkdirSync(join(outdir, "native"));
for (const file of ["binding.gyp", "pty_spawn.c"]) cpSync(join(root, "native", file), join(outdir, "native", file));
cpSync(join(root, "scripts", "build-native.mjs"), join(outdir, "edgetty-build-native.mjs"));

const pick = (names) => Object.fromEntries(names.map((n) => [n, pkg.dependencies[n]]));
writeFileSync(
  join(outdir, "package.json"),
  JSON.stringify(
    {
      name: "edgetty-agent",
      version,
      description: "The edgetty host agent: runs real terminals for an edgetty edge (bundled; native parts: node-pty and a small posix_spawn helper)",
      type: "module",
      license: pkg.license,
      bin: { "edgetty-agent": "edgetty-agent.mjs" },
      files: ["edgetty-*.mjs", "edgetty-*.mjs.LEGAL.txt", "THIRD-PARTY-NOTICES.txt", "scripts/", "native/binding.gyp", "native/pty_spawn.c"],
      scripts: { install: "node edgetty-build-native.mjs --dir native" },
      engines: pkg.engines,
      dependencies: pick(native),
      optionalDependencies: pick(optional),
    },
    null,
    2,
  ) + "\n",
);

const size = statSync(bundle).size;
console.log(`agent bundle: ${bundle} ${(size / 1024).toFixed(1)} KiB (budget ${AGENT_BUNDLE_BUDGET_BYTES / 1024} KiB), version ${version}`);
if (size > AGENT_BUNDLE_BUDGET_BYTES) {
  console.error(`agent bundle is over its budget of ${AGENT_BUNDLE_BUDGET_BYTES} bytes`);
  process.exit(1);
}
if (values.pack) {
  const tgz = execFileSync("npm", ["pack", "--silent"], { cwd: outdir, encoding: "utf8" }).trim();
  console.log(`agent package: ${join(outdir, tgz)}`);
}
