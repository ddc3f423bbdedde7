import assert from "node:assert/strict";
import { mkdtempSync, realpathSync } from "node:fs";
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
