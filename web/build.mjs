#!/usr/bin/env node
// Builds the browser client into dist/web/: bundles web/src/main.ts (with xterm.js, its addons and
// all CSS) into content-hashed files and writes index.html pointing at them. The Worker serves
// that folder as static assets. `node web/build.mjs` builds once; `--watch` rebuilds on change.
import * as esbuild from "esbuild";
import { mkdir, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const webDir = dirname(fileURLToPath(import.meta.url));
const repoDir = dirname(webDir);
const outDir = join(repoDir, "dist", "web");
const watch = process.argv.includes("--watch");

/** Replaces `path` with `data` in one step (write a temporary file, rename over). */
async function writeAtomic(path, data) {
  // Unchanged files are left alone: wrangler watches this folder, and a rewrite reloads every
  // running local stack's Worker (dropping all its WebSockets) for nothing.
  const old = await readFile(path).catch(() => null);
  if (old && Buffer.compare(old, Buffer.from(data)) === 0) return;
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/**
 * The Open Terminal API explorer (`/docs`): Swagger UI's bundle and stylesheet from the
 * swagger-ui-dist package (no CDN), and the small script that starts it (web/docs-init.js).
 */
async function copyDocsAssets() {
  const from = join(repoDir, "node_modules", "swagger-ui-dist");
  const to = join(outDir, "docs-assets");
  await mkdir(to, { recursive: true });
  for (const name of ["swagger-ui-bundle.js", "swagger-ui.css"]) await writeAtomic(join(to, name), await readFile(join(from, name)));
  await writeAtomic(join(to, "docs-init.js"), await readFile(join(webDir, "docs-init.js")));
}

/**
 * Writes a finished build into dist/web: every file atomically, then index.html naming the hashed
 * JS and CSS, then removes files from older builds. Builds running at once (parallel test stacks)
 * never leave the folder empty or half-written for a server reading it.
 */
const writeOutput = {
  name: "edgetty-write-output",
  setup(build) {
    build.onEnd(async (result) => {
      if (result.errors.length > 0 || !result.metafile || !result.outputFiles) return;
      const entry = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint?.endsWith("src/main.ts"));
      if (!entry) throw new Error("build produced no output for src/main.ts");
      const [jsPath, output] = entry;
      if (!output.cssBundle) throw new Error("build produced no CSS bundle for src/main.ts");
      await mkdir(outDir, { recursive: true });
      const keep = new Set(["index.html", "docs-assets"]);
      await copyDocsAssets();
      for (const file of result.outputFiles) {
        keep.add(basename(file.path));
        await writeAtomic(join(outDir, basename(file.path)), file.contents);
      }
      const template = await readFile(join(webDir, "index.html"), "utf8");
      const html = template
        .replace("{{JS}}", `/${basename(jsPath)}`)
        .replace("{{CSS}}", `/${basename(output.cssBundle)}`);
      await writeAtomic(join(outDir, "index.html"), html);
      for (const name of await readdir(outDir)) {
        if (!keep.has(name) && !name.endsWith(".tmp")) await rm(join(outDir, name), { force: true, recursive: true });
      }
      const bytes = Object.entries(result.metafile.outputs)
        .filter(([path]) => /\.(js|css)$/.test(path))
        .reduce((n, [, o]) => n + o.bytes, 0);
      console.log(`web: built ${relative(repoDir, outDir)}/ (${Math.round(bytes / 1024)} KiB of JS and CSS)`);
    });
  },
};

/** @type {import("esbuild").BuildOptions} */
const options = {
  absWorkingDir: repoDir,
  entryPoints: [join(webDir, "src", "main.ts")],
  outdir: outDir,
  entryNames: "[name]-[hash]",
  chunkNames: "chunk-[name]-[hash]",
  assetNames: "asset-[name]-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  target: ["es2022"],
  platform: "browser",
  minify: !watch,
  sourcemap: "linked",
  metafile: true,
  write: false, // writeOutput puts the files in place
  legalComments: "linked",
  logLevel: "warning",
  plugins: [writeOutput],
};

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
  console.log("web: watching web/src for changes (Ctrl-C to stop)");
} else {
  await esbuild.build(options);
}
