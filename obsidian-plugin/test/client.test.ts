import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { test } from "node:test";
import { BridgeClient, RunResult } from "../src/client";

test("zob runs outside the vault: a program planted in the vault is never the one found", async () => {
  // On Windows a bare `zob` is looked up in the working folder before PATH: with the vault
  // as that folder, a `zob.exe` put in a shared or synced vault would run instead.
  const vault = realpathSync(mkdtempSync(join(tmpdir(), "zob-vault-")));
  const calls: { command: string; args: string[]; cwd: string }[] = [];
  const runner = async (command: string, args: string[], cwd: string): Promise<RunResult> => {
    calls.push({ command, args, cwd });
    return { code: 0, stdout: "Papers/x.md\n", stderr: "" };
  };
  const client = new BridgeClient(vault, "zob", undefined, runner);
  assert.equal((await client.createNote("ABCD1234")).path, "Papers/x.md");
  assert.equal(calls.length, 1);
  const inside = relative(vault, realpathSync(calls[0].cwd));
  assert.ok(inside.startsWith("..") || inside === realpathSync(calls[0].cwd), `cwd ${calls[0].cwd} is in the vault`);
  assert.deepEqual(calls[0].args, ["new", "ABCD1234", "--first", "--vault", vault]);
});

test("a FIFO or link planted as the bridge's files does not hang or mislead the plugin", { skip: process.platform === "win32" }, async () => {
  // fs.readFile blocks on a FIFO until a writer comes: each status poll would hold one of
  // Node's four file threads, and Obsidian's own file reads wait behind them.
  const vault = realpathSync(mkdtempSync(join(tmpdir(), "zob-vault-")));
  mkdirSync(join(vault, ".zotero-bridge"));
  const fifo = join(vault, ".zotero-bridge", "library.json");
  execFileSync("mkfifo", [fifo]);
  execFileSync("mkfifo", [join(vault, ".zotero-bridge", "api.json")]);
  const client = new BridgeClient(vault, "zob", undefined, async () => ({ code: 127, stdout: "", stderr: "" }));
  const late = Symbol("late");
  const timer = (ms: number) => new Promise((resolve) => setTimeout(() => resolve(late), ms));
  try {
    const answer = await Promise.race([client.status(), timer(3000)]);
    assert.notEqual(answer, late, "status() hangs on a FIFO");
    assert.equal((answer as any).via, "none");
  } finally {
    // let a blocked read finish, so the test process can end
    for (const name of ["library.json", "api.json"]) {
      try {
        closeSync(openSync(join(vault, ".zotero-bridge", name), constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {
        /* no reader waiting */
      }
    }
  }
  const outside = join(vault, "..", `outside-${process.pid}.json`);
  writeFileSync(outside, JSON.stringify({ format: 1, generated_at: "x", items: [] }));
  rmSync(fifo);
  symlinkSync(outside, fifo);
  assert.equal((await client.status()).via, "none", "a link in place of library.json is not read");
  rmSync(outside);
});
