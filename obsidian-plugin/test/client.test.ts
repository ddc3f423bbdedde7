import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { hostname, tmpdir } from "node:os";
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

test("an api.json written on another machine (a synced vault) gets no request and no token", async () => {
  // Dropbox, iCloud or Syncthing carry .zotero-bridge/ to the other machines: there the
  // port names whatever listens on it, not a zob.
  const heard: string[] = [];
  const server = createServer((req, res) => {
    heard.push(`${req.method} ${req.url} ${req.headers.authorization ?? ""}`);
    res.writeHead(200, { "Content-Type": "application/json" }).end('{"items": [], "complete": true}');
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const vault = realpathSync(mkdtempSync(join(tmpdir(), "zob-vault-")));
  mkdirSync(join(vault, ".zotero-bridge"));
  const api = { port, token: "secret-of-the-other-machine", pid: 1, format: 1, host: `not-${hostname()}` };
  writeFileSync(join(vault, ".zotero-bridge", "api.json"), JSON.stringify(api));
  const ran: string[][] = [];
  const client = new BridgeClient(vault, "zob", undefined, async (_c, args) => {
    ran.push(args);
    return { code: 0, stdout: "Papers/x.md\n", stderr: "" };
  });
  try {
    assert.equal(await client.endpoint(), null);
    assert.equal((await client.createNote("ABCD1234")).via, "cli");
    assert.deepEqual(heard, []);
    writeFileSync(join(vault, ".zotero-bridge", "api.json"), JSON.stringify({ ...api, host: hostname() }));
    assert.deepEqual(await client.endpoint(), { port, token: api.token }, "this machine's: used");
  } finally {
    server.close();
  }
});
