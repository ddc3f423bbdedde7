// Runs the unit tests: each test/*.test.ts is bundled by esbuild into .build-test/ with
// `obsidian` replaced by test/mock-obsidian.ts (the real package holds only typings), then
// Node's own test runner runs them. First the sources are type-checked against the real
// `obsidian` typings (tsc). Exit code: the first that failed.
import { build } from "esbuild";
import { spawnSync } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const tsc = spawnSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "--noEmit", "-p", root], { stdio: "inherit" });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
const out = join(root, ".build-test");
rmSync(out, { recursive: true, force: true });
const tests = readdirSync(join(root, "test")).filter((f) => f.endsWith(".test.ts"));
await build({
  entryPoints: tests.map((f) => join(root, "test", f)),
  outdir: out,
  outExtension: { ".js": ".cjs" },
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node18",
  alias: { obsidian: join(root, "test", "mock-obsidian.ts") },
  logLevel: "warning",
});
const files = tests.map((f) => join(out, f.replace(/\.ts$/, ".cjs")));
const run = spawnSync(process.execPath, ["--test", ...files], { stdio: "inherit" });
process.exit(run.status ?? 1);
