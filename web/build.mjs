#!/usr/bin/env node
// Builds the browser client into dist/web/: bundles web/src/main.ts (with xterm.js, its addons and
// all CSS) into content-hashed files and writes index.html pointing at them. The Worker serves
// that folder as static assets. `node web/build.mjs` builds once; `--watch` rebuilds on change.
import * as esbuild from "esbuild";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const webDir = dirname(fileURLToPath(import.meta.url));
const repoDir = dirname(webDir);
const outDir = join(repoDir, "dist", "web");
const watch = process.argv.includes("--watch");

/** Writes index.html with the hashed names of the entry's JS and CSS once a build ends. */
const writeIndex = {
  name: "edgetty-index-html",
  setup(build) {
    build.onEnd(async (result) => {
      if (result.errors.length > 0 || !result.metafile) return;
      const entry = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint?.endsWith("src/main.ts"));
      if (!entry) throw new Error("build produced no output for src/main.ts");
      const [jsPath, output] = entry;
      if (!output.cssBundle) throw new Error("build produced no CSS bundle for src/main.ts");
      const template = await readFile(join(webDir, "index.html"), "utf8");
      const html = template
        .replace("{{JS}}", `/${basename(jsPath)}`)
        .replace("{{CSS}}", `/${basename(output.cssBundle)}`);
      await writeFile(join(outDir, "index.html"), html);
      const bytes = Object.entries(result.metafile.outputs)
        .filter(([path]) => /\.(js|css)$/.test(path))
        .reduce((n, [, o]) => n + o.bytes, 0);
      console.log(`web: built ${relative(repoDir, outDir)}/ (${Math.round(bytes / 1024)} KiB of JS and CSS)`);
    });
  },
};

await rm(outDir, { recursive: true, force: true });
await mkdir(outDir, { recursive: true });

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
  legalComments: "linked",
  logLevel: "warning",
  plugins: [writeIndex],
};

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
  console.log("web: watching web/src for changes (Ctrl-C to stop)");
} else {
  await esbuild.build(options);
}
