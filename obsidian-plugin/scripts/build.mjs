// Builds the plugin: src/main.ts → main.js (CommonJS, obsidian/electron/codemirror external),
// and copies manifest.json beside it. Default output: the copy the Python package ships,
// ../bridge/plugin_bundle/ (what `zob plugin install` puts in a vault). `--outdir DIR` builds
// elsewhere (the check that the shipped bundle is the one these sources make).
import { build } from "esbuild";
import { builtinModules } from "node:module";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const flag = process.argv.indexOf("--outdir");
const outdir = flag > 0 ? resolve(process.argv[flag + 1]) : join(root, "..", "bridge", "plugin_bundle");
mkdirSync(outdir, { recursive: true });

await build({
  entryPoints: [join(root, "src", "main.ts")],
  outfile: join(outdir, "main.js"),
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "es2020",
  external: ["obsidian", "electron", "@codemirror/*", "@lezer/*", ...builtinModules],
  banner: { js: "/* zotero-obsidian-bridge plugin: built from obsidian-plugin/ by esbuild; do not edit */" },
  legalComments: "none",
  sourcemap: false,
  minify: false,
  logLevel: "warning",
  absWorkingDir: root,
});
copyFileSync(join(root, "manifest.json"), join(outdir, "manifest.json"));
console.log(`built ${join(outdir, "main.js")}`);
